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

A repeated run reuses what has not changed: a step whose fingerprint (notebook, resolved
parameters, the earlier runs and local files it reads, the ``titan_lib`` code; see
:mod:`titan_lib.runner.step_reuse`) matches its succeeded run in the previous run of the
same pipeline, with the store exactly as that run left it, is not executed again: its
outcome names the previous run (``reused``), whose record and results the later steps and
the dashboards read as before. Once a step executes, every later step executes too; a
failed run is never reused; ``fresh=True`` (``titan pipeline --fresh``) executes every
step.
"""

from __future__ import annotations

import json
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
from titan_lib.runner.record import (
    REPORT_FILE,
    RunRecord,
    new_run_id,
    read_record,
    run_key,
    utc_now,
)
from titan_lib.runner.report import export_report, record_location
from titan_lib.runner.results import load_results
from titan_lib.runner.step_reuse import library_fingerprint, step_fingerprint, store_state
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
    """What happened to one step.

    ``reused``: the step was not executed; ``run_id`` is its unchanged succeeded run from
    an earlier pipeline run. ``fingerprint``: what the run depended on
    (:func:`~titan_lib.runner.step_reuse.step_fingerprint`), ``None`` when not known.
    """

    name: str
    notebook: str
    status: Literal["succeeded", "failed", "not run"]
    run_id: str | None = None
    duration_s: float | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    report: str | None = None
    reused: bool = False
    fingerprint: str | None = None


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
    store_state: str | None = None
    """:func:`~titan_lib.runner.step_reuse.store_state` when the pipeline ended."""

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
    fresh: bool = False,
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
    fresh
        Execute every step, also those the previous run of this pipeline left unchanged
        (by default they reuse their runs; see the module's description).

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
    context = _StepContext(opened, uri, pipeline_id, progress, reports, library_fingerprint())
    previous = None if fresh else _reusable_steps(opened, pipeline.name)
    for step in pipeline.steps:
        if failed:
            outcomes.append(StepOutcome(step.name, step.notebook.stem, "not run"))
            continue
        outcome = _run_step(step, run_ids, context, previous)
        if not outcome.reused:
            previous = None  # what it wrote may change what any later step reads
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
        store_state=store_state(opened),
    )
    if not opened.put_if_absent(key, dumps_json(result.to_dict())):
        raise ConflictError(f"pipeline record {pipeline_id} already exists", {"id": pipeline_id})
    return result


@dataclass(frozen=True)
class _StepContext:
    """What every step of one pipeline run shares."""

    store: ObjectStore
    uri: str
    pipeline_id: str
    progress: bool
    reports: bool
    library: str


def _reusable_steps(store: ObjectStore, name: str) -> dict[str, dict[str, Any]] | None:
    """The steps of the newest earlier run of pipeline ``name``, by step name, when the
    store is exactly as that run left it; else ``None`` (nothing can be reused)."""
    keys = [k for k in store.list(PIPELINES_PREFIX) if k.endswith(f"/{PIPELINE_FILE}")]
    for key in sorted(keys, reverse=True):
        try:
            doc = json.loads(store.read_bytes(key))
        except (NotFoundError, ValueError):
            continue
        if doc.get("name") != name:
            continue
        if not doc.get("store_state") or doc["store_state"] != store_state(store):
            return None
        return {str(s.get("name")): s for s in doc.get("steps", []) if isinstance(s, dict)}
    return None


def _summary(store: ObjectStore, run_id: str) -> dict[str, Any]:
    try:
        return load_results(run_id, store).summary
    except NotFoundError:  # a notebook without a sidecar has no summary
        return {}


def _reuse(
    step: PipelineStep,
    fingerprint: str | None,
    previous: dict[str, dict[str, Any]] | None,
    context: _StepContext,
) -> StepOutcome | None:
    """The outcome of reusing the step's previous run, when it may be reused."""
    before = (previous or {}).get(step.name)
    if fingerprint is None or before is None or before.get("fingerprint") != fingerprint:
        return None
    if before.get("status") != "succeeded" or not before.get("run_id"):
        return None
    try:
        record = read_record(context.store, str(before["run_id"]))
    except NotFoundError:
        return None
    if not record.succeeded or record.notebook != step.notebook.stem:
        return None
    outcome = StepOutcome(
        step.name,
        step.notebook.stem,
        "succeeded",
        run_id=record.run_id,
        summary=_summary(context.store, record.run_id),
        reused=True,
        fingerprint=fingerprint,
    )
    report = run_key(record.run_id, REPORT_FILE)
    if context.store.exists(report):
        outcome.report = record_location(context.store, report)
    elif context.reports:  # the earlier run was made without reports
        outcome.report = export_report(context.store, record.run_id)
    return outcome


def _run_step(
    step: PipelineStep,
    run_ids: dict[str, str],
    context: _StepContext,
    previous: dict[str, dict[str, Any]] | None,
) -> StepOutcome:
    store = context.store
    try:
        values = {**step.parameters, **resolve_inputs(step, run_ids, store)}
    except TitanError as exc:  # an input missing from a sidecar
        failed = record_failure(
            store,
            step.notebook.stem,
            step.parameters,
            f"step {step.name} did not start: {exc.message}",
            parent_id=context.pipeline_id,
            step=step.name,
            ename=type(exc).__name__,
        )
        return StepOutcome(
            step.name, step.notebook.stem, "failed", run_id=failed.run_id, error=exc.message
        )
    sources = {ref.split(".", 1)[0] for ref in step.inputs.values()}
    fingerprint = step_fingerprint(
        step.notebook,
        values,
        {source: run_ids[source] for source in sorted(sources)},
        declared=step.declared,
        library=context.library,
        store=context.uri,
    )
    reused = _reuse(step, fingerprint, previous, context)
    if reused is not None:
        return reused
    try:
        record: RunRecord = run_notebook(
            step.notebook,
            values,
            store=context.uri,
            parent_id=context.pipeline_id,
            step=step.name,
            progress=context.progress,
            report=context.reports,
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
            fingerprint=fingerprint,
        )
    outcome = StepOutcome(
        step.name,
        step.notebook.stem,
        record.status,
        run_id=record.run_id,
        duration_s=record.duration_s,
        error=record.error.message if record.error else None,
        fingerprint=fingerprint,
    )
    if record.succeeded:
        outcome.summary = _summary(store, record.run_id)
    if REPORT_FILE in record.files:
        outcome.report = record_location(store, run_key(record.run_id, REPORT_FILE))
    return outcome
