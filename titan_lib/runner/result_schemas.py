"""What each research notebook saves: the contract between a notebook and its readers.

A notebook's :func:`~titan_lib.runner.results.save_results` call writes values, tables and
summary figures; the next notebooks and the dashboards read them by name. Each notebook's
:class:`ResultSchema` lists the names its readers rely on: the tables (with the columns
they need), the values and the summary keys. A notebook may save more; it may not save
less. ``tests/test_notebooks_run.py`` checks every notebook's saved results against its
schema, and :func:`titan_lib.runner.results.validate_results` does the same for any run.

The names the dashboards read are constants here (``EQUITY_TABLE``, ``STATS_VALUE``, ...);
``tests/test_result_schemas.py`` checks that the schemas of the runs a dashboard shows hold
them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from titan_lib.exceptions import DataValidationError, NotFoundError

SCAN_TABLE = "pairs"
"""A scan's table of every pair of the universe, one row per pair (tested or not)."""
REGIMES_TABLE = "regimes"
"""A regime fit's daily ``date``, ``regime`` (filtered label, 0 the calmest) and
``prob_<k>`` probabilities."""
EQUITY_TABLE = "equity"
"""A backtest's daily ``date`` and ``equity`` (currency)."""
TRADES_TABLE = "trades"
"""A backtest's round trips, one row each: dates, ``pnl`` (currency), ``exit_reason``."""
SWEEP_TABLE = "sweep"
"""A backtest's parameter sweep: one row per parameter set with its statistics."""
WINDOWS_TABLE = "windows"
"""A walk-forward's windows: training and test dates, ``is_<objective>`` and
``oos_<objective>``."""
STATS_VALUE = "stats"
"""A backtest's statistics, name to value (names of
:data:`titan_lib.backtest.stats.STAT_NAMES`)."""
DEGRADATION_VALUE = "degradation"
"""A walk-forward's in-sample vs out-of-sample comparison of its objective."""
SAMPLE_VALUE = "sample"
"""``"out-of-sample"`` or ``"in-sample"``: what the run's headline results are."""

_TRADE_COLUMNS = ("pair", "side", "entry_date", "exit_date", "holding_days", "pnl")
_EQUITY_COLUMNS = ("date", "equity")
TableShapes = Mapping[str, tuple[Iterable[str], int]]
"""Saved tables as ``name -> (column names, number of rows)``."""
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _names(words: str) -> tuple[str, ...]:
    return tuple(words.split())


@dataclass(frozen=True)
class TableSchema:
    """A table a notebook saves: its name and the columns its readers need.

    A table without rows may lack its columns (a frame built from an empty list has none).
    """

    name: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResultSchema:
    """The results one notebook saves.

    Attributes
    ----------
    notebook
        The notebook's name, e.g. ``"05_backtest"``.
    tables
        The tables, each with its required columns.
    values
        The top-level keys of the values.
    summary
        The summary keys. A ``{name}`` part stands for a parameter's value (e.g.
        ``"out-of-sample {objective}"`` matches ``"out-of-sample sharpe"``).
    """

    notebook: str
    tables: tuple[TableSchema, ...]
    values: tuple[str, ...]
    summary: tuple[str, ...]

    def table(self, name: str) -> TableSchema:
        """The schema of table ``name``.

        Raises
        ------
        NotFoundError
            The notebook saves no such table.
        """
        for table in self.tables:
            if table.name == name:
                return table
        raise NotFoundError(
            f"{self.notebook} saves no table {name!r}; it saves: "
            f"{', '.join(t.name for t in self.tables)}",
            {"notebook": self.notebook, "table": name},
        )

    def column_problems(self, table_columns: TableShapes) -> list[str]:
        """The declared columns missing from the given tables (``name -> (columns, rows)``);
        tables the schema does not declare, and tables without rows, are not checked."""
        found = []
        for name, (columns, rows) in table_columns.items():
            declared = next((t for t in self.tables if t.name == name), None)
            if declared is None or not rows:
                continue
            present = set(columns)
            lacking = [c for c in declared.columns if c not in present]
            if lacking:
                found.append(f"table {name!r} lacks column(s) {', '.join(lacking)}")
        return found

    def problems(
        self,
        values: Mapping[str, Any],
        summary: Mapping[str, Any],
        table_columns: TableShapes,
    ) -> list[str]:
        """What in saved results does not fit: one line per missing table, column, value
        or summary key (empty when they fit).

        ``table_columns`` maps each saved table's name to ``(its columns, its rows)``.
        """
        found = []
        for table in self.tables:
            if table.name in table_columns:
                found += self.column_problems({table.name: table_columns[table.name]})
            else:
                found.append(f"no table {table.name!r}")
        found += [f"no value {key!r}" for key in self.values if key not in values]
        for key in self.summary:
            pattern = re.compile(
                ".+".join(re.escape(part) for part in _PLACEHOLDER.split(key)) + r"\Z"
            )
            if not any(pattern.match(saved) for saved in summary):
                found.append(f"no summary key {key!r}")
        return found

    def check(
        self,
        values: Mapping[str, Any],
        summary: Mapping[str, Any],
        table_columns: TableShapes,
        *,
        run_id: str | None = None,
    ) -> None:
        """Raise when saved results do not fit (see :meth:`problems`).

        Raises
        ------
        ResultSchemaError
            Names the notebook (and run) and every missing table, column or key.
        """
        found = self.problems(values, summary, table_columns)
        if found:
            run = f" (run {run_id})" if run_id else ""
            raise ResultSchemaError(
                f"the results of {self.notebook}{run} do not fit its schema: {'; '.join(found)}",
                {"notebook": self.notebook, "run_id": run_id, "problems": found},
            )


