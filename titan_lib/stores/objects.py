"""The object-store interface shared by the local-folder and S3 adapters.

Keys are ``/``-separated paths relative to the store root (``prices/manifest.json``).
Every write is atomic: a reader sees the old object or the new one, never a torn one.
Two conditional writes make multi-writer updates safe: :meth:`ObjectStore.put_if_absent`
(create-only, used for immutable artefacts) and :meth:`ObjectStore.write_if_match`
(compare-and-swap on a version token, used for manifests and pointers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from titan_lib.config import store_uri


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key/bytes store with atomic and conditional writes."""

    uri: str

    def read_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raise :class:`~titan_lib.exceptions.NotFoundError`."""
        ...

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """Return ``(bytes, version token)``, or ``None`` when the key does not exist."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if the key is free. Return ``False`` if it existed."""
        ...

    def write_if_match(self, key: str, data: bytes, token: str | None) -> None:
        """Replace the object only if its version token is still ``token``.

        ``token=None`` means "only if the key does not exist". Raises
        :class:`~titan_lib.exceptions.ConflictError` when another writer got there first.
        """
        ...

    def exists(self, key: str) -> bool:
        """Whether the key holds an object."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """All keys below ``prefix`` (recursive), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for the key when the store is local, else ``None``."""
        ...


def open_store(uri: str | os.PathLike[str] | None = None) -> ObjectStore:
    """Open the store named by ``uri``.

    Parameters
    ----------
    uri
        ``s3://bucket/prefix`` for S3 (boto3; honours ``AWS_ENDPOINT_URL``), anything else
        is a local folder (created on first write). ``None`` resolves through
        :func:`titan_lib.config.store_uri` (``$TITAN_STORE``, then ``./titan-data``).
    """
    resolved = store_uri(uri)
    if resolved.startswith("s3://"):
        from titan_lib.stores.s3 import S3ObjectStore

        return S3ObjectStore(resolved)
    from titan_lib.stores.local import LocalObjectStore

    return LocalObjectStore(resolved)


def read_json(store: ObjectStore, key: str) -> Any:
    """Read and parse a JSON object from the store."""
    return json.loads(store.read_bytes(key).decode("utf-8"))


def dumps_json(obj: Any, *, pretty: bool = True) -> bytes:
    """Serialise ``obj`` as stable JSON bytes (sorted keys, no NaN).

    ``pretty=False`` gives compact output, several times faster for large documents.
    """
    if pretty:
        text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False, default=str)
    else:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return text.encode()


def write_json(store: ObjectStore, key: str, obj: Any) -> None:
    """Write ``obj`` as JSON, atomically."""
    store.write_bytes(key, dumps_json(obj))
