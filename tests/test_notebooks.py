"""Committed research notebooks: stripped outputs, typed parameters, parameter files.

These checks read the files only (no kernel): CI fails on committed outputs, on a
parameter line papermill cannot parse, and on parameter files that do not fit.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from titan_lib.runner import inspect_parameters, load_pipeline, validate_parameters
from titan_lib.runner.parameter_files import load_parameter_file
from titan_lib.runner.result_schemas import RESULT_SCHEMAS

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
EXPECTED = [
    "01_ingest",
    "02_pair_scan",
    "03_pair_analysis",
    "04_regimes",
    "05_backtest",
    "06_walk_forward",
    "07_publish",
]


def test_the_seven_research_notebooks_exist() -> None:
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "titan"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has committed outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) >= 3, f"{path.name} should explain what it shows"
    assert any("fig.show()" in c.source for c in nb.cells if c.cell_type == "code"), (
        f"{path.name} shows no plotly chart"
    )
    assert any("save_results(" in c.source for c in nb.cells if c.cell_type == "code"), (
        f"{path.name} writes no results sidecar"
    )


def saved_names(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The value keys, table names and summary keys of a notebook's ``save_results`` call,
    read from its source (an f-string key as a template: ``f"q <= {max_q}"`` is
    ``"q <= {max_q}"``)."""
    import nbformat

    def template_part(part: ast.expr) -> str:
        if isinstance(part, ast.FormattedValue):
            return "{" + ast.unparse(part.value) + "}"
        assert isinstance(part, ast.Constant)
        return str(part.value)

    def keys(node: ast.expr | None) -> list[str]:
        assert isinstance(node, ast.Dict), f"{path.name}: save_results takes dict literals"
        found = []
        for key in node.keys:
            if isinstance(key, ast.Constant):
                found.append(str(key.value))
            elif isinstance(key, ast.JoinedStr):
                found.append("".join(map(template_part, key.values)))
        return found

    nb = nbformat.read(path, as_version=4)
    calls = [
        node
        for cell in nb.cells
        if cell.cell_type == "code" and "save_results(" in cell.source
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "save_results"
    ]
    assert len(calls) == 1, f"{path.name}: one save_results call"
    (call,) = calls
    named = {k.arg: k.value for k in call.keywords}
    return keys(call.args[0]), keys(named.get("tables")), keys(named.get("summary"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_save_results_names_what_the_notebooks_schema_requires(path: Path) -> None:
    """A fast, static check of the contract; the executed notebooks' results are checked
    against the same schemas in ``tests/test_notebooks_run.py``."""
    schema = RESULT_SCHEMAS[path.stem]
    values, tables, summary = saved_names(path)
    assert [t.name for t in schema.tables] == tables
    assert [v for v in schema.values if v not in values] == []
    assert [k for k in schema.summary if k not in summary] == []


def test_every_notebook_has_a_result_schema() -> None:
    assert list(RESULT_SCHEMAS) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_is_typed_and_seen_by_papermill(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assigned = [
        node.target.id
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    ]
    untyped = [node for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)]
    assert not untyped, f"{path.name}: every parameter needs a type annotation"
    inspected = inspect_parameters(path)
    assert list(inspected) == assigned, f"{path.name}: papermill could not parse every line"
    for param in inspected.values():
        assert param.type_name != "None", f"{path.name}: {param.name} has no type"
        assert param.help, f"{path.name}: {param.name} needs a help comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameter_file_profiles_fit_the_notebook(path: Path) -> None:
    file = REPO / "parameters" / f"{path.stem}.yaml"
    assert file.is_file(), f"missing {file}"
    profiles = json.loads(json.dumps(load_parameter_file(file, None), default=str))
    assert isinstance(profiles, dict)
    declared = inspect_parameters(path)
    required = [p.name for p in declared.values() if p.required]
    for profile in (None, "quick", "full"):
        values = load_parameter_file(file, profile)
        validate_parameters(path, values, declared, pending=required)


def test_pipelines_load_and_demo_covers_every_notebook() -> None:
    files = sorted((REPO / "parameters" / "pipelines").glob("*.yaml"))
    assert any(f.stem == "demo" for f in files)
    for file in files:
        pipeline = load_pipeline(file, root=REPO)
        assert pipeline.steps
        if file.stem == "demo":
            assert pipeline.profile == "quick"
            assert [s.notebook.stem for s in pipeline.steps] == EXPECTED


def test_grid_files_fit_their_notebook() -> None:
    from titan_lib.runner import load_grid

    grids = sorted((REPO / "parameters" / "grids").glob("*.yaml"))
    assert grids
    for grid in grids:
        notebook = REPO / "notebooks" / f"{grid.stem.split('_')[0]}_{grid.stem.split('_')[1]}.ipynb"
        assert notebook.is_file(), f"{grid.name} must start with its notebook's name"
        declared = inspect_parameters(notebook)
        for values in load_grid(grid):
            validate_parameters(notebook, values, declared)
