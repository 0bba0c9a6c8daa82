"""``titan models``: publish, list, show and retire SignalModels in the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from titan_lib.cli.options import STORE_OPTION

if TYPE_CHECKING:
    from titan_lib.core.signal_model import Approval


models_app = typer.Typer(
    help="Published SignalModels: list, show, publish, retire.", no_args_is_help=True
)


@models_app.command("list")
def list_command(
    all_models: Annotated[bool, typer.Option("--all", help="Include retired models.")] = False,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """List served models (with --all, retired ones too)."""
    from titan_lib.core.model_registry import list_models

    entries = list_models(store, include_retired=all_models)
    if not entries:
        typer.echo("no published models; publish one with `titan models publish FILE`")
        return
    typer.echo(
        f"{'model_id':<16} {'y':<8} {'x':<8} {'z-score':<8} {'fit end':<11} "
        f"{'created':<20} {'status':<8} approval"
    )
    for entry in entries:
        m = entry.model
        status = "served" if entry.served else "retired"
        typer.echo(
            f"{m.model_id[:16]:<16} {m.y:<8} {m.x:<8} {m.zscore.method:<8} "
            f"{m.fit.end:<11} {m.provenance.created_at[:19]:<20} {status:<8} "
            f"{_approval_label(m.approval)}"
        )


@models_app.command("show")
def show_command(
    model_id: Annotated[str, typer.Argument(help="Model id (64 hex characters).")],
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Print a model's JSON document, its publish-gate verdict and retirement status."""
    from titan_lib.core.model_registry import get_model, retirement

    model = get_model(model_id, store)
    typer.echo(model.to_json())
    if model.approval is None:
        typer.echo("approval: none recorded (published without the publish gate)")
    else:
        typer.echo(f"approval: {model.approval.status.upper()}: {model.approval.describe()}")
        for c in model.approval.criteria:
            typer.echo(f"  {'pass' if c.passed else 'FAIL'}  {c.describe()}")
    marker = retirement(model_id, store)
    if marker is None:
        typer.echo("status: served")
    else:
        typer.echo(f"status: retired at {marker.retired_at} ({marker.reason or 'no reason'})")
    _echo_health(model_id, store)


@models_app.command("publish")
def publish_command(
    path: Annotated[Path, typer.Argument(help="A SignalModel JSON file.")],
    override: Annotated[
        str | None,
        typer.Option(
            "--override",
            help="Publish a candidate that fails the publish gate; the reason, who and "
            "when are recorded in the model document.",
        ),
    ] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Validate a model document, run the publish gate on the evidence recorded in it,
    and publish it (never overwrites an existing id).

    A candidate that fails the gate (or carries no evidence) is refused with the
    failed criteria, unless --override gives a reason.
    """
    from titan_lib.backtest.publish_gate import publish_approved, recorded_evidence
    from titan_lib.core.signal_model import SignalModel
    from titan_lib.exceptions import NotFoundError

    if not path.is_file():
        raise NotFoundError(f"no such file: {path}", {"path": str(path)})
    model = SignalModel.from_json(path.read_bytes())
    result, approval = publish_approved(
        model, recorded_evidence(model), override_reason=override, store=store
    )
    verb = "published" if result.created else "already published"
    typer.echo(f"{verb}: {result.model_id}")
    typer.echo(f"approval: {approval.status.upper()}: {approval.describe()}")


@models_app.command("retire")
def retire_command(
    model_id: Annotated[str, typer.Argument(help="Model id (64 hex characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is retired.")] = "",
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Stop serving a model; it stays readable."""
    from titan_lib.core.model_registry import retire

    marker = retire(model_id, reason, store)
    typer.echo(f"retired: {model_id} at {marker.retired_at}")


@models_app.command("monitor")
def monitor_command(
    store: Annotated[str | None, STORE_OPTION] = None,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Ledger URI for the P&L criteria and the flatten policy: a SQLite path "
            "or dynamodb://<table>. Default: $TITAN_LEDGER or ledger.sqlite in the store.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every served model's health, keep the records, retire broken models.

    The same code as the Lambda's daily run after the close. Thresholds come from
    TITAN_HEALTH_*, the broken-model policy from TITAN_BROKEN_MODEL_POLICY
    (close-only or flatten) and per-model loss limits from TITAN_MODEL_MAX_LOSS.
    """
    import json

    from titan_lib.core.execution.ledgers import open_ledger
    from titan_lib.core.serving.monitoring import MonitorSettings, monitor_models
    from titan_lib.core.serving.orders import store_execution
    from titan_lib.stores.objects import open_store

    settings = MonitorSettings.from_env()
    target = open_store(store)
    book = None
    uri = ledger or _default_ledger(target.uri)
    if uri is not None:
        book = open_ledger(uri)
    execution = None
    if book is not None and settings.policy == "flatten" and not dry_run:
        execution = store_execution(target, book)
    report = monitor_models(target, book, settings=settings, execution=execution, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    heading = "dry run: nothing written" if dry_run else f"policy {report.policy}"
    typer.echo(f"health check at {report.checked_at} ({heading})")
    for check in report.checks:
        action = "retired" if check.retired else ""
        if check.flatten is not None:
            action += f" flatten {check.flatten['status']}"
        detail = check.error if check.state == "error" else check.reason
        typer.echo(
            f"{check.model_id[:16]:<16} {check.state:<8} {action.strip():<18} {detail or ''}"
        )
    counts = ", ".join(f"{n} {state}" for state, n in report.counts.items() if n)
    typer.echo(f"{len(report.checks)} model(s): {counts or 'none served'}")


def register(app: typer.Typer) -> None:
    """Add ``titan models ...``."""
    app.add_typer(models_app, name="models")


def _default_ledger(store_uri: str) -> str | None:
    """``$TITAN_LEDGER``, else an existing ``ledger.sqlite`` of a local store, else None."""
    import os

    named = os.environ.get("TITAN_LEDGER")
    if named:
        return named
    if store_uri.startswith("s3://"):
        return None
    path = Path(store_uri.removeprefix("file://")) / "ledger.sqlite"
    return str(path) if path.is_file() else None


def _echo_health(model_id: str, store: str | None, history: int = 5) -> None:
    """Print the model's latest health and its last ``history`` records."""
    from titan_lib.core.model_health_store import health_history
    from titan_lib.stores.objects import open_store

    records = health_history(open_store(store), model_id, limit=history)
    if not records:
        typer.echo("health: never checked (run `titan models monitor`)")
        return
    latest = records[-1]
    typer.echo(
        f"health: {latest.state} as of {latest.as_of} (checked {latest.checked_at[:19]})"
        + (f": {latest.reason}" if latest.reason else "")
    )
    for record in records:
        typer.echo(f"  {record.checked_at[:19]}  {record.as_of}  {record.state:<8} {record.reason}")


def _approval_label(approval: Approval | None) -> str:
    """``passed``, ``OVERRIDE`` (failed, published under an override), or ``none``."""
    if approval is None:
        return "none"
    return "passed" if approval.passed else approval.status.upper()
