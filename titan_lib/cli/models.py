"""``titan models``: publish, list, show and retire SignalModels in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

STORE_OPTION = typer.Option(
    "--store",
    "-s",
    help="Store URI: a folder or s3://bucket/prefix. Default: $TITAN_STORE or ./titan-data.",
)


def register(app: typer.Typer) -> None:
    """Add ``titan models ...``."""
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
            f"{'created':<20} status"
        )
        for entry in entries:
            m = entry.model
            status = "served" if entry.served else "retired"
            typer.echo(
                f"{m.model_id[:16]:<16} {m.y:<8} {m.x:<8} {m.zscore.method:<8} "
                f"{m.fit.end:<11} {m.provenance.created_at[:19]:<20} {status}"
            )

    @models_app.command("show")
    def show_command(
        model_id: Annotated[str, typer.Argument(help="Model id (64 hex characters).")],
        store: Annotated[str | None, STORE_OPTION] = None,
    ) -> None:
        """Print a model's JSON document and its retirement status."""
        from titan_lib.core.model_registry import get_model, retirement

        model = get_model(model_id, store)
        typer.echo(model.to_json())
        marker = retirement(model_id, store)
        if marker is None:
            typer.echo("status: served")
        else:
            typer.echo(f"status: retired at {marker.retired_at} ({marker.reason or 'no reason'})")

    @models_app.command("publish")
    def publish_command(
        path: Annotated[Path, typer.Argument(help="A SignalModel JSON file.")],
        store: Annotated[str | None, STORE_OPTION] = None,
    ) -> None:
        """Validate a model document and publish it (never overwrites an existing id)."""
        from titan_lib.core.model_registry import publish
        from titan_lib.core.signal_model import SignalModel
        from titan_lib.exceptions import NotFoundError

        if not path.is_file():
            raise NotFoundError(f"no such file: {path}", {"path": str(path)})
        result = publish(SignalModel.from_json(path.read_bytes()), store)
        verb = "published" if result.created else "already published"
        typer.echo(f"{verb}: {result.model_id}")

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

    app.add_typer(models_app, name="models")
