"""The import contract: arrows between TITAN's layers point down only.

::

    faces      titan_lib.cli, titan_lib.dashboards, lambdas/ (app, chalicelib), notebooks/
    runner     titan_lib.runner, titan_lib.plots (the charts of notebooks and dashboards)
    research   titan_lib.pairs, titan_lib.regimes, titan_lib.signals, titan_lib.backtest
    data       titan_lib.data
    core       titan_lib.core (standard library only: the Lambda package carries it)
    stores     titan_lib.stores (bytes and objects only)
    base       titan_lib.exceptions, titan_lib.config, titan_lib.compile_once, the package
               titan_lib itself

A module may import its own layer and the layers below it. Besides:

- the faces are independent of each other, except that the CLI launches the others;
- ``lambdas/`` imports only the parts of ``titan_lib`` its package ships
  (``titan_lib.cli.lambdas.LAMBDA_TITAN_MODULES``);
- core and stores import none of the numeric libraries (the import-time check of the same
  rule is ``tests/test_core_imports.py``);
- only a face maps errors to HTTP: nothing else imports ``titan_lib.core.http_errors``;
- no two project modules import each other, directly or through others.

The graph is read from the source with :mod:`ast`: every import statement counts, also one
inside a function or under ``TYPE_CHECKING``, so a lazy import cannot hide a wrong arrow.
Notebooks count through their code cells (IPython syntax turned into Python first).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from conftest import HEAVY_LIBRARIES, REPO

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("faces", ("titan_lib.cli", "titan_lib.dashboards", "app", "chalicelib", "notebooks/")),
    ("runner", ("titan_lib.runner", "titan_lib.plots")),
    (
        "research",
        ("titan_lib.pairs", "titan_lib.regimes", "titan_lib.signals", "titan_lib.backtest"),
    ),
    ("data", ("titan_lib.data",)),
    ("core", ("titan_lib.core",)),
    ("stores", ("titan_lib.stores",)),
    ("base", ("titan_lib.exceptions", "titan_lib.config", "titan_lib.compile_once", "titan_lib")),
)
"""Top to bottom. A prefix names a module and everything below it; ``titan_lib`` alone is
the package's ``__init__`` (its subpackages each have their own line)."""

FACES: dict[str, tuple[str, ...]] = {
    "cli": ("titan_lib.cli",),
    "dashboards": ("titan_lib.dashboards", "notebooks/dashboards/"),
    "lambdas": ("app", "chalicelib"),
    "notebooks": ("notebooks/",),
}
LAUNCHER_FACE = "cli"
"""The one face allowed to import the others: ``titan dashboard`` and ``titan lambdas``."""

HTTP_ERRORS = "titan_lib.core.http_errors"

KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
    # (importer, imported) as fnmatch patterns: the reason and the change that removes it.
}
"""Wrong arrows tolerated while a refactor removes them (none today). An entry that no
longer matches a wrong import fails :func:`test_every_known_violation_still_exists`, so the
list only shrinks."""


@dataclass(frozen=True)
class Import:
    """One import statement's arrow: ``importer`` needs ``imported`` (``where`` = file:line)."""

    importer: str
    imported: str
    where: str


@dataclass(frozen=True)
class Violation:
    """An import that breaks ``rule``."""

    rule: str
    edge: Import

    def __str__(self) -> str:
        return f"{self.edge.where}: {self.edge.importer} -> {self.edge.imported} ({self.rule})"


def _notebook_code(path: Path) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    cells = json.loads(path.read_text())["cells"]
    sources = ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return "\n".join(transform(source) for source in sources)


