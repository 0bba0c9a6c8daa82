"""``titan pairs``: scan a universe for cointegrated pairs and browse stored scans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from titan_lib.cli.options import STORE_OPTION

if TYPE_CHECKING:
    import polars as pl

TABLE_COLUMNS = (
    ("rank", 5, "d"),
    ("y", -8, "s"),
    ("x", -8, "s"),
    ("hedge_ratio", 11, ".4f"),
    ("tstat", 8, ".3f"),
    ("pvalue_yx", 9, ".2e"),
    ("pvalue_xy", 9, ".2e"),
    ("pvalue", 9, ".2e"),
    ("qvalue", 9, ".2e"),
    ("lag", 4, "d"),
    ("half_life", 9, ".1f"),
    ("hurst", 6, ".3f"),
    ("crossings", 9, "d"),
    ("nobs", 6, "d"),
    ("reason", -1, "s"),
)
"""Printed columns: name, width (negative: left-aligned), number format."""


def _cell(value: Any, width: int, fmt: str) -> str:
    align = "<" if width < 0 else ">"
    text = "-" if value is None else format(value, fmt)
    return f"{text:{align}{abs(width)}}"


def format_pairs(table: pl.DataFrame, rows: int) -> str:
    """The first ``rows`` rows of a scan table as fixed-width text."""
    lines = [" ".join(_cell(name, width, "s") for name, width, _ in TABLE_COLUMNS).rstrip()]
    for rec in table.head(rows).iter_rows(named=True):
        cells = [_cell(rec.get(n), w, f) for n, w, f in TABLE_COLUMNS]
        if rec.get("reason") is None:
            cells[-1] = ""
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def direction_note(meta: dict[str, Any]) -> str:
    """One line: how the p-values and q-values of a scan were made."""
    rule = meta.get("pvalue_rule") or "pvalue = pvalue_yx (y on x)"
    family = meta.get("fdr", {}).get("n_tests")
    counted = (
        f"q-values over all {family} pairs of the universe (untested count as p = 1)"
        if family is not None
        else "q-values over the pairs tested"
    )
    return f"{rule}; {counted}"


pairs_app = typer.Typer(
    help="Pair engine: cointegration scans of a universe, stored scans.",
    no_args_is_help=True,
)


@pairs_app.command("scan")
def scan_command(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Universe (default: every stored symbol).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
    prescreen: Annotated[
        Literal["correlation", "distance"] | None,
        typer.Option(help="Test only each symbol's top-k partners by this screen."),
    ] = None,
    top_k: Annotated[int, typer.Option(help="Partners per symbol kept by the screen.")] = 10,
    transform: Annotated[Literal["log", "level"], typer.Option(help="Price transform.")] = "log",
    trend: Annotated[Literal["c", "ct"], typer.Option(help="Deterministic terms.")] = "c",
    autolag: Annotated[
        Literal["aic", "bic", "none"], typer.Option(help="ADF lag selection.")
    ] = "aic",
    maxlag: Annotated[int | None, typer.Option(help="Largest ADF lag.")] = None,
    direction: Annotated[
        Literal["symmetric", "y_on_x"],
        typer.Option(
            help="symmetric: test y on x and x on y, p-value the larger (independent of "
            "ticker spelling); y_on_x: only the earlier symbol on the later."
        ),
    ] = "symmetric",
    min_obs: Annotated[int, typer.Option(help="Minimum common observations.")] = 252,
    chunk_size: Annotated[int, typer.Option(help="Symbols per block task.")] = 512,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address, or 'local' to start a LocalCluster."),
    ] = None,
    show: Annotated[int, typer.Option(help="Rows of the ranked table to print.")] = 20,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    write: Annotated[bool, typer.Option(help="Store the scan.")] = True,
) -> None:
    """Test every pair (or the pre-screened ones) and print the ranked table."""
    from titan_lib.pairs.scan import scan

    result = scan(
        symbols or None,
        start,
        end,
        store,
        prescreen=prescreen,
        top_k=top_k,
        price_transform=transform,
        trend=trend,
        autolag=None if autolag == "none" else autolag,
        maxlag=maxlag,
        direction=direction,
        min_obs=min_obs,
        chunk_size=chunk_size,
        scheduler=scheduler,
        progress=progress,
        write=write,
    )
    counts = result.meta["counts"]
    stored = f"stored as {result.scan_id}" if write else "not stored"
    typer.echo(
        f"scan {result.scan_id}: {counts['symbols']} symbols, {counts['tested']} pairs "
        f"tested, {counts['q_below_0.05']} with q <= 0.05 "
        f"({counts['tradable_q_below_0.05']} tradable), "
        f"{result.meta['first_date']}..{result.meta['last_date']} "
        f"({result.meta['seconds']:.2f} s); {stored}"
    )
    typer.echo(format_pairs(result.pairs, show))
    typer.echo(direction_note(result.meta))


@pairs_app.command("list")
def list_command(store: Annotated[str | None, STORE_OPTION] = None) -> None:
    """List stored scans, newest first."""
    from titan_lib.pairs.scan import list_scans

    table = list_scans(store)
    if table.height == 0:
        typer.echo("no scans stored; run `titan pairs scan`")
        return
    typer.echo(f"{'scan_id':<26} {'created_at':<26} {'symbols':>7} {'tested':>8} {'q<=0.05':>7}")
    for rec in table.iter_rows(named=True):
        typer.echo(
            f"{rec['scan_id']:<26} {rec['created_at'][:25]:<26} {rec['symbols']:>7} "
            f"{rec['tested']:>8} {rec['q_below_0.05']:>7}"
        )


@pairs_app.command("show")
def show_command(
    scan_id: Annotated[str, typer.Argument(help="A scan id from `titan pairs list`.")],
    store: Annotated[str | None, STORE_OPTION] = None,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 20,
) -> None:
    """Print a stored scan's settings and its best pairs."""
    from titan_lib.pairs.scan import load_scan

    result = load_scan(scan_id, store)
    meta = result.meta
    params = meta["parameters"]
    typer.echo(
        f"scan {scan_id} created {meta['created_at']}: {meta['counts']['symbols']} symbols, "
        f"{meta['first_date']}..{meta['last_date']}, trend={params['trend']}, "
        f"autolag={params['autolag']}, transform={params['price_transform']}, "
        f"prescreen={params['prescreen']}, direction={params.get('direction', 'y_on_x')}"
    )
    typer.echo(format_pairs(result.pairs, top))
    typer.echo(direction_note(meta))


def register(app: typer.Typer) -> None:
    """Add ``titan pairs ...``."""
    app.add_typer(pairs_app, name="pairs")
