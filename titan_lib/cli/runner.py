"""``titan run``, ``titan runs``, ``titan pipeline``, ``titan sweep`` and ``titan lab``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from titan_lib.cli.options import STORE_OPTION
from titan_lib.config import store_option

if TYPE_CHECKING:
    from titan_lib.runner.pipeline import PipelineResult, StepOutcome
    from titan_lib.runner.record import RunRecord

PROFILE_OPTION = typer.Option(
    "--profile", help="Profile from parameters/<notebook>.yaml, e.g. quick or full."
)
PASS_THROUGH_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Context settings of ``titan run``: its ``-p NAME VALUE`` pairs arrive in ``ctx.args``."""


def _cli_values(notebook: Path, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs typed by the notebook's declaration."""
    from titan_lib.runner.parameters import inspect_parameters, parse_cli_value

    declared = inspect_parameters(notebook)
    return {
        name: parse_cli_value(raw, declared[name].type_name if name in declared else "None")
        for name, raw in pairs
    }


def _parameter_pairs(args: list[str]) -> list[tuple[str, str]]:
    """``-p NAME VALUE`` / ``--parameter NAME VALUE`` pairs from the command's extra args."""
    from titan_lib.exceptions import ParameterError

    pairs: list[tuple[str, str]] = []
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag not in ("-p", "--parameter"):
            raise ParameterError(f"unexpected argument {flag!r}; set parameters with -p NAME VALUE")
        if len(rest) < 2:
            raise ParameterError(f"{flag} needs a NAME and a VALUE")
        pairs.append((rest.pop(0), rest.pop(0)))
    return pairs


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_format_value(v) for v in value[:8]) + (" ..." if len(value) > 8 else "")
    return str(value)


def _record_lines(record: RunRecord, location: str) -> list[str]:
    lines = [
        f"run        {record.run_id}",
        f"notebook   {record.notebook}",
        f"status     {record.status}",
        f"started    {record.started_at}",
        f"duration   {record.duration_s:.1f} s",
        f"code       {record.code_version}",
        f"host       {record.host} (Python {record.python})",
    ]
    if record.parent_id:
        step = f" step {record.step}" if record.step else ""
        lines.append(f"parent     {record.parent_id}{step}")
    if record.parameters:
        lines.append("parameters")
        lines += [f"  {k} = {_format_value(v)}" for k, v in sorted(record.parameters.items())]
    if record.error:
        lines.append(f"error      {record.error.message}")
    lines.append(f"files      {', '.join(record.files)}")
    lines.append(f"record     {location}")
    return lines