def project_sources(root: Path) -> dict[str, tuple[Path, str, bool]]:
    """Every project module under ``root``: name -> (file, Python source, is a package).

    ``lambdas/app.py`` is ``app`` and ``lambdas/chalicelib/x.py`` is ``chalicelib.x``, the
    names they are imported by in the Lambda; a notebook is its path below ``root``.
    """
    found: dict[str, tuple[Path, str, bool]] = {}
    for base, tops in ((root, ("titan_lib",)), (root / "lambdas", ("app.py", "chalicelib"))):
        for top in tops:
            start = base / top
            files = [start] if start.is_file() else sorted(start.rglob("*.py"))
            for path in files:
                parts = path.relative_to(base).with_suffix("").parts
                package = parts[-1] == "__init__"
                name = ".".join(parts[:-1] if package else parts)
                found[name] = (path, path.read_text(), package)
    for path in sorted((root / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in path.parts:
            found[path.relative_to(root).as_posix()] = (path, _notebook_code(path), False)
    return found


def import_graph(root: Path) -> tuple[set[str], list[Import]]:
    """The project's modules and every import statement in them, resolved to modules.

    ``from package import name`` points at ``package.name`` when that is a module, else at
    ``package``. Third-party imports point at their top-level distribution name.
    """
    sources = project_sources(root)
    modules = set(sources)
    edges: dict[Import, None] = {}  # ordered and without repeats
    for name, (path, code, package) in sources.items():
        where_file = path.relative_to(root).as_posix()
        here = name.split(".") if package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(code, filename=where_file)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported_names(node, here, modules):
                    resolved = _resolve(target, modules)
                    if resolved != name:
                        edges[Import(name, resolved, f"{where_file}:{node.lineno}")] = None
    return modules, list(edges)


def _imported_names(
    node: ast.Import | ast.ImportFrom, here: list[str], modules: set[str]
) -> list[str]:
    """Absolute names an import statement in package ``here`` brings in."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = here[: len(here) - node.level + 1]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    subs = (f"{module}.{alias.name}" for alias in node.names)
    return [sub if sub in modules else module for sub in subs]


def _resolve(target: str, modules: set[str]) -> str:
    """The nearest project module that ``target`` names, or its top-level package."""
    probe = target
    while probe:
        if probe in modules:
            return probe
        probe = probe.rpartition(".")[0]
    return target.split(".")[0]


def _matches(module: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return module.startswith(prefix)
    if prefix == "titan_lib":
        return module == prefix
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    """The layer a project module belongs to (``None``: not in the map)."""
    for layer, prefixes in LAYERS:
        if any(_matches(module, p) for p in prefixes):
            return layer
    return None


def face_of(module: str) -> str | None:
    for face, prefixes in FACES.items():
        if any(_matches(module, p) for p in prefixes):
            return face
    return None


def lambda_shipped(packaged: Iterable[str]) -> tuple[str, ...]:
    """Module prefixes a Lambda package holds, from the packager's list of titan_lib files."""
    names = {"__init__.py": "titan_lib", "py.typed": ""}
    prefixes = (names.get(p, "titan_lib." + p.removesuffix(".py")) for p in packaged)
    return tuple(p for p in prefixes if p)


def violations(
    modules: set[str], edges: Iterable[Import], lambda_prefixes: tuple[str, ...]
) -> list[Violation]:
    """Every import that breaks the contract described at the top of this file."""
    rank = {layer: i for i, (layer, _) in enumerate(LAYERS)}
    found: list[Violation] = []
    for edge in edges:
        src, dst = edge.importer, edge.imported
        src_layer = layer_of(src)
        if dst not in modules:  # third party
            if src_layer in ("core", "stores") and dst in HEAVY_LIBRARIES:
                found.append(Violation(f"{src_layer} imports the numeric stack", edge))
            continue
        dst_layer = layer_of(dst)
        if src_layer is None or dst_layer is None:
            continue  # reported by test_every_module_has_a_layer
        if rank[dst_layer] < rank[src_layer]:
            found.append(Violation(f"{src_layer} imports {dst_layer}, a layer above", edge))
        src_face, dst_face = face_of(src), face_of(dst)
        if src_face and dst_face and src_face != dst_face and src_face != LAUNCHER_FACE:
            found.append(Violation(f"face {src_face} imports face {dst_face}", edge))
        if (
            src_face == "lambdas"
            and dst.startswith("titan_lib")
            and not any(_matches(dst, p) for p in lambda_prefixes)
        ):
            found.append(Violation("the Lambda package does not ship it", edge))
        if dst == HTTP_ERRORS and src_layer != "faces":
            found.append(Violation("only a face maps errors to HTTP", edge))
    return found


def import_cycles(modules: set[str], edges: Iterable[Import]) -> list[frozenset[str]]:
    """Groups of project modules that import each other (strongly connected, size > 1)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in edges:
        if edge.imported in modules:
            graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []
    for start in sorted(graph):  # Tarjan's algorithm, iterative
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(frozenset(group))
    return cycles


def is_known(edge: Import) -> bool:
    """Whether the arrow is on the :data:`KNOWN_VIOLATIONS` list."""
    return any(
        fnmatchcase(edge.importer, src) and fnmatchcase(edge.imported, dst)
        for src, dst in KNOWN_VIOLATIONS
    )


def unexpected(
    modules: set[str], edges: list[Import], lambda_prefixes: tuple[str, ...]
) -> list[str]:
    """Wrong arrows and import cycles that are not on the :data:`KNOWN_VIOLATIONS` list."""
    found = [str(v) for v in violations(modules, edges, lambda_prefixes) if not is_known(v.edge)]
    remaining = [e for e in edges if not is_known(e)]
    found += [f"import cycle: {sorted(c)}" for c in import_cycles(modules, remaining)]
    return found


@pytest.fixture(scope="module")
def graph() -> tuple[set[str], list[Import]]:
    return import_graph(REPO)


@pytest.fixture(scope="module")
def lambda_prefixes() -> tuple[str, ...]:
    from titan_lib.cli.lambdas import LAMBDA_TITAN_MODULES

    return lambda_shipped(LAMBDA_TITAN_MODULES)


def test_every_module_has_a_layer(graph: tuple[set[str], list[Import]]) -> None:
    modules, edges = graph
    assert {"titan_lib.core.evaluate", "chalicelib.runtime", "app"} <= modules
    assert any(m.startswith("notebooks/") for m in modules)
    assert len(edges) > 500
    assert sorted(m for m in modules if layer_of(m) is None) == []


def test_imports_point_down_only_and_never_in_a_circle(
    graph: tuple[set[str], list[Import]], lambda_prefixes: tuple[str, ...]
) -> None:
    assert unexpected(*graph, lambda_prefixes) == []


def stale_entries(
    modules: set[str], edges: list[Import], lambda_prefixes: tuple[str, ...]
) -> list[tuple[str, str]]:
    """:data:`KNOWN_VIOLATIONS` entries that match no wrong arrow and no arrow of a cycle."""
    wrong = [v.edge for v in violations(modules, edges, lambda_prefixes)]
    in_cycles = set().union(*import_cycles(modules, edges))
    wrong += [e for e in edges if e.importer in in_cycles and e.imported in in_cycles]
    return [
        (src, dst)
        for src, dst in KNOWN_VIOLATIONS
        if not any(fnmatchcase(e.importer, src) and fnmatchcase(e.imported, dst) for e in wrong)
    ]


def test_every_known_violation_still_exists(
    graph: tuple[set[str], list[Import]], lambda_prefixes: tuple[str, ...]
) -> None:
    fixed = stale_entries(*graph, lambda_prefixes)
    assert fixed == [], f"these imports are gone: remove them from KNOWN_VIOLATIONS: {fixed}"


def test_the_lambda_ships_core_stores_and_the_base_only(lambda_prefixes: tuple[str, ...]) -> None:
    assert set(lambda_prefixes) == {
        "titan_lib",
        "titan_lib.exceptions",
        "titan_lib.config",
        "titan_lib.core",
        "titan_lib.stores",
    }


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_wrong_import_in_a_module_tree_is_reported(tmp_path: Path) -> None:
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["from chalicelib import runtime"]},
            {"cell_type": "code", "source": ["%matplotlib inline\n", "from chalicelib import x"]},
        ]
    }
    _write(
        tmp_path,
        {
            "titan_lib/__init__.py": "from titan_lib.exceptions import TitanError\n",
            "titan_lib/exceptions.py": "class TitanError(Exception): ...\n",
            "titan_lib/core/__init__.py": "",
            "titan_lib/core/good.py": "import json\nfrom ..exceptions import TitanError\n",
            "titan_lib/core/bad.py": (
                "from . import good\n"
                "def lazy():\n    import numpy\n    from titan_lib.pairs import scan\n"
            ),
            "titan_lib/core/http_errors.py": "",
            "titan_lib/stores/__init__.py": "from titan_lib.core import http_errors\n",
            "titan_lib/pairs/__init__.py": "",
            "titan_lib/pairs/scan.py": "from titan_lib.core.bad import lazy\nimport polars\n",
            "titan_lib/dashboards/__init__.py": "from titan_lib.cli import main\n",
            "titan_lib/cli/__init__.py": "from titan_lib.dashboards import serve\nmain = 1\n",
            "titan_lib/dashboards/serve.py": "",
            "lambdas/app.py": "from chalicelib import x\nimport titan_lib.pairs.scan\n",
            "lambdas/chalicelib/__init__.py": "",
            "lambdas/chalicelib/x.py": "from titan_lib.core import good\n",
            "notebooks/n.ipynb": json.dumps(notebook),
        },
    )
    modules, edges = import_graph(tmp_path)
    found = violations(modules, edges, ("titan_lib", "titan_lib.core", "titan_lib.exceptions"))
    reported = sorted((v.edge.importer, v.edge.imported, v.rule) for v in found)
    assert reported == [
        ("app", "titan_lib.pairs.scan", "the Lambda package does not ship it"),
        ("notebooks/n.ipynb", "chalicelib.x", "face notebooks imports face lambdas"),
        ("titan_lib.core.bad", "numpy", "core imports the numeric stack"),
        ("titan_lib.core.bad", "titan_lib.pairs.scan", "core imports research, a layer above"),
        ("titan_lib.dashboards", "titan_lib.cli", "face dashboards imports face cli"),
        ("titan_lib.stores", "titan_lib.core.http_errors", "only a face maps errors to HTTP"),
        ("titan_lib.stores", "titan_lib.core.http_errors", "stores imports core, a layer above"),
    ]
    assert [v.edge.where for v in found if v.edge.imported == "numpy"] == [
        "titan_lib/core/bad.py:3"
    ]
    assert sorted(map(sorted, import_cycles(modules, edges))) == [
        ["titan_lib.core.bad", "titan_lib.pairs.scan"]
    ]


def test_one_wrong_edge_added_to_the_real_graph_is_reported(
    graph: tuple[set[str], list[Import]], lambda_prefixes: tuple[str, ...]
) -> None:
    modules, edges = graph
    wrong = Import("titan_lib.stores.objects", "titan_lib.pairs.mackinnon", "synthetic:1")
    found = violations(modules, [*edges, wrong], lambda_prefixes)
    assert unexpected(modules, [*edges, wrong], lambda_prefixes) == [
        "synthetic:1: titan_lib.stores.objects -> titan_lib.pairs.mackinnon "
        "(stores imports research, a layer above)"
    ]
    assert len(found) == len(violations(modules, edges, lambda_prefixes)) + 1
    back = Import("titan_lib.core.evaluate", "titan_lib.stores.objects", "synthetic:2")
    assert unexpected(modules, [*edges, back], lambda_prefixes) == []
    loop = Import("titan_lib.stores.s3", "titan_lib.stores.objects", "synthetic:3")
    assert unexpected(modules, [*edges, loop], lambda_prefixes) == [
        "import cycle: ['titan_lib.stores.objects', 'titan_lib.stores.s3']"
    ]


def test_the_allow_list_lets_through_its_arrows_only_while_they_exist(
    graph: tuple[set[str], list[Import]],
    lambda_prefixes: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    modules, edges = graph
    allowed = ("titan_lib.stores.*", "titan_lib.pairs.*")
    monkeypatch.setitem(KNOWN_VIOLATIONS, allowed, "a refactor under way")
    assert stale_entries(modules, edges, lambda_prefixes) == [allowed]
    wrong = Import("titan_lib.stores.objects", "titan_lib.pairs.mackinnon", "synthetic:1")
    assert unexpected(modules, [*edges, wrong], lambda_prefixes) == []
    assert stale_entries(modules, [*edges, wrong], lambda_prefixes) == []
    other = Import("titan_lib.stores.objects", "titan_lib.regimes.returns", "synthetic:2")
    assert unexpected(modules, [*edges, wrong, other], lambda_prefixes) == [
        "synthetic:2: titan_lib.stores.objects -> titan_lib.regimes.returns "
        "(stores imports research, a layer above)"
    ]
