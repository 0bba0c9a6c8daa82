"""WebSocket connections and subscriptions in the ledger's DynamoDB table.

Items (``ttl``: API Gateway closes a connection after 2 hours, so its items expire):

=========================  ==================  ==========================================
pk                         sk                  holds
=========================  ==================  ==========================================
``CONN#<connection_id>``   ``CONN``            ``principal``, ``scopes``, ``connected_at``
``SUB#<channel>``          ``<connection_id>`` ``principal``
``SUBOF#<connection_id>``  ``<channel>``       (the reverse index, to unsubscribe all)
``MARK#<name>``            ``MARK``            ``fingerprint``
=========================  ==================  ==========================================

A channel's subscribers are one ``Query`` on ``SUB#<channel>``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger, _code, _s
from titan_lib.core.push.connections import Connection, Subscriber

CONNECTION_TTL_SECONDS = 3 * 3600
"""Items of a connection expire after this long (API Gateway's limit is 2 hours)."""


class DynamoDBConnections:
    """Connection store in the ledger's DynamoDB table."""

    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = DynamoDBLedger(table, client)
        self.uri = self.table.uri

    def _put(self, item: dict[str, Any], action: str, **condition: Any) -> bool:
        try:
            self.table.client.put_item(TableName=self.table.table, Item=item, **condition)
        except Exception as exc:
            if condition and _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self.table._fail(action, exc) from exc
        return True

    def _delete(self, pk: str, sk: str) -> None:
        try:
            self.table.client.delete_item(
                TableName=self.table.table, Key={"pk": _s(pk), "sk": _s(sk)}
            )
        except Exception as exc:
            raise self.table._fail("remove a subscription", exc) from exc

    def _query(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(pk)},
            "ConsistentRead": True,
        }
        try:
            while True:
                page = self.table.client.query(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except Exception as exc:
            raise self.table._fail("read subscriptions", exc) from exc

    def _ttl(self) -> dict[str, str]:
        return {"N": str(math.ceil(time.time() + CONNECTION_TTL_SECONDS))}

    def add_connection(self, connection: Connection) -> None:
        self._put(
            {
                "pk": _s(f"CONN#{connection.connection_id}"),
                "sk": _s("CONN"),
                "principal": _s(connection.principal),
                "scopes": _s(" ".join(sorted(connection.scopes))),
                "connected_at": _s(connection.connected_at),
                "ttl": self._ttl(),
            },
            "record a connection",
        )

    def get_connection(self, connection_id: str) -> Connection | None:
        item = self.table._get(f"CONN#{connection_id}", "CONN")
        if item is None:
            return None
        return Connection(
            connection_id,
            item["principal"]["S"],
            frozenset(item["scopes"]["S"].split()),
            item["connected_at"]["S"],
        )

    def remove_connection(self, connection_id: str) -> None:
        self.unsubscribe(connection_id, self.channels_of(connection_id))
        self._delete(f"CONN#{connection_id}", "CONN")

    def subscribe(self, connection: Connection, channels: list[str]) -> None:
        for channel in channels:
            self._put(
                {
                    "pk": _s(f"SUB#{channel}"),
                    "sk": _s(connection.connection_id),
                    "principal": _s(connection.principal),
                    "ttl": self._ttl(),
                },
                "subscribe",
            )
            self._put(
                {
                    "pk": _s(f"SUBOF#{connection.connection_id}"),
                    "sk": _s(channel),
                    "ttl": self._ttl(),
                },
                "subscribe",
            )

    def unsubscribe(self, connection_id: str, channels: list[str]) -> None:
        for channel in channels:
            self._delete(f"SUB#{channel}", connection_id)
            self._delete(f"SUBOF#{connection_id}", channel)

    def channels_of(self, connection_id: str) -> list[str]:
        return sorted(item["sk"]["S"] for item in self._query(f"SUBOF#{connection_id}"))

    def subscribers(self, channel: str) -> list[Subscriber]:
        return [
            Subscriber(item["sk"]["S"], item["principal"]["S"])
            for item in self._query(f"SUB#{channel}")
        ]

    def swap_mark(self, name: str, fingerprint: str) -> bool:
        return self._put(
            {"pk": _s(f"MARK#{name}"), "sk": _s("MARK"), "fingerprint": _s(fingerprint)},
            "store a push mark",
            ConditionExpression="attribute_not_exists(pk) OR fingerprint <> :f",
            ExpressionAttributeValues={":f": _s(fingerprint)},
        )