def _table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as aligned text columns (the union of their keys, in first-seen order)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [columns] + [
        [_format_value(row[c]) if row.get(c) is not None else "-" for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]


def _step_line(outcome: StepOutcome) -> str:
    from titan_lib.runner.step_reuse import REUSE_REASON

    if outcome.reused:
        return (
            f"  {outcome.status:<9} {outcome.name:<12} reused run {outcome.run_id} ({REUSE_REASON})"
        )
    took = f"{outcome.duration_s:6.1f} s" if outcome.duration_s is not None else "        "
    run = outcome.run_id or "-"
    return f"  {outcome.status:<9} {outcome.name:<12} {took}  {run}"


def _print_pipeline_summary(result: PipelineResult, reports_dir: Path | None) -> None:
    from titan_lib.runner.report import export_report, record_location
    from titan_lib.stores.objects import open_store

    store = open_store(result.store)
    typer.echo(
        f"\npipeline {result.name} {result.status} in {result.duration_s:.0f} s "
        f"(id {result.pipeline_id})"
    )
    for outcome in result.steps:
        typer.echo(_step_line(outcome))
    failed = result.failed_step
    if failed is not None and failed.error:
        typer.echo(f"\nstopped at step {failed.name}: {failed.error}")
    for outcome in result.steps:
        if outcome.summary:
            typer.echo(f"\n{outcome.name} ({outcome.notebook})")
            for label, value in outcome.summary.items():
                typer.echo(f"  {label}: {_format_value(value)}")
    typer.echo(f"\nrun records: {record_location(store, 'runs')}")
    typer.echo(f"pipeline record: {result.record}")
    reports = [o for o in result.steps if o.report]
    if reports:
        typer.echo("HTML reports (code hidden):")
        for outcome in reports:
            where = outcome.report
            if reports_dir is not None and outcome.run_id is not None:
                target = reports_dir / result.pipeline_id / f"{outcome.name}.html"
                where = export_report(store, outcome.run_id, target)
            typer.echo(f"  {outcome.name:<12} {where}")


def run_command(
    ctx: typer.Context,
    notebook: Annotated[str, typer.Argument(help="notebooks/<NAME>.ipynb by name, or a path.")],
    file: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="Parameter YAML (repeatable; later wins)."),
    ] = None,
    profile: Annotated[str | None, PROFILE_OPTION] = None,
    defaults: Annotated[bool, typer.Option(help="Read parameters/<notebook>.yaml first.")] = True,
    report: Annotated[bool, typer.Option(help="Also render report.html (code hidden).")] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Run a notebook with papermill and record the run under runs/<run id>/.

    Set parameters with -p NAME VALUE (repeatable; wins over files), as in papermill.
    """
    from titan_lib.runner.execute import run_notebook
    from titan_lib.runner.parameter_files import collect_parameters, resolve_notebook
    from titan_lib.runner.record import run_key
    from titan_lib.runner.report import record_location
    from titan_lib.stores.objects import open_store

    path = resolve_notebook(notebook)
    values = collect_parameters(
        path,
        profile=profile,
        files=file,
        values=_cli_values(path, _parameter_pairs(ctx.args)),
        use_defaults_file=defaults,
    )
    record = run_notebook(path, values, store=store, progress=progress, report=report)
    location = record_location(open_store(record.store), run_key(record.run_id, ""))
    typer.echo(f"run {record.run_id} {record.status} in {record.duration_s:.1f} s")
    typer.echo(f"record: {location.rstrip('/')}")


runs_app = typer.Typer(help="Run records: list, show, export to HTML.", no_args_is_help=True)


@runs_app.command("list")
def list_command(
    notebook: Annotated[str | None, typer.Option(help="Only runs of this notebook.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status: succeeded or failed.")
    ] = None,
    parent: Annotated[str | None, typer.Option(help="Only runs of this pipeline/sweep.")] = None,
    limit: Annotated[int, typer.Option(help="Show the newest N runs.")] = 20,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """List run records, newest last."""
    from titan_lib.exceptions import ParameterError
    from titan_lib.runner.record import list_records
    from titan_lib.stores.objects import open_store

    if status not in (None, "succeeded", "failed"):
        raise ParameterError(f"--status must be succeeded or failed, got {status!r}")
    wanted: Literal["succeeded", "failed"] | None = status  # type: ignore[assignment]
    records = list_records(open_store(store), notebook=notebook, status=wanted, parent_id=parent)
    if not records:
        typer.echo(
            "no runs recorded in this store; run the main job with "
            f"`titan pipeline parameters/pipelines/demo.yaml{store_option(store)}`"
        )
        return
    typer.echo(f"{'run id':<28} {'notebook':<20} {'status':<9} {'seconds':>8}  parent")
    for rec in records[-limit:]:
        typer.echo(
            f"{rec.run_id:<28} {rec.notebook:<20} {rec.status:<9} {rec.duration_s:>8.1f}  "
            f"{rec.parent_id or ''}"
        )


@runs_app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print run.json as is.")] = False,
    open_dashboard: Annotated[
        bool,
        typer.Option("--open", help="Print the dashboard URL with this run preselected, and stop."),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of `titan dashboard` (with --open).")] = 8866,
    token: Annotated[
        str | None, typer.Option(help="Token of `titan dashboard` (with --open).")
    ] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Show one run: status, timings, parameters, error, results summary."""
    from titan_lib.exceptions import NotFoundError
    from titan_lib.runner.record import read_record, run_key
    from titan_lib.runner.report import record_location
    from titan_lib.runner.results import load_results
    from titan_lib.stores.objects import dumps_json, open_store

    opened = open_store(store)
    record = read_record(opened, run_id)
    if open_dashboard:
        from titan_lib.dashboards.catalog import dashboard_url

        typer.echo(dashboard_url(record.run_id, notebook=record.notebook, port=port, token=token))
        return
    if as_json:
        typer.echo(dumps_json(record.to_dict()).decode())
        return
    location = record_location(opened, run_key(run_id, "")).rstrip("/")
    for line in _record_lines(record, location):
        typer.echo(line)
    if record.succeeded:
        try:
            results = load_results(run_id, opened)
        except NotFoundError:
            return
        if results.summary:
            typer.echo("summary")
            for label, value in results.summary.items():
                typer.echo(f"  {label}: {_format_value(value)}")
        if results.tables:
            typer.echo(f"tables     {', '.join(sorted(results.tables))}")