class ResultSchemaError(DataValidationError):
    """A notebook's saved results lack a table, column, value or summary key its readers
    need."""


RESULT_SCHEMAS: dict[str, ResultSchema] = {
    s.notebook: s
    for s in (
        ResultSchema(
            "01_ingest",
            tables=(TableSchema("coverage", ("symbol", "first_date", "last_date", "rows")),),
            values=("symbols", "first_date", "last_date", "rows", "rows_added", "gaps"),
            summary=("symbols", "history", "stored closes"),
        ),
        ResultSchema(
            "02_pair_scan",
            tables=(
                TableSchema(
                    SCAN_TABLE,
                    _names(
                        "y x hedge_ratio intercept pvalue qvalue tradable half_life hurst "
                        "crossings nobs start end reason"
                    ),
                ),
            ),
            values=_names(
                "scan_id universe start end prescreen direction pvalue_rule fdr "
                "pairs_tested pairs_tradable not_tradable significant top_pairs top_pair"
            ),
            summary=(
                "pairs tested",
                "tradable pairs with q <= {max_qvalue}",
                "p-value",
                "top pairs",
            ),
        ),
        ResultSchema(
            "03_pair_analysis",
            tables=(
                TableSchema(
                    "series",
                    ("date", "ly", "lx", "spread", "z", "rolling", "kalman", "kalman_sd"),
                ),
                TableSchema("subperiods", ("period", "start", "end", "pvalue", "hedge_ratio")),
            ),
            values=_names(
                "pair y x scan_run_id hedge_ratio intercept static_hedges spread_stats "
                "kalman_last rolling_last z_last z_window subperiods "
                "subperiods_significant stability"
            ),
            summary=(
                "pair",
                "half-life (days)",
                "hurst",
                "latest z-score",
                "sub-periods with p <= 0.05",
                "largest hedge-ratio drift",
            ),
        ),
        ResultSchema(
            "04_regimes",
            tables=(
                TableSchema(REGIMES_TABLE, ("date", "regime", "prob_0")),
                TableSchema("spread_by_regime", ("date", "spread", "change", "regime")),
            ),
            values=_names(
                "pair y x market k_regimes scan_run_id fit walk_forward refit_every "
                "sample model per_regime current_regime current_date "
                "agreement_with_volatility_view"
            ),
            summary=("pair", "regime fit", "current {market} regime", "spread vol by regime"),
        ),
        ResultSchema(
            "05_backtest",
            tables=(
                TableSchema(EQUITY_TABLE, (*_EQUITY_COLUMNS, "drawdown")),
                TableSchema(TRADES_TABLE, ("signal_date", *_TRADE_COLUMNS, "exit_reason")),
                TableSchema(SWEEP_TABLE, ("entry", "exit", "stop", "window")),
            ),
            values=_names(
                "pair y x beta alpha scan_run_id sample hedge_fit formation scan_hedge "
                "rule costs stats objective best best_sample grid overfitting start end"
            ),
            summary=(
                "pair",
                "sample",
                "sharpe",
                "total return",
                "max drawdown",
                "trades",
                "best sweep {objective} (in-sample)",
                "deflated Sharpe ratio",
                "PBO",
            ),
        ),
        ResultSchema(
            "06_walk_forward",
            tables=(
                TableSchema(
                    WINDOWS_TABLE,
                    ("window", "train_start", "train_end", "test_start", "test_end", "n_pairs"),
                ),
                TableSchema("selections", ("window", "y", "x", "pair")),
                TableSchema(EQUITY_TABLE, (*_EQUITY_COLUMNS, "window")),
                TableSchema(TRADES_TABLE, (*_TRADE_COLUMNS, "window")),
            ),
            values=_names(
                "universe objective train test mode sample stats degradation n_windows "
                "pairs_selected last_window_pairs"
            ),
            summary=(
                "sample",
                "windows",
                "out-of-sample {objective}",
                "out-of-sample total return",
                "mean in-sample {objective}",
                "mean out-of-sample {objective}",
                "most selected",
            ),
        ),
        ResultSchema(
            "07_publish",
            tables=(
                TableSchema("decisions", ("pair", "passed")),
                TableSchema(
                    "signals",
                    ("pair", "model_id", "as_of", "zscore", "position", "action", "approval"),
                ),
            ),
            values=_names(
                "scan_run_id backtest_run_id policy candidates passed approved override "
                "gate_summary models model_ids served_models"
            ),
            summary=("publish gate", "published models", "served models in the store"),
        ),
    )
}
"""Every research notebook's schema, by notebook name."""


def result_schema(notebook: str) -> ResultSchema:
    """The schema of ``notebook``'s results (by name, e.g. ``"05_backtest"``).

    Raises
    ------
    NotFoundError
        The notebook declares no schema; the message lists those that do.
    """
    if notebook not in RESULT_SCHEMAS:
        raise NotFoundError(
            f"no result schema for notebook {notebook!r}; schemas: {', '.join(RESULT_SCHEMAS)}",
            {"notebook": notebook},
        )
    return RESULT_SCHEMAS[notebook]
