"""Health records of served models in the object store, every check kept.

Each :class:`~titan_lib.core.model_health.HealthRecord` is one object, written create-only
(:meth:`ObjectStore.put_if_absent`), so a record is never replaced or half-written::

    health/<model_id>/<checked_at as YYYYMMDDTHHMMSS.ffffffZ>-<as_of>.json

Keys sort in the order the checks ran, so the history is a listing. Writing the same
record twice (a retried run) stores it once. Standard library only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from titan_lib.core.model_health import HealthRecord
from titan_lib.exceptions import (
    ConflictError,
    DataValidationError,
    ParameterError,
    SchemaVersionError,
)
from titan_lib.stores.objects import ObjectStore, dumps_json

HEALTH_PREFIX = "health/"


def _model_prefix(model_id: str) -> str:
    if not model_id or "/" in model_id or model_id.startswith("."):
        raise ParameterError(f"invalid model id {model_id!r} for a health record")
    return f"{HEALTH_PREFIX}{model_id}/"


def health_record_key(record: HealthRecord) -> str:
    """Store key of a record: by model, then by check time and the date checked."""
    try:
        moment = datetime.fromisoformat(record.checked_at)
    except ValueError:
        raise ParameterError(
            f"health record checked_at {record.checked_at!r} is not an ISO time"
        ) from None
    if moment.tzinfo is None:
        raise ParameterError(f"health record checked_at {record.checked_at!r} has no time zone")
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{_model_prefix(record.model_id)}{stamp}-{record.as_of}.json"


def append_health(store: ObjectStore, record: HealthRecord) -> str:
    """Store ``record`` as a new object; return its key.

    Raises
    ------
    ConflictError
        Another, different record already holds the key (same model, check time and date).
    """
    key = health_record_key(record)
    body = dumps_json(record.to_dict())
    if not store.put_if_absent(key, body) and store.read_bytes(key) != body:
        raise ConflictError(
            f"a different health record of {record.model_id} is stored at {key}", {"key": key}
        )
    return key


def _read(store: ObjectStore, key: str) -> HealthRecord:
    where = f"health record {key} in {store.uri}"
    try:
        doc = json.loads(store.read_bytes(key))
    except ValueError as exc:
        raise DataValidationError(f"{where} is not valid JSON: {exc}", {"key": key}) from None
    try:
        return HealthRecord.from_dict(doc)
    except (DataValidationError, SchemaVersionError) as exc:
        raise type(exc)(f"{where}: {exc.message}", {**exc.details, "key": key}) from None


def health_history(
    store: ObjectStore, model_id: str, limit: int | None = None
) -> list[HealthRecord]:
    """The model's health records, oldest first (the last ``limit`` when given)."""
    keys = [k for k in store.list(_model_prefix(model_id)) if k.endswith(".json")]
    if limit is not None:
        keys = keys[-limit:] if limit > 0 else []
    return [_read(store, key) for key in keys]


def latest_health(store: ObjectStore, model_id: str) -> HealthRecord | None:
    """The model's most recent health record, or ``None`` before its first check."""
    found = health_history(store, model_id, limit=1)
    return found[0] if found else None
