"""The order ledger in one DynamoDB table (single-table layout, conditional writes).

Items (partition key ``pk``, sort key ``sk``, both strings):

=======================  ===========  ===============================================
pk                       sk           holds
=======================  ===========  ===============================================
``ORDER#<order_id>``     ``ORDER``    ``doc`` (order JSON), ``status``, ``created_at``
``FILL#<order_id>``      ``FILL``     ``doc`` (fill JSON), ``filled_at``
``POS#<model_id>``       ``<symbol>`` ``quantity`` and ``cash`` (numbers, ``ADD``-ed)
``PAIR#<model_id>``      ``LOCK``     ``holder`` (order id), ``expires`` (epoch seconds)
``RATE#<principal>``     ``WINDOW``   ``stamps`` (JSON admission times), ``version``, ``ttl``
``SETTING#kill_switch``  ``SETTING``  ``doc``
``PRINCIPAL#<sub>``      ``PROFILE``  ``doc`` (limits and preferences)
``PRINCIPAL#<sub>``      ``USAGE``    ``doc`` (orders today, exposure), ``version``
=======================  ===========  ===============================================

Rate windows and principals' usage are read consistently and replaced with a put
conditioned on the ``version`` read (retried on a lost race; a conditional write on one
item per principal), so concurrent requests or orders of one principal cannot both pass
on the same state; a refusal writes nothing. Claims use
``attribute_not_exists(pk)``; fills are one ``TransactWriteItems`` (put the
fill if absent, mark the pending order filled, ``ADD`` each leg to its position). Reads
are strongly consistent. Listing scans the table (fine for a ledger of thousands of
orders; add a GSI before millions). boto3 is imported when the ledger is opened.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from titan_lib.core.execution.ledger import utc_now_iso
from titan_lib.core.execution.models import Fill, KillSwitch, Order, OrderStatus, Position
from titan_lib.core.execution.principals import (
    PrincipalLimits,
    PrincipalOrder,
    PrincipalProfile,
    PrincipalUsage,
    Refusal,
    apply_order,
)
from titan_lib.core.execution.sliding_window import Admission, admit
from titan_lib.exceptions import ConflictError, StoreError

_RATE_ATTEMPTS = 50
T = TypeVar("T")


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _num(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(float(value))))}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class DynamoDBLedger:
    """Ledger in a DynamoDB table.

    Parameters
    ----------
    table
        Table name (create it with :meth:`create_table` or the deploy template).
    client
        A boto3 DynamoDB client; created from the environment when omitted.
    """

    def __init__(self, table: str, client: Any | None = None) -> None:
        if not table:
            raise StoreError("a DynamoDB ledger needs a table name: dynamodb://<table>")
        self.table = table
        self.uri = f"dynamodb://{table}"
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.client = client

    @classmethod
    def create_table(cls, table: str, client: Any | None = None) -> DynamoDBLedger:
        """Create the table (on-demand billing, TTL on ``ttl``) and return its ledger."""
        ledger = cls(table, client)
        try:
            ledger.client.create_table(
                TableName=table,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            ledger.client.get_waiter("table_exists").wait(TableName=table)
            ledger.client.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
        except Exception as exc:
            raise ledger._fail("create the table", exc) from exc
        return ledger

    def _fail(self, action: str, exc: Exception) -> StoreError:
        return StoreError(
            f"could not {action} in ledger {self.uri}: {_code(exc) or type(exc).__name__}",
            {"table": self.table},
        )

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            item = self.client.get_item(
                TableName=self.table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise self._fail("read", exc) from exc
        return item  # type: ignore[no-any-return]

    def _scan(self, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": _s(prefix)},
            "ConsistentRead": True,
        }
        try:
            while True:
                page = self.client.scan(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except Exception as exc:
            raise self._fail("scan", exc) from exc

    def claim_order(self, order: Order) -> tuple[Order, bool]:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(f"ORDER#{order.order_id}"),
                    "sk": _s("ORDER"),
                    "status": _s(order.status),
                    "created_at": _s(order.created_at),
                    "doc": _s(json.dumps(order.to_dict())),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise self._fail("claim an order", exc) from exc
            existing = self.get_order(order.order_id)
            if existing is None:  # deleted in between: not expected in a ledger
                raise ConflictError(f"order {order.order_id} vanished while claimed") from None
            return existing, False
        return order, True

    def get_order(self, order_id: str) -> Order | None:
        item = self._get(f"ORDER#{order_id}", "ORDER")
        return None if item is None else Order.from_dict(json.loads(item["doc"]["S"]))

    def list_orders(self, status: OrderStatus | None = None) -> list[Order]:
        orders = [Order.from_dict(json.loads(i["doc"]["S"])) for i in self._scan("ORDER#")]
        if status is not None:
            orders = [o for o in orders if o.status == status]
        return sorted(orders, key=lambda o: (o.created_at, o.order_id))

    def update_order(self, order: Order) -> Order:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _s(f"ORDER#{order.order_id}"), "sk": _s("ORDER")},
                UpdateExpression="SET #st = :new, doc = :doc",
                ConditionExpression="#st = :pending",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={
                    ":new": _s(order.status),
                    ":doc": _s(json.dumps(order.to_dict())),
                    ":pending": _s("pending"),
                },
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"order {order.order_id} is no longer pending; it was not changed",
                    {"order_id": order.order_id},
                ) from None
            raise self._fail("update an order", exc) from exc
        return order

    def record_fill(self, fill: Fill) -> Order:
        order = self.get_order(fill.order_id)
        if order is None:
            raise ConflictError(
                f"fill {fill.fill_id} refers to unknown order {fill.order_id}",
                {"order_id": fill.order_id},
            )
        if order.fill_id == fill.fill_id:
            return order
        filled = order.with_changes(
            status="filled", fill_id=fill.fill_id, updated_at=utc_now_iso(), submitted=True
        )
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        "pk": _s(f"FILL#{fill.order_id}"),
                        "sk": _s("FILL"),
                        "filled_at": _s(fill.filled_at),
                        "doc": _s(json.dumps(fill.to_dict())),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": _s(f"ORDER#{fill.order_id}"), "sk": _s("ORDER")},
                    "UpdateExpression": "SET #st = :filled, doc = :doc",
                    "ConditionExpression": "#st = :pending",
                    "ExpressionAttributeNames": {"#st": "status"},
                    "ExpressionAttributeValues": {
                        ":filled": _s("filled"),
                        ":doc": _s(json.dumps(filled.to_dict())),
                        ":pending": _s("pending"),
                    },
                }
            },
        ]
        for leg in fill.legs:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": _s(f"POS#{fill.model_id}"), "sk": _s(leg.symbol)},
                        "UpdateExpression": "ADD quantity :q, cash :c",
                        "ExpressionAttributeValues": {
                            ":q": _num(leg.quantity),
                            ":c": _num(-leg.quantity * leg.price),
                        },
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if _code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                raise self._fail("record a fill", exc) from exc
            current = self.get_order(fill.order_id)
            if current is not None and current.fill_id == fill.fill_id:
                return current
            status = "unknown" if current is None else current.status
            raise ConflictError(
                f"order {fill.order_id} is {status}; fill {fill.fill_id} refused",
                {"order_id": fill.order_id, "status": status},
            ) from None
        return filled

    def list_fills(self) -> list[Fill]:
        fills = [Fill.from_dict(json.loads(i["doc"]["S"])) for i in self._scan("FILL#")]
        return sorted(fills, key=lambda f: (f.filled_at, f.fill_id))

    def positions(self) -> list[Position]:
        result = [
            Position(
                model_id=item["pk"]["S"][len("POS#") :],
                symbol=item["sk"]["S"],
                quantity=float(item["quantity"]["N"]),
                cash=float(item["cash"]["N"]),
            )
            for item in self._scan("POS#")
        ]
        return sorted(result, key=lambda p: (p.model_id, p.symbol))

    def acquire_pair(
        self, model_id: str, order_id: str, now: float, lease_seconds: float
    ) -> str | None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(f"PAIR#{model_id}"),
                    "sk": _s("LOCK"),
                    "holder": _s(order_id),
                    "expires": _num(now + lease_seconds),
                },
                ConditionExpression="attribute_not_exists(pk) OR holder = :me OR expires < :now",
                ExpressionAttributeValues={":me": _s(order_id), ":now": _num(now)},
            )
        except Exception as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise self._fail("lock a pair", exc) from exc
            holder = self.pair_holder(model_id)
            return order_id if holder is None else holder[0]
        return None

    def release_pair(self, model_id: str, order_id: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={"pk": _s(f"PAIR#{model_id}"), "sk": _s("LOCK")},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": _s(order_id)},
            )
        except Exception as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise self._fail("unlock a pair", exc) from exc

    def pair_holder(self, model_id: str) -> tuple[str, float] | None:
        item = self._get(f"PAIR#{model_id}", "LOCK")
        if item is None:
            return None
        return item["holder"]["S"], float(item["expires"]["N"])

    def _versioned_update(
        self,
        pk: str,
        sk: str,
        action: str,
        decide: Callable[[dict[str, Any] | None], tuple[T, dict[str, Any] | None]],
    ) -> T:
        """Read an item consistently, let ``decide`` answer, write what it asks atomically.

        ``decide(item)`` returns ``(result, attributes)``; ``attributes`` (``None``: write
        nothing) replace the item with a put conditioned on the ``version`` read, so two
        concurrent updates cannot both win; the loser reads again and decides again.
        """
        for _ in range(_RATE_ATTEMPTS):
            item = self._get(pk, sk)
            result, attributes = decide(item)
            if attributes is None:
                return result
            version = 0 if item is None else int(item["version"]["N"])
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "pk": _s(pk),
                        "sk": _s(sk),
                        **attributes,
                        "version": {"N": str(version + 1)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
            except Exception as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise self._fail(action, exc) from exc
                continue
            return result
        raise StoreError(
            f"could not {action} in ledger {self.uri}: "
            f"{_RATE_ATTEMPTS} concurrent updates won the race",
            {"table": self.table},
        )

    def admit_request(
        self, principal: str, now: float, limit: int, window_seconds: float
    ) -> Admission:
        def decide(item: dict[str, Any] | None) -> tuple[Admission, dict[str, Any] | None]:
            stamps = [] if item is None else json.loads(item["stamps"]["S"])
            outcome = admit(stamps, now, limit, window_seconds)
            if not outcome.admitted:
                return outcome, None
            return outcome, {
                "stamps": _s(json.dumps(outcome.stamps)),
                "ttl": {"N": str(math.ceil(now + 2 * window_seconds))},
            }

        return self._versioned_update(
            f"RATE#{principal}", "WINDOW", f"admit a request of {principal}", decide
        )

    def kill_switch(self) -> KillSwitch:
        item = self._get("SETTING#kill_switch", "SETTING")
        return KillSwitch(on=False) if item is None else KillSwitch(**json.loads(item["doc"]["S"]))

    def set_kill_switch(self, state: KillSwitch) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s("SETTING#kill_switch"),
                    "sk": _s("SETTING"),
                    "doc": _s(json.dumps(state.to_dict())),
                },
            )
        except Exception as exc:
            raise self._fail("set the kill switch", exc) from exc

    def principal_profile(self, subject: str) -> PrincipalProfile | None:
        item = self._get(f"PRINCIPAL#{subject}", "PROFILE")
        return None if item is None else PrincipalProfile.from_dict(json.loads(item["doc"]["S"]))

    def set_principal_profile(self, profile: PrincipalProfile) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(f"PRINCIPAL#{profile.subject}"),
                    "sk": _s("PROFILE"),
                    "doc": _s(json.dumps(profile.to_dict())),
                },
            )
        except Exception as exc:
            raise self._fail("store a principal", exc) from exc

    def list_principals(self) -> list[PrincipalProfile]:
        profiles = [
            PrincipalProfile.from_dict(json.loads(item["doc"]["S"]))
            for item in self._scan("PRINCIPAL#")
            if item["sk"]["S"] == "PROFILE"
        ]
        return sorted(profiles, key=lambda p: p.subject)

    def principal_usage(self, subject: str) -> PrincipalUsage:
        item = self._get(f"PRINCIPAL#{subject}", "USAGE")
        return _usage(subject, item)

    def reserve_usage(
        self, subject: str, limits: PrincipalLimits, order: PrincipalOrder, day: str
    ) -> tuple[PrincipalUsage, Refusal | None]:
        def decide(
            item: dict[str, Any] | None,
        ) -> tuple[tuple[PrincipalUsage, Refusal | None], dict[str, Any] | None]:
            usage, refusal = apply_order(_usage(subject, item), limits, order, day)
            if refusal is not None:
                return (usage, refusal), None
            return (usage, None), {"doc": _s(json.dumps(usage.to_dict()))}

        return self._versioned_update(
            f"PRINCIPAL#{subject}", "USAGE", f"reserve the usage of {subject}", decide
        )


def _usage(subject: str, item: dict[str, Any] | None) -> PrincipalUsage:
    if item is None:
        return PrincipalUsage(subject)
    return PrincipalUsage.from_dict(json.loads(item["doc"]["S"]))
