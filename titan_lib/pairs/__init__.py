"""TITAN's pair engine: screens, exact batched cointegration, hedge ratios, statistics, scans.

Research code imports from here::

    from titan_lib.pairs import scan, engle_granger, kalman_hedge_ratio, half_life

Every Engle-Granger number equals statsmodels' ``coint``; see
:mod:`titan_lib.pairs.engle_granger` for the conventions.
"""

from titan_lib.pairs.engle_granger import (
    MIN_OBS,
    EngleGrangerResult,
    engle_granger,
    engle_granger_batch,
)
from titan_lib.pairs.fdr import benjamini_hochberg
from titan_lib.pairs.hedge_ratios import (
    HEDGE_METHODS,
    HedgeMethod,
    HedgeRatio,
    fit_hedge_ratio,
    ols_hedge_ratio,
    rolling_ols_hedge_ratio,
    tls_hedge_ratio,
)
from titan_lib.pairs.johansen import JohansenResult, johansen
from titan_lib.pairs.kalman import kalman_hedge_ratio
from titan_lib.pairs.mackinnon import mackinnon_critical_values, mackinnon_pvalue
from titan_lib.pairs.panel import PricePanel, price_panel
from titan_lib.pairs.scan import (
    ScanResult,
    ScanSettings,
    list_scans,
    load_scan,
    rank_pairs,
    run_scan,
    scan,
)
from titan_lib.pairs.screens import correlation_screen, distance_screen
from titan_lib.pairs.spread_stats import (
    SpreadStats,
    half_life,
    hurst_exponent,
    mean_crossings,
    spread_stats,
)
from titan_lib.pairs.stability import PairStability, pair_stability

__all__ = [
    "HEDGE_METHODS",
    "MIN_OBS",
    "EngleGrangerResult",
    "HedgeMethod",
    "HedgeRatio",
    "JohansenResult",
    "PairStability",
    "PricePanel",
    "ScanResult",
    "ScanSettings",
    "SpreadStats",
    "benjamini_hochberg",
    "correlation_screen",
    "distance_screen",
    "engle_granger",
    "engle_granger_batch",
    "fit_hedge_ratio",
    "half_life",
    "hurst_exponent",
    "johansen",
    "kalman_hedge_ratio",
    "list_scans",
    "load_scan",
    "mackinnon_critical_values",
    "mackinnon_pvalue",
    "mean_crossings",
    "ols_hedge_ratio",
    "pair_stability",
    "price_panel",
    "rank_pairs",
    "rolling_ols_hedge_ratio",
    "run_scan",
    "scan",
    "spread_stats",
    "tls_hedge_ratio",
]