@runs_app.command("export")
def export_command(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the HTML here.")
    ] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Export the output notebook to HTML (report mode: code hidden)."""
    from titan_lib.runner.report import export_report
    from titan_lib.stores.objects import open_store

    typer.echo(export_report(open_store(store), run_id, output))


def pipeline_command(
    file: Annotated[Path, typer.Argument(help="parameters/pipelines/<name>.yaml")],
    profile: Annotated[
        str | None, typer.Option(help="Profile for every step (overrides the file's).")
    ] = None,
    reports: Annotated[bool, typer.Option(help="Render each step's HTML report.")] = True,
    reports_dir: Annotated[
        Path | None,
        typer.Option(help="Also copy HTML reports here. Default: $TITAN_ARTIFACTS/reports."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Run every step, also those unchanged since this pipeline's last run "
            "(by default they reuse that run).",
        ),
    ] = False,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Run notebooks in order, passing outputs on; stop at the first failure.

    A step whose notebook, parameters and inputs are unchanged since this pipeline's last
    run on the same, unchanged store reuses that run instead of executing again.
    """
    from titan_lib.exceptions import RunFailedError
    from titan_lib.runner.pipeline import load_pipeline, run_pipeline

    pipeline = load_pipeline(file, profile=profile)
    typer.echo(
        f"pipeline {pipeline.name}: {len(pipeline.steps)} steps"
        + (f", profile {pipeline.profile}" if pipeline.profile else "")
    )
    result = run_pipeline(
        pipeline,
        store=store,
        progress=progress,
        reports=reports,
        on_step=lambda outcome: typer.echo(_step_line(outcome)),
        fresh=fresh,
    )
    artifacts = os.environ.get("TITAN_ARTIFACTS")
    copies = reports_dir or (Path(artifacts) / "reports" if artifacts else None)
    _print_pipeline_summary(result, copies if reports else None)
    if result.status != "succeeded":
        failed = result.failed_step
        raise RunFailedError(
            f"pipeline {result.name} stopped at step "
            f"{failed.name if failed else '?'}; the steps before it kept their records",
            {"pipeline_id": result.pipeline_id},
        )


