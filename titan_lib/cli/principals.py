"""``titan principals``: set, show and list principals' limits and preferences.

Operators use it on the ledger the API reads (a SQLite file locally, ``dynamodb://<table>``
in AWS); the API's ``PUT /principals/{sub}/limits`` writes the same profiles.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

LEDGER_OPTION = typer.Option(
    "--ledger",
    "-l",
    help="Ledger URI: a SQLite path or dynamodb://<table>. Default: $TITAN_LEDGER or "
    "ledger.sqlite in the store folder.",
)
LIMIT_NAMES = (
    "max_order_notional",
    "max_gross_notional",
    "max_open_pairs",
    "max_orders_per_day",
    "allowed_models",
    "preferences",
)


principals_app = typer.Typer(
    help="Principals (token subjects): their own limits and trading preferences.",
    no_args_is_help=True,
)


@principals_app.command("set")
def set_command(
    subject: Annotated[str, typer.Argument(help="The principal (a token's sub).")],
    max_order_notional: Annotated[
        float | None, typer.Option(help="Largest order notional (currency).")
    ] = None,
    max_gross_notional: Annotated[
        float | None, typer.Option(help="Largest gross notional over its pairs.")
    ] = None,
    max_open_pairs: Annotated[int | None, typer.Option(help="Most open pairs.")] = None,
    max_orders_per_day: Annotated[int | None, typer.Option(help="Most orders per UTC day.")] = None,
    allowed_models: Annotated[
        str | None,
        typer.Option(help='Comma-separated model ids, or "all".'),
    ] = None,
    preferences: Annotated[
        str | None, typer.Option(help="Preferences as a JSON object (replaces them).")
    ] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(help=f"Remove a limit (repeatable): {', '.join(LIMIT_NAMES)}."),
    ] = None,
    ledger: Annotated[str | None, LEDGER_OPTION] = None,
) -> None:
    """Change a principal's limits or preferences; options not given stay as stored."""
    from dataclasses import replace

    from titan_lib.core.execution.ledger import utc_now_iso
    from titan_lib.core.execution.ledgers import open_ledger
    from titan_lib.core.execution.principals import PrincipalProfile, check_subject
    from titan_lib.exceptions import ParameterError

    check_subject(subject)
    book = open_ledger(ledger)
    profile = book.principal_profile(subject) or PrincipalProfile(subject)
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("max_order_notional", max_order_notional),
            ("max_gross_notional", max_gross_notional),
            ("max_open_pairs", max_open_pairs),
            ("max_orders_per_day", max_orders_per_day),
        )
        if value is not None
    }
    if allowed_models is not None:
        models = [m.strip() for m in allowed_models.split(",") if m.strip()]
        changes["allowed_models"] = None if models == ["all"] else tuple(sorted(set(models)))
    wanted = dict(profile.preferences)
    if preferences is not None:
        try:
            wanted = json.loads(preferences)
        except ValueError as exc:
            raise ParameterError(f"--preferences is not JSON: {exc}") from None
    for name in clear or ():
        if name not in LIMIT_NAMES:
            raise ParameterError(f"--clear takes one of {', '.join(LIMIT_NAMES)}, got {name!r}")
        if name == "preferences":
            wanted = {}
        else:
            changes[name] = None
    updated = PrincipalProfile(
        subject=subject,
        limits=replace(profile.limits, **changes),
        preferences=wanted,
        updated_at=utc_now_iso(),
        updated_by="cli",
    )
    book.set_principal_profile(updated)
    typer.echo(json.dumps(updated.to_dict(), indent=2, sort_keys=True))


@principals_app.command("show")
def show_command(
    subject: Annotated[str, typer.Argument(help="The principal (a token's sub).")],
    ledger: Annotated[str | None, LEDGER_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """A principal's limits, the limits that bind it, preferences and today's usage."""
    import time

    from titan_lib.core.execution.ledgers import open_ledger
    from titan_lib.core.execution.principals import check_subject
    from titan_lib.core.execution.risk import RiskLimits
    from titan_lib.core.serving.principals import principal_document

    check_subject(subject)
    document = principal_document(open_ledger(ledger), subject, RiskLimits.from_env(), time.time())
    if as_json:
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    typer.echo(f"principal: {subject}" + ("" if document["stored"] else " (no profile)"))
    effective = document["effective_limits"]
    for name, own in document["limits"].items():
        typer.echo(f"  {name:<20} own {own!s:<14} binding {effective[name]}")
    typer.echo(f"  preferences          {json.dumps(document['preferences'])}")
    usage = document["usage"]
    typer.echo(
        f"usage on {usage['day']}: {usage['orders_today']} order(s), gross "
        f"{usage['gross_notional']:,.2f} over {usage['open_pairs']} pair(s)"
    )


@principals_app.command("list")
def list_command(ledger: Annotated[str | None, LEDGER_OPTION] = None) -> None:
    """Every principal with a stored profile."""
    from titan_lib.core.execution.ledgers import open_ledger

    profiles = open_ledger(ledger).list_principals()
    if not profiles:
        typer.echo("no principal profiles; set one with `titan principals set SUB ...`")
        return
    typer.echo(f"{'principal':<24} {'gross':>12} {'order':>12} {'pairs':>6} {'per day':>8}")
    for p in profiles:
        lim = p.limits
        typer.echo(
            f"{p.subject:<24} {lim.max_gross_notional!s:>12} {lim.max_order_notional!s:>12} "
            f"{lim.max_open_pairs!s:>6} {lim.max_orders_per_day!s:>8}"
        )


def register(app: typer.Typer) -> None:
    """Add ``titan principals ...``."""
    app.add_typer(principals_app, name="principals")
