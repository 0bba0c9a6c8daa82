"""``titan backtest``: backtest one pair, or sweep a parameter grid, on stored prices."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer

from titan_lib.cli.options import STORE_OPTION


def _floats(text: str, name: str) -> list[float]:
    from titan_lib.exceptions import ParameterError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"--{name} must be comma-separated numbers, got {text!r}") from None


backtest_app = typer.Typer(
    help="Backtests: one pair with costs, or a parameter sweep.", no_args_is_help=True
)


@backtest_app.command("pair")
def pair_command(
    y: Annotated[str, typer.Argument(help="Long-spread leg.")],
    x: Annotated[str, typer.Argument(help="Short-spread leg.")],
    beta: Annotated[
        float | None,
        typer.Option(
            help="Hedge ratio (log prices). Default: estimated on the formation window "
            "before --start (out-of-sample); a given ratio is reported as in-sample "
            "unless --fitted-through is before the first traded day."
        ),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Spread intercept (with --beta; default 0).")
    ] = None,
    formation: Annotated[
        int, typer.Option(help="Formation window in bars, before the trading window.")
    ] = 252,
    fitted_through: Annotated[
        str | None, typer.Option(help="Last date the data behind --beta reached.")
    ] = None,
    hedge_method: Annotated[
        str,
        typer.Option(
            help="Estimator of the hedge fitted on the formation window: a name of "
            "titan_lib.pairs.HEDGE_METHODS (ols, tls, ...)."
        ),
    ] = "ols",
    entry: Annotated[float, typer.Option(help="Entry |z|.")] = 2.0,
    exit: Annotated[float, typer.Option(help="Exit |z|.")] = 0.5,
    stop: Annotated[float, typer.Option(help="Stop |z| (inf: none).")] = math.inf,
    window: Annotated[int, typer.Option(help="Rolling z-score window (bars).")] = 60,
    commission_bps: Annotated[float, typer.Option(help="Commission, bps.")] = 0.0,
    slippage_bps: Annotated[float, typer.Option(help="Slippage, bps.")] = 0.0,
    borrow_bps: Annotated[float, typer.Option(help="Annual borrow fee, bps.")] = 0.0,
    start: Annotated[str | None, typer.Option(help="First trading date.")] = None,
    end: Annotated[str | None, typer.Option(help="Last trading date.")] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Backtest the z-score rule on one pair; print sample label, hedge and statistics
    as JSON."""
    from titan_lib.backtest import Costs, backtest_pair
    from titan_lib.data import load_prices
    from titan_lib.pairs.hedge_ratios import check_hedge_method

    check_hedge_method(hedge_method)
    costs = Costs(commission_bps=commission_bps, slippage_bps=slippage_bps, borrow_bps=borrow_bps)
    prices = load_prices([y, x], end=end, store=store)
    result = backtest_pair(
        prices, y, x, beta=beta, alpha=alpha, formation=formation,
        fitted_through=fitted_through, hedge_method=hedge_method,  # type: ignore[arg-type]
        entry=entry, exit=exit, stop=stop, window=window,
        costs=costs, start=start, end=end, engine="numba",
    )  # fmt: skip
    report = {
        "sample": result.sample,
        "hedge": result.settings["hedge_fit"],
        "start": result.equity.get_column("date")[0].isoformat(),
        "end": result.equity.get_column("date")[-1].isoformat(),
        "stats": result.stats,
    }
    typer.echo(json.dumps(report, indent=2))


@backtest_app.command("sweep")
def sweep_command(
    y: Annotated[str, typer.Argument(help="Long-spread leg.")],
    x: Annotated[str, typer.Argument(help="Short-spread leg.")],
    beta: Annotated[float, typer.Option(help="Hedge ratio (log prices).")],
    entry: Annotated[str, typer.Option(help="Entry values, comma-separated.")] = "2",
    exit: Annotated[str, typer.Option(help="Exit values, comma-separated.")] = "0.5",
    stop: Annotated[str, typer.Option(help="Stop values, comma-separated.")] = "inf",
    window: Annotated[str, typer.Option(help="Z windows, comma-separated.")] = "60",
    objective: Annotated[str, typer.Option(help="Rank by this statistic.")] = "sharpe",
    top: Annotated[int, typer.Option(help="Rows to print.")] = 10,
    output: Annotated[str | None, typer.Option(help="Write the table (Parquet).")] = None,
    pairs_considered: Annotated[
        int,
        typer.Option(
            help="Pairs the choice was made among (e.g. the scan's pairs tested): the "
            "deflated Sharpe ratio counts combinations x pairs trials."
        ),
    ] = 1,
    start: Annotated[str | None, typer.Option(help="First trading date.")] = None,
    end: Annotated[str | None, typer.Option(help="Last trading date.")] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Sweep a grid on one pair; print the best rows by the objective, and the deflated
    Sharpe ratio and probability of backtest overfitting of the best (an in-sample
    choice)."""
    from titan_lib.backtest.sweep import check_objective, rank, sweep_overfitting, sweep_trials
    from titan_lib.data import load_prices
    from titan_lib.exceptions import ParameterError

    check_objective(objective)
    grid = {
        "entry": _floats(entry, "entry"),
        "exit": _floats(exit, "exit"),
        "stop": _floats(stop, "stop"),
        "window": _floats(window, "window"),
    }
    prices = load_prices([y, x], end=end, store=store)
    if pairs_considered < 1:
        raise ParameterError(f"--pairs-considered must be >= 1, got {pairs_considered}")
    trials = sweep_trials(prices, y, x, beta=beta, grid=grid, start=start, end=end)
    table = trials.table
    if output:
        table.write_parquet(output)
    shown = ["entry", "exit", "stop", "window", "total_return", "sharpe", "max_drawdown"]
    shown += [c for c in (objective, "n_trades") if c not in shown]
    best = rank(table, objective).head(top).select(shown)
    typer.echo("\t".join(shown))
    for row in best.iter_rows():
        typer.echo("\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    try:
        luck = sweep_overfitting(trials, objective, n_pairs=pairs_considered)  # type: ignore[arg-type]
    except ParameterError as exc:
        typer.echo(f"best row (in-sample choice): no deflated Sharpe ratio ({exc.message})")
    else:
        typer.echo(
            f"best row (in-sample choice): deflated Sharpe ratio {luck.dsr:.4g} over "
            f"{luck.n_trials} trials; probability of backtest overfitting {luck.pbo:.4g}"
        )


def register(app: typer.Typer) -> None:
    """Add ``titan backtest ...``."""
    app.add_typer(backtest_app, name="backtest")
