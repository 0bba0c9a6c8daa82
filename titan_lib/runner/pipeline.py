"""Pipelines: notebooks run in order, each step's outputs feeding later steps.

A pipeline file (``parameters/pipelines/<name>.yaml``)::

    name: demo
    profile: quick                  # profile applied to every parameters/<notebook>.yaml
    steps:
      - name: scan                  # unique step name
        notebook: 02_pair_scan      # notebooks/<name>.ipynb, or a path
        parameters: {max_pairs: 10} # fixed values (override the notebook's defaults file)
      - name: analysis
        notebook: 03_pair_analysis
        inputs:                     # parameter <- output of an earlier step
          scan_run_id: scan.run_id  # "<step>.run_id": that step's run id
          pair_y: scan.top_pair.y   # "<step>.<path>": a value in its results sidecar

Every step's parameters, and write access to the store, are checked before the first
kernel starts. The pipeline stops at the first failed step; the runs that finished keep
their records, and the failed step has a record too (also when it could not start, e.g.
an input missing from an earlier step's results). The pipeline's own
record is ``pipelines/<pipeline_id>/pipeline.json`` (create-only).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from titan_lib.exceptions import ConflictError, NotFoundError, ParameterError, TitanError
from titan_lib.runner.execute import check_store_access, record_failure, run_notebook
from titan_lib.runner.parameter_files import (
    collect_parameters,
    default_parameter_file,
    profile_names,
    read_yaml_mapping,
    resolve_notebook,
)
from titan_lib.runner.parameters import NotebookParameter, inspect_parameters, validate_parameters
from titan_lib.runner.record import REPORT_FILE, RunRecord, new_run_id, run_key, utc_now
from titan_lib.runner.report import record_location
from titan_lib.runner.results import load_results
from titan_lib.stores.objects import ObjectStore, dumps_json

PIPELINES_PREFIX = "pipelines"
PIPELINE_FILE = "pipeline.json"

PipelineStatus = Literal["succeeded", "failed"]


@dataclass(frozen=True)
class PipelineStep:
    """One step of a pipeline file, resolved and checked."""

    name: str
    notebook: Path
    parameters: dict[str, Any]
    inputs: dict[str, str]
    declared: dict[str, NotebookParameter]


@dataclass(frozen=True)
class Pipeline:
    """A parsed pipeline file."""

    name: str
    path: Path
    profile: str | None
    steps: list[PipelineStep]


@dataclass
class StepOutcome:
    """What happened to one step."""

    name: str
    notebook: str
    status: Literal["succeeded", "failed", "not run"]
    run_id: str | None = None
    duration_s: float | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    report: str | None = None


@dataclass
class PipelineResult:
    """The outcome of a pipeline run: per step, in order."""

    pipeline_id: str
    name: str
    status: PipelineStatus
    store: str
    started_at: str
    ended_at: str
    duration_s: float
    steps: list[StepOutcome]
    record: str

    @property
    def failed_step(self) -> StepOutcome | None:
        """The step that stopped the pipeline, if any."""
        return next((s for s in self.steps if s.status == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored as ``pipeline.json``."""
        return asdict(self)


def _reference(step: str, parameter: str, ref: Any, earlier: list[str]) -> str:
    if not isinstance(ref, str) or "." not in ref:
        raise ParameterError(
            f"pipeline step {step!r}: input {parameter!r} must look like "
            f"'<step>.run_id' or '<step>.<result path>', got {ref!r}",
            {"step": step, "input": parameter},
        )
    source = ref.split(".", 1)[0]
    if source not in earlier:
        raise ParameterError(
            f"pipeline step {step!r}: input {parameter!r} refers to step {source!r}, "
            f"which is not an earlier step (earlier: {', '.join(earlier) or 'none'})",
            {"step": step, "input": parameter},
        )
    return ref


def load_pipeline(
    path: str | Path, *, profile: str | None = None, root: str | Path | None = None
) -> Pipeline:
    """Parse and check a pipeline file before anything runs.

    Parameters
    ----------
    path
        The pipeline YAML.
    profile
        Overrides the file's ``profile``.
    root
        The project folder (``notebooks/``, ``parameters/``); the working directory when
        ``None``.

    Raises
    ------
    ParameterError
        A malformed file, a duplicate step, an input that refers to a later or unknown
        step, or parameters a step's notebook does not accept (the message lists them).
    NotFoundError
        A step's notebook does not exist.
    """
    file = Path(path)
    doc = read_yaml_mapping(file, "pipeline file")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ParameterError(f"pipeline file {file} has no 'steps' list", {"path": str(file)})
    chosen = profile if profile is not None else doc.get("profile")
    steps: list[PipelineStep] = []
    known_profiles: set[str] = set()
    for position, raw in enumerate(raw_steps, start=1):
        if not isinstance(raw, dict) or "notebook" not in raw:
            raise ParameterError(
                f"pipeline file {file}: step {position} must be a mapping with a 'notebook'",
                {"path": str(file), "step": position},
            )
        notebook = resolve_notebook(str(raw["notebook"]), root)
        name = str(raw.get("name") or notebook.stem)
        if any(s.name == name for s in steps):
            raise ParameterError(
                f"pipeline file {file}: step name {name!r} is used twice", {"step": name}
            )
        fixed = raw.get("parameters") or {}
        inputs = raw.get("inputs") or {}
        if not isinstance(fixed, dict) or not isinstance(inputs, dict):
            raise ParameterError(
                f"pipeline file {file}: step {name!r} 'parameters' and 'inputs' must be mappings",
                {"step": name},
            )
        earlier = [s.name for s in steps]
        refs = {str(k): _reference(name, str(k), v, earlier) for k, v in inputs.items()}
        declared = inspect_parameters(notebook)
        values = collect_parameters(
            notebook, profile=chosen, values=fixed, root=root, require_profile=False
        )
        defaults = default_parameter_file(notebook, root)
        if defaults is not None:
            known_profiles.update(profile_names(defaults))
        static = {k: v for k, v in values.items() if k not in refs}
        try:
            static = validate_parameters(notebook, static, declared, pending=list(refs))
        except ParameterError as exc:
            raise ParameterError(
                f"pipeline step {name!r}: {exc.message}", {**exc.details, "step": name}
            ) from None
        steps.append(PipelineStep(name, notebook, static, refs, declared))
    if chosen is not None and chosen not in known_profiles:
        raise ParameterError(
            f"pipeline file {file}: unknown profile {chosen!r}; the steps' parameter files "
            f"define: {', '.join(sorted(known_profiles)) or 'no profiles'}",
            {"profile": chosen, "profiles": sorted(known_profiles)},
        )
    return Pipeline(name=str(doc.get("name") or file.stem), path=file, profile=chosen, steps=steps)


