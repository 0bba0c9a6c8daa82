"""The pair scan's sidecar, and how later notebooks pick a pair from it.

``02_pair_scan`` saves, besides its tables:

- ``values["top_pairs"]``: the best pairs, best first, each a mapping with ``pair``
  (``"Y/X"``), ``y``, ``x``, ``hedge_ratio``, ``intercept``, ``pvalue``, ``qvalue``,
  ``half_life``, ``hurst``, ``crossings``, ``nobs``, ``start``, ``end``;
- ``values["top_pair"]``: the first of them;
- table ``pairs``: every tested pair, ranked (the scan's full table).

Analysis, regimes, backtest and publish notebooks take ``scan_run_id`` (empty: the newest
successful scan) and ``pair`` (``"Y/X"``; empty: the scan's top pair).
"""

from __future__ import annotations

from typing import Any

from titan_lib.exceptions import NotFoundError, ParameterError
from titan_lib.runner.results import RunResults, results_of
from titan_lib.stores.objects import ObjectStore

SCAN_NOTEBOOK = "02_pair_scan"


def scan_results(scan_run_id: str = "", store: str | ObjectStore | None = None) -> RunResults:
    """The sidecar of a pair scan run (the newest successful one when the id is empty)."""
    return results_of(scan_run_id, SCAN_NOTEBOOK, store)


def split_pair(pair: str) -> tuple[str, str]:
    """``"KO/PEP"`` -> ``("KO", "PEP")``: the dependent leg first.

    Raises
    ------
    ParameterError
        Not two distinct symbols separated by ``/``.
    """
    y, sep, x = pair.partition("/")
    if not sep or not y.strip() or not x.strip() or y.strip() == x.strip() or "/" in x:
        raise ParameterError(f"a pair is written 'Y/X' (e.g. 'KO/PEP'), got {pair!r}")
    return y.strip(), x.strip()


def chosen_pair(scan: RunResults, pair: str = "") -> dict[str, Any]:
    """The scan's statistics of one pair.

    Parameters
    ----------
    scan
        A pair scan's results (:func:`scan_results`).
    pair
        ``"Y/X"``; empty picks the scan's top pair.

    Raises
    ------
    NotFoundError
        The scan found no pair, or did not test ``pair`` in that direction.
    """
    if not pair:
        top = scan.values.get("top_pair")
        if not top:
            raise NotFoundError(
                f"scan {scan.run_id} found no pair to analyse", {"run_id": scan.run_id}
            )
        return dict(top)
    y, x = split_pair(pair)
    for row in scan.values.get("top_pairs", []):
        if row.get("y") == y and row.get("x") == x:
            return dict(row)
    if "pairs" in scan.tables:
        import polars as pl

        rows = scan.table("pairs").filter((pl.col("y") == y) & (pl.col("x") == x))
        if rows.height:
            return {"pair": f"{y}/{x}", **rows.row(0, named=True)}
    shown = ", ".join(r["pair"] for r in scan.values.get("top_pairs", [])[:10])
    raise NotFoundError(
        f"scan {scan.run_id} has no pair {y}/{x}; its top pairs: {shown or 'none'}",
        {"run_id": scan.run_id, "pair": pair},
    )