def sweep_command(
    notebook: Annotated[str, typer.Argument(help="notebooks/<NAME>.ipynb by name, or a path.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Grid YAML.")],
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address; default: a LocalCluster for the sweep."),
    ] = None,
    workers: Annotated[int, typer.Option(help="LocalCluster worker processes.")] = 2,
    profile: Annotated[str | None, PROFILE_OPTION] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Run one notebook over a grid of parameter sets on Dask; list every failure."""
    from titan_lib.exceptions import RunFailedError
    from titan_lib.runner.parameter_files import collect_parameters, resolve_notebook
    from titan_lib.runner.sweep import load_grid, run_sweep

    path = resolve_notebook(notebook)
    base = collect_parameters(path, profile=profile)
    sets = [{**base, **values} for values in load_grid(file)]
    typer.echo(f"sweep {path.stem}: {len(sets)} parameter sets")
    result = run_sweep(
        path,
        sets,
        store=store,
        scheduler=scheduler,
        workers=workers,
        on_run=lambda run: typer.echo(
            f"  set {run.index + 1:>3}: {run.status:<9} {run.run_id or '-'}"
        ),
    )
    ok = len(result.runs) - len(result.failures)
    typer.echo(
        f"\nsweep {result.sweep_id}: {ok} succeeded, {len(result.failures)} failed "
        f"in {result.duration_s:.0f} s on {result.scheduler}"
    )
    for run in result.failures:
        shown = ", ".join(f"{k}={_format_value(v)}" for k, v in sorted(run.parameters.items()))
        typer.echo(f"  failed set {run.index + 1} ({shown}): {run.error}")
    typer.echo(f"sweep record: {result.record}")
    typer.echo(f"compare the runs: titan sweeps {result.sweep_id}{store_option(store)}")
    if result.failures:
        raise RunFailedError(
            f"{len(result.failures)} of {len(result.runs)} runs of the sweep failed",
            {"sweep_id": result.sweep_id},
        )


def sweeps_command(
    sweep_id: Annotated[
        str | None,
        typer.Argument(help="A sweep id (or its unique start): compare its runs."),
    ] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """List sweeps, or compare the runs of one: the parameters that vary, each run's
    status and headline results."""
    from titan_lib.runner.sweep import compare_runs, list_sweeps, read_sweep
    from titan_lib.stores.objects import open_store

    opened = open_store(store)
    if sweep_id is None:
        sweeps = list_sweeps(opened)
        if not sweeps:
            typer.echo(
                "no sweeps recorded in this store; run one with `titan sweep 05_backtest "
                f"-f parameters/grids/05_backtest_costs.yaml{store_option(store)}`"
            )
            return
        rows = [
            {
                "sweep id": s.sweep_id,
                "notebook": s.notebook,
                "runs": len(s.runs),
                "failed": len(s.failures),
                "seconds": round(s.duration_s),
            }
            for s in sweeps
        ]
        for line in _table_lines(rows):
            typer.echo(line)
        return
    sweep = read_sweep(opened, sweep_id)
    typer.echo(
        f"sweep {sweep.sweep_id}: notebook {sweep.notebook}, {len(sweep.runs)} runs, "
        f"{len(sweep.failures)} failed, {sweep.duration_s:.0f} s on {sweep.scheduler}"
    )
    for line in _table_lines(compare_runs(opened, sweep)):
        typer.echo(line)


def lab_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8888,
    ip: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    browser: Annotated[bool, typer.Option(help="Open a browser.")] = True,
    token: Annotated[
        str | None, typer.Option(help="Access token (default: JupyterLab generates one).")
    ] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Open JupyterLab on notebooks/ with the titan kernel; its kernels use the store."""
    import sys

    from titan_lib.runner.lab import lab_command as build
    from titan_lib.runner.lab import lab_environment

    command = build(ip=ip, port=port, open_browser=browser, token=token)
    env = lab_environment(store)
    typer.echo(f"store     {env['TITAN_STORE']} (TITAN_STORE in every kernel)")
    sys.stdout.flush()
    # Replace this process: signals (Ctrl-C, terminate) reach JupyterLab itself.
    os.execve(command[0], command, env)


def register(app: typer.Typer) -> None:
    """Add the notebook-runner commands."""
    app.command("run", context_settings=PASS_THROUGH_ARGS)(run_command)
    app.add_typer(runs_app, name="runs")
    app.command("pipeline")(pipeline_command)
    app.command("sweep")(sweep_command)
    app.command("sweeps")(sweeps_command)
    app.command("lab")(lab_command)