def resolve_inputs(
    step: PipelineStep, run_ids: dict[str, str], store: ObjectStore
) -> dict[str, Any]:
    """Values of a step's inputs, read from earlier steps' run ids and sidecars."""
    values: dict[str, Any] = {}
    for parameter, ref in step.inputs.items():
        source, _, path = ref.partition(".")
        if path == "run_id":
            values[parameter] = run_ids[source]
        else:
            values[parameter] = load_results(run_ids[source], store).value(path)
    return values


def run_pipeline(
    pipeline: Pipeline,
    *,
    store: str | None = None,
    progress: bool = True,
    reports: bool = True,
    on_step: Any = None,
) -> PipelineResult:
    """Run a pipeline's steps in order, passing outputs on; stop at the first failure.

    Parameters
    ----------
    pipeline
        From :func:`load_pipeline`.
    store
        Store URI for data, records and the pipeline record.
    progress
        Show papermill's progress bars.
    reports
        Render each step's HTML report (code hidden) into its record.
    on_step
        Called with each :class:`StepOutcome` as it finishes (progress reporting).

    Returns
    -------
    PipelineResult
        Status and per-step outcomes; also stored as ``pipelines/<id>/pipeline.json``.
        A failed step does not raise: check ``result.status``.

    Raises
    ------
    StoreError
        The store cannot be written (nothing was run).
    """
    opened = check_store_access(store)
    uri = opened.uri
    pipeline_id = new_run_id()
    started = utc_now()
    clock = time.perf_counter()
    run_ids: dict[str, str] = {}
    outcomes: list[StepOutcome] = []
    failed = False
    for step in pipeline.steps:
        if failed:
            outcomes.append(StepOutcome(step.name, step.notebook.stem, "not run"))
            continue
        outcome = _run_step(step, run_ids, opened, uri, pipeline_id, progress, reports)
        if outcome.run_id is not None and outcome.status == "succeeded":
            run_ids[step.name] = outcome.run_id
        failed = outcome.status == "failed"
        outcomes.append(outcome)
        if on_step is not None:
            on_step(outcome)
    key = f"{PIPELINES_PREFIX}/{pipeline_id}/{PIPELINE_FILE}"
    result = PipelineResult(
        pipeline_id=pipeline_id,
        name=pipeline.name,
        status="failed" if failed else "succeeded",
        store=uri,
        started_at=started.isoformat(),
        ended_at=utc_now().isoformat(),
        duration_s=round(time.perf_counter() - clock, 3),
        steps=outcomes,
        record=record_location(opened, key),
    )
    if not opened.put_if_absent(key, dumps_json(result.to_dict())):
        raise ConflictError(f"pipeline record {pipeline_id} already exists", {"id": pipeline_id})
    return result


def _run_step(
    step: PipelineStep,
    run_ids: dict[str, str],
    store: ObjectStore,
    uri: str,
    pipeline_id: str,
    progress: bool,
    reports: bool,
) -> StepOutcome:
    try:
        values = {**step.parameters, **resolve_inputs(step, run_ids, store)}
    except TitanError as exc:  # an input missing from a sidecar
        failed = record_failure(
            store,
            step.notebook.stem,
            step.parameters,
            f"step {step.name} did not start: {exc.message}",
            parent_id=pipeline_id,
            step=step.name,
            ename=type(exc).__name__,
        )
        return StepOutcome(
            step.name, step.notebook.stem, "failed", run_id=failed.run_id, error=exc.message
        )
    try:
        record: RunRecord = run_notebook(
            step.notebook,
            values,
            store=uri,
            parent_id=pipeline_id,
            step=step.name,
            progress=progress,
            report=reports,
            check=False,
            declared=step.declared,
            progress_label=f"{step.name:<12}",
        )
    except TitanError as exc:  # a missing kernel (recorded), a store error
        return StepOutcome(
            step.name,
            step.notebook.stem,
            "failed",
            run_id=exc.details.get("run_id"),
            error=exc.message,
        )
    outcome = StepOutcome(
        step.name,
        step.notebook.stem,
        record.status,
        run_id=record.run_id,
        duration_s=record.duration_s,
        error=record.error.message if record.error else None,
    )
    if record.succeeded:
        try:
            outcome.summary = load_results(record.run_id, store).summary
        except NotFoundError:  # a notebook without a sidecar has no summary
            outcome.summary = {}
    if REPORT_FILE in record.files:
        outcome.report = record_location(store, run_key(record.run_id, REPORT_FILE))
    return outcome
