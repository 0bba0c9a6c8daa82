"""Numbers and column names written for people, in every table, card and report.

Each column (or statistic) has a kind that says how its values read: returns and drawdowns
as percentages, money with thousands separators and cents, ratios with two decimals, counts
as whole numbers, and p-values with four decimals (smaller ones as ``<0.0001``). Nothing is
written in scientific notation. Names are shown in words (``max_drawdown`` ->
"max drawdown", ``pnl`` -> "P&L"). Standard library only.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from titan_lib.plots.labels import METRIC_LABELS

Kind = Literal[
    "percent", "currency", "ratio", "count", "days", "price", "probability", "number", "text"
]

COLUMN_KINDS: dict[str, Kind] = {
    "total_return": "percent",
    "cagr": "percent",
    "ann_vol": "percent",
    "max_drawdown": "percent",
    "drawdown": "percent",
    "hit_rate": "percent",
    "exposure": "percent",
    "return": "percent",
    "net_return": "percent",
    "gross_return": "percent",
    "sharpe": "ratio",
    "sortino": "ratio",
    "calmar": "ratio",
    "turnover": "ratio",
    "zscore": "ratio",
    "entry_z": "ratio",
    "exit_z": "ratio",
    "hurst": "ratio",
    "hedge_ratio": "number",
    "beta": "number",
    "intercept": "number",
    "n_trades": "count",
    "trades": "count",
    "crossings": "count",
    "nobs": "count",
    "window": "count",
    "position": "count",
    "held": "count",
    "regime": "count",
    "side": "count",
    "quantity": "count",
    "holding_days": "count",
    "avg_holding_days": "days",
    "half_life": "days",
    "costs_paid": "currency",
    "commission_paid": "currency",
    "slippage_paid": "currency",
    "borrow_paid": "currency",
    "final_equity": "currency",
    "equity": "currency",
    "pnl": "currency",
    "market_value": "currency",
    "notional": "currency",
    "last_close": "price",
    "entry_price": "price",
    "exit_price": "price",
    "pvalue": "probability",
    "qvalue": "probability",
}
"""How the values of a known column read (see :func:`column_kind` for the others)."""

DECIMALS: dict[Kind, int] = {
    "percent": 2,
    "currency": 2,
    "ratio": 2,
    "count": 0,
    "days": 1,
    "price": 2,
    "probability": 4,
    "number": 4,
}
"""Fixed decimals per kind (percentages: decimals of the percentage)."""

COLUMN_LABELS: dict[str, str] = {
    **METRIC_LABELS,
    "pnl": "P&L",
    "zscore": "z-score",
    "entry_z": "entry z-score",
    "exit_z": "exit z-score",
    "pvalue": "p-value",
    "qvalue": "q-value",
    "half_life": "half-life (days)",
    "hurst": "Hurst exponent",
    "hedge_ratio": "hedge ratio",
    "crossings": "mean crossings",
    "nobs": "observations",
    "last_close": "last close",
    "market_value": "market value",
    "as_of": "prices as of",
    "checked_at": "checked at",
    "held": "held now",
    "position": "target position",
    "entry_date": "entry date",
    "exit_date": "exit date",
    "holding_days": "days held",
    "exit_reason": "exit reason",
    "run_id": "run",
    "is_sharpe": "in-sample Sharpe",
    "oos_sharpe": "out-of-sample Sharpe",
}
"""Column or statistic name to the words shown for it."""


def column_kind(name: str) -> Kind:
    """How the values of column ``name`` read.

    Known names come from :data:`COLUMN_KINDS`; in-/out-of-sample columns (``is_*``,
    ``oos_*``) read as the statistic they hold; other names are judged by their words
    (``..._return`` and ``...drawdown`` percent, ``..._pnl`` and ``..._paid`` money,
    ``..._price`` a price). Anything else is a plain number.
    """
    key = name.lower()
    if key in COLUMN_KINDS:
        return COLUMN_KINDS[key]
    for prefix in ("is_", "oos_"):
        if key.startswith(prefix) and key[len(prefix) :] in COLUMN_KINDS:
            return COLUMN_KINDS[key[len(prefix) :]]
    if key.endswith(("return", "drawdown", "_vol")):
        return "percent"
    if key.endswith(("pnl", "_paid", "equity", "_value", "notional")):
        return "currency"
    if key.endswith(("price", "close")):
        return "price"
    return "number"


def column_label(name: str) -> str:
    """The words shown for column or statistic ``name``."""
    key = name.lower()
    if key in COLUMN_LABELS:
        return COLUMN_LABELS[key]
    for prefix, words in (("is_", "in-sample"), ("oos_", "out-of-sample")):
        if key.startswith(prefix):
            return f"{words} {column_label(key[len(prefix) :])}"
    return name.replace("_", " ")


def format_number(value: Any, kind: Kind = "number") -> str:
    """``value`` written for a reader as ``kind``; ``-`` for missing or not finite.

    Examples: ``format_number(-0.1234, "percent")`` is ``"-12.34%"``,
    ``format_number(1234567.8, "currency")`` is ``"$1,234,567.80"``,
    ``format_number(3e-7, "probability")`` is ``"<0.0001"``.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float) or kind == "text":
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return "-"
    decimals = DECIMALS.get(kind, 4)
    if kind == "percent":
        return f"{number * 100:,.{decimals}f}%"
    if kind == "currency":
        sign = "-" if number < 0 else ""
        return f"{sign}${abs(number):,.{decimals}f}"
    if kind == "probability":
        floor = 10.0**-decimals
        return f"<{floor:.{decimals}f}" if 0 <= number < floor else f"{number:.{decimals}f}"
    if kind == "count" and number != round(number):
        return f"{number:,.2f}"
    text = f"{number:,.{decimals}f}"
    return "0" if kind == "count" and text == "-0" else text


def format_column_value(name: str, value: Any) -> str:
    """``value`` of column ``name``, written as the column's kind."""
    return format_number(value, column_kind(name))
