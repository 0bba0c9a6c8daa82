"""Published SignalModels in the store: publish, get, list, retire.

Layout (keys relative to the store root)::

    models/<model_id>.json            the model document, written once (create-only)
    models/retired/<model_id>.json    retirement marker: {"model_id", "retired_at", "reason"}

Publishing and retiring announce the change on SNS when a topic is configured
(:mod:`titan_lib.core.model_events`), so the Lambda drops its warm caches.

Publishing uses :meth:`~titan_lib.stores.objects.ObjectStore.put_if_absent`, so an existing
id is never overwritten; since the id is a content hash, publishing the same model again
is a no-op. Retiring writes a separate marker (also create-only): the model document stays
readable forever, but :func:`list_models` no longer lists it as served. Standard library
only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from titan_lib.core.model_events import announce
from titan_lib.core.signal_model import SignalModel
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError
from titan_lib.stores.objects import ObjectStore, open_store

MODELS_PREFIX = "models/"
RETIRED_PREFIX = "models/retired/"
_MODEL_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Retirement:
    """A retirement marker: when and why a model stopped being served."""

    model_id: str
    retired_at: str
    reason: str


@dataclass(frozen=True)
class PublishedModel:
    """A stored model and its retirement marker (``None`` while served)."""

    model: SignalModel
    retirement: Retirement | None

    @property
    def served(self) -> bool:
        """Whether the model is served (not retired)."""
        return self.retirement is None


@dataclass(frozen=True)
class PublishResult:
    """Outcome of :func:`publish`: the id and whether this call created the document."""

    model_id: str
    created: bool
    key: str


def model_key(model_id: str) -> str:
    """Store key of a model document."""
    return f"{MODELS_PREFIX}{_checked_id(model_id)}.json"


def retirement_key(model_id: str) -> str:
    """Store key of a model's retirement marker."""
    return f"{RETIRED_PREFIX}{_checked_id(model_id)}.json"


def _open(store: ObjectStore | str | os.PathLike[str] | None) -> ObjectStore:
    return store if isinstance(store, ObjectStore) else open_store(store)


def _checked_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise ParameterError(
            f"model id must be 64 lowercase hex characters, got {model_id!r}",
            {"model_id": str(model_id)},
        )
    return model_id


def publish(model: SignalModel, store: ObjectStore | str | None = None) -> PublishResult:
    """Store ``model`` under its content id, never overwriting.

    Returns ``created=False`` when the same id was already published (by any run): the
    stored document is left as it was, provenance included.
    """
    target = _open(store)
    key = model_key(model.model_id)
    created = target.put_if_absent(key, (model.to_json() + "\n").encode("utf-8"))
    if created:
        announce("published", model.model_id)
    else:
        get_model(model.model_id, target)  # the stored document must be a valid model
    return PublishResult(model_id=model.model_id, created=created, key=key)


def get_model(model_id: str, store: ObjectStore | str | None = None) -> SignalModel:
    """Read a published model (retired ones too).

    Raises
    ------
    NotFoundError
        No model with that id in the store.
    DataValidationError, SchemaVersionError
        The stored document is malformed, altered, or from a newer schema.
    """
    target = _open(store)
    try:
        raw = target.read_bytes(model_key(model_id))
    except NotFoundError:
        raise NotFoundError(
            f"no published model {model_id} in store {target.uri}", {"model_id": model_id}
        ) from None
    model = SignalModel.from_json(raw)
    if model.model_id != model_id:
        raise DataValidationError(
            f"document at {model_key(model_id)} holds model {model.model_id}",
            {"model_id": model_id},
        )
    return model


def retirement(model_id: str, store: ObjectStore | str | None = None) -> Retirement | None:
    """The model's retirement marker, or ``None`` while it is served."""
    target = _open(store)
    try:
        doc = json.loads(target.read_bytes(retirement_key(model_id)))
    except NotFoundError:
        return None
    except ValueError as exc:
        raise DataValidationError(
            f"retirement marker of {model_id} is not valid JSON: {exc}", {"model_id": model_id}
        ) from None
    if not isinstance(doc, dict) or doc.get("model_id") != model_id:
        raise DataValidationError(
            f"retirement marker of {model_id} is malformed", {"model_id": model_id}
        )
    return Retirement(
        model_id=model_id,
        retired_at=str(doc.get("retired_at", "")),
        reason=str(doc.get("reason", "")),
    )


def retire(model_id: str, reason: str = "", store: ObjectStore | str | None = None) -> Retirement:
    """Stop serving a model. Idempotent: retiring twice keeps the first marker.

    Raises
    ------
    NotFoundError
        No model with that id in the store.
    """
    target = _open(store)
    if not target.exists(model_key(model_id)):
        raise NotFoundError(
            f"no published model {model_id} in store {target.uri}", {"model_id": model_id}
        )
    marker = Retirement(model_id=model_id, retired_at=datetime.now(UTC).isoformat(), reason=reason)
    body = json.dumps(
        {"model_id": marker.model_id, "retired_at": marker.retired_at, "reason": marker.reason},
        sort_keys=True,
        indent=2,
    )
    if target.put_if_absent(retirement_key(model_id), (body + "\n").encode("utf-8")):
        announce("retired", model_id)
        return marker
    existing = retirement(model_id, target)
    assert existing is not None
    return existing


def list_model_ids(
    store: ObjectStore | str | None = None, include_retired: bool = False
) -> list[str]:
    """Ids of published models, sorted; served ones only unless ``include_retired``."""
    target = _open(store)
    published: list[str] = []
    retired: set[str] = set()
    for key in target.list(MODELS_PREFIX):
        name = key.rsplit("/", 1)[-1].removesuffix(".json")
        if not _MODEL_ID.fullmatch(name) or not key.endswith(".json"):
            continue
        if key.startswith(RETIRED_PREFIX):
            retired.add(name)
        elif key == f"{MODELS_PREFIX}{name}.json":
            published.append(name)
    return [m for m in sorted(published) if include_retired or m not in retired]


def list_models(
    store: ObjectStore | str | None = None, include_retired: bool = False
) -> list[PublishedModel]:
    """Published models with their retirement status, sorted by id.

    Served models only, unless ``include_retired``.
    """
    target = _open(store)
    out = []
    for model_id in list_model_ids(target, include_retired=include_retired):
        out.append(PublishedModel(get_model(model_id, target), retirement(model_id, target)))
    return out
