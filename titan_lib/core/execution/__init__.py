"""Execution: orders, fills and positions, risk checks, brokers, the ledger, reconciliation.

Refusals are domain errors (:mod:`titan_lib.core.execution.errors`); only the HTTP face
maps them to status codes. Standard library only (boto3 is imported by the DynamoDB ledger
when it is opened).
"""

from titan_lib.core.execution.broker import (
    Broker,
    BrokerRejectedError,
    BrokerUnavailableError,
    Execution,
)
from titan_lib.core.execution.errors import (
    IdempotencyConflictError,
    ModelRetiredError,
    OrderRefusedError,
    PrincipalLimitError,
    RateLimitedError,
    RiskRejectedError,
    StalePricesError,
)
from titan_lib.core.execution.ledger import Ledger, order_id_for
from titan_lib.core.execution.ledgers import open_ledger
from titan_lib.core.execution.models import (
    Fill,
    FillLeg,
    KillSwitch,
    Order,
    OrderLeg,
    OrderRequest,
    Position,
)
from titan_lib.core.execution.paper import PaperBroker
from titan_lib.core.execution.risk import RiskLimits, check_order
from titan_lib.core.execution.service import ExecutionService, OrderOutcome, TradePlan
from titan_lib.core.execution.throttle import RateLimit, enforce_rate_limit

__all__ = [
    "Broker",
    "BrokerRejectedError",
    "BrokerUnavailableError",
    "Execution",
    "ExecutionService",
    "Fill",
    "FillLeg",
    "IdempotencyConflictError",
    "KillSwitch",
    "Ledger",
    "ModelRetiredError",
    "Order",
    "OrderLeg",
    "OrderOutcome",
    "OrderRefusedError",
    "OrderRequest",
    "PaperBroker",
    "Position",
    "PrincipalLimitError",
    "RateLimit",
    "RateLimitedError",
    "RiskLimits",
    "RiskRejectedError",
    "StalePricesError",
    "TradePlan",
    "check_order",
    "enforce_rate_limit",
    "open_ledger",
    "order_id_for",
]
