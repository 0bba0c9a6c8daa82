"""The serving core: the trading decisions every face of TITAN shares.

- :mod:`~titan_lib.core.serving.holdings`: which side of a pair is held, which pairs are
  open (one quantity tolerance);
- :mod:`~titan_lib.core.serving.planning`: the target holdings of an order;
- :mod:`~titan_lib.core.serving.marks`: mark-to-market values and P&L;
- :mod:`~titan_lib.core.serving.evaluation`: evaluating every served model;
- :mod:`~titan_lib.core.serving.documents`: the API's model summary and signal document;
- :mod:`~titan_lib.core.serving.principals`: the API's document of a principal;
- :mod:`~titan_lib.core.serving.orders`: the execution service over a store and a ledger;
- :mod:`~titan_lib.core.serving.monitoring`: the daily health check of every served model,
  automatic retirement and the broken-model policy.
- :mod:`~titan_lib.core.serving.research_documents`: the read API's serving documents
  (symbols, prices, scans, runs);
- :mod:`~titan_lib.core.serving.pages`: pages, cursors and entity tags of list routes.

The Lambda, the dashboards and the notebooks call these; they hold no trading logic of
their own. Standard library only, like the rest of :mod:`titan_lib.core`.
"""

from titan_lib.core.execution.models import QUANTITY_TOLERANCE, is_open
from titan_lib.core.serving.documents import model_summary, signal_document
from titan_lib.core.serving.evaluation import ServedSignal, evaluate_served
from titan_lib.core.serving.holdings import held_side, open_pairs, pair_quantities
from titan_lib.core.serving.marks import PositionMark, mark_to_market, pnl_by_model, total_pnl
from titan_lib.core.serving.planning import QUANTITY_DECIMALS, plan_order

__all__ = [
    "QUANTITY_DECIMALS",
    "QUANTITY_TOLERANCE",
    "PositionMark",
    "ServedSignal",
    "evaluate_served",
    "held_side",
    "is_open",
    "mark_to_market",
    "model_summary",
    "open_pairs",
    "pair_quantities",
    "plan_order",
    "pnl_by_model",
    "signal_document",
    "total_pnl",
]
