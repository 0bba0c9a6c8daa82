"""Data of the pair explorer: a scan's pairs and one pair's series, read from the store.

The pairs come from a scan run's sidecar (its ``pairs`` table,
:data:`~titan_lib.runner.result_schemas.SCAN_TABLE`, as written by the pair engine:
``hedge_ratio``, ``intercept``, ``pvalue``, ``qvalue``, ``half_life``, ``hurst``, ...).
One pair's series are computed from the stored prices with the library's own functions:
the static spread from the scan's hedge ratio, its rolling z-score, and the Kalman-filter
hedge ratio (filtered, so causal). Market regimes come from the newest regime run's sidecar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from titan_lib.exceptions import DataValidationError, NotFoundError
from titan_lib.runner.result_schemas import REGIMES_TABLE, SCAN_TABLE
from titan_lib.runner.results import load_results
from titan_lib.stores.objects import ObjectStore

PAIR_STATS = (
    ("pvalue", "p-value"),
    ("qvalue", "q-value"),
    ("half_life", "half-life (days)"),
    ("hurst", "Hurst"),
    ("hedge_ratio", "hedge ratio"),
    ("crossings", "mean crossings"),
    ("nobs", "observations"),
)
"""Scan columns shown on the stats card, with their labels."""


@dataclass(frozen=True)
class ScanPairs:
    """The pairs of one scan run, best first.

    Attributes
    ----------
    run_id
        The scan run.
    pairs
        One row per pair tested: ``y``, ``x`` and the scan's statistics, sorted by
        q-value (or p-value) ascending.
    transform
        ``"log"`` or ``"level"``: the prices the scan's hedge ratios apply to.
    """

    run_id: str
    pairs: pl.DataFrame
    transform: str

    def keys(self) -> list[str]:
        """``"Y/X"`` for each pair, in table order."""
        return [f"{y}/{x}" for y, x in self.pairs.select("y", "x").iter_rows()]

    def row(self, key: str) -> dict[str, Any]:
        """The scan's row of pair ``"Y/X"``.

        Raises
        ------
        NotFoundError
            The scan has no such pair.
        """
        y, _, x = key.partition("/")
        found = self.pairs.filter((pl.col("y") == y) & (pl.col("x") == x))
        if found.height == 0:
            raise NotFoundError(
                f"scan {self.run_id} has no pair {key!r}", {"run_id": self.run_id, "pair": key}
            )
        return found.row(0, named=True)


def scan_pairs(store: ObjectStore, run_id: str) -> ScanPairs:
    """Read a scan run's pair table.

    Raises
    ------
    NotFoundError
        The run saved no table of pairs (``y``, ``x``, ``hedge_ratio``).
    """
    results = load_results(run_id, store)
    table = results.table(SCAN_TABLE) if SCAN_TABLE in results.tables else None
    if table is None or table.height == 0 or not {"y", "x", "hedge_ratio"} <= set(table.columns):
        raise NotFoundError(
            f"scan run {run_id} saved no {SCAN_TABLE!r} table with y, x and hedge_ratio",
            {"run_id": run_id},
        )
    order = [c for c in ("qvalue", "pvalue") if c in table.columns]
    if order:
        table = table.sort(order, nulls_last=True)
    params = _run_parameters(store, run_id)
    transform = str(params.get("transform") or params.get("price_transform") or "log")
    return ScanPairs(run_id=run_id, pairs=table, transform=transform)


def _run_parameters(store: ObjectStore, run_id: str) -> dict[str, Any]:
    from titan_lib.runner.record import read_record

    return read_record(store, run_id).parameters


def pair_stats(row: dict[str, Any]) -> dict[str, Any]:
    """Name to value of the pair's statistics present in its scan row (in
    :data:`PAIR_STATS` order; :func:`titan_lib.plots.formatting.column_label` words them)."""
    return {col: row[col] for col, _ in PAIR_STATS if col in row}


def pair_series(store_uri: str, row: dict[str, Any], transform: str, z_window: int) -> pl.DataFrame:
    """One pair's aligned prices, static spread, z-score and hedge ratios.

    Parameters
    ----------
    store_uri
        The store holding the prices.
    row
        The pair's scan row: ``y``, ``x``, ``hedge_ratio``, ``intercept`` and optionally
        ``start``/``end`` (the scanned window, used as the date range).
    transform
        ``"log"`` or ``"level"`` prices, as in the scan.
    z_window
        Bars in the rolling z-score window.

    Returns
    -------
    pl.DataFrame
        ``date``, ``y``, ``x`` (closes), ``spread`` (``f(y) - beta f(x) - alpha`` with the
        scan's static beta), ``zscore`` (rolling, NaN in the warm-up), ``beta_static`` and
        ``beta_kalman`` (filtered Kalman hedge ratio; NaN where undefined).
    """
    from titan_lib.core.zscore import ZScoreSpec
    from titan_lib.data import load_prices
    from titan_lib.signals import pair_prices, spread_expr, zscores

    y, x = str(row["y"]), str(row["x"])
    beta = float(row["hedge_ratio"])
    alpha = float(row.get("intercept") or 0.0)
    if not math.isfinite(beta):
        raise DataValidationError(f"pair {y}/{x} has no finite hedge ratio in the scan")
    prices = load_prices([y, x], start=row.get("start"), end=row.get("end"), store=store_uri)
    wide = pair_prices(prices, [y, x])
    frame = wide.with_columns(spread_expr(y, x, beta, alpha, transform))  # type: ignore[arg-type]
    z = zscores(frame.get_column("spread"), ZScoreSpec.rolling(z_window))
    kalman = kalman_hedge_ratio(wide, y, x, transform)
    return frame.select(
        "date",
        pl.col(y).alias("y"),
        pl.col(x).alias("x"),
        "spread",
    ).with_columns(
        z.alias("zscore"),
        pl.lit(beta).alias("beta_static"),
        kalman.alias("beta_kalman"),
    )


def kalman_hedge_ratio(wide: pl.DataFrame, y: str, x: str, transform: str) -> pl.Series:
    """The pair engine's filtered Kalman hedge ratio of ``y`` on ``x`` (one per bar,
    default noise settings of :func:`titan_lib.pairs.kalman_hedge_ratio`)."""
    from titan_lib.pairs import kalman_hedge_ratio as engine_kalman

    yv, xv = wide.get_column(y), wide.get_column(x)
    if transform == "log":
        yv, xv = yv.log(), xv.log()
    fit = engine_kalman(yv.to_numpy(), xv.to_numpy())
    return fit.get_column("hedge_ratio").alias("beta_kalman")


def market_regimes(store: ObjectStore, run_id: str | None) -> pl.DataFrame | None:
    """``date`` and ``regime`` (Int64 label, 0 = calmest) from a regime run's sidecar.

    ``None`` when no run is given or it saved no such table.
    """
    if run_id is None:
        return None
    results = load_results(run_id, store)
    if REGIMES_TABLE not in results.tables:
        return None
    table = results.table(REGIMES_TABLE)
    if not {"date", "regime"} <= set(table.columns):
        return None
    return (
        table.select(pl.col("date").cast(pl.Date), pl.col("regime").cast(pl.Int64))
        .drop_nulls()
        .sort("date")
    )


def regime_spans(regimes: pl.DataFrame, start: Any, end: Any) -> list[tuple[Any, Any, int]]:
    """Contiguous ``(first date, last date, regime)`` spans of non-calm regimes
    (label > 0) between ``start`` and ``end``, for shading a chart."""
    window = regimes.filter(pl.col("date").is_between(start, end))
    if window.height == 0:
        return []
    spans = (
        window.with_columns(
            (pl.col("regime") != pl.col("regime").shift(1)).fill_null(True).cum_sum().alias("k")
        )
        .group_by("k", maintain_order=True)
        .agg(
            pl.col("date").first().alias("a"),
            pl.col("date").last().alias("b"),
            pl.col("regime").first(),
        )
        .filter(pl.col("regime") > 0)
    )
    return [(a, b, int(r)) for _, a, b, r in spans.iter_rows()]
