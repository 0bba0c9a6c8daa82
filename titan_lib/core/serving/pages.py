"""Pages of a list, opaque cursors and entity tags, shared by every list route.

A list route answers ``{"items": [...], "next_cursor": "..."}``; ``next_cursor`` is left
out on the last page. Items come in one stable order, each with a sort key; a cursor holds
the route it belongs to and the key of the last item served, so a page starts strictly
after it. Items added or removed between two requests therefore never make a client see
an item twice or skip one that was there all along.

A cursor is URL-safe base64 of a small JSON object. It is opaque to clients: only its
round trip is promised. Anything that does not decode to a cursor of the same route is a
:class:`~titan_lib.exceptions.ParameterError` naming the parameter.

Entity tags are strong: the SHA-256 of the exact response bytes, so ``If-None-Match`` with
the tag of an unchanged page answers 304.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from titan_lib.exceptions import ParameterError

T = TypeVar("T")
SortKey = tuple[Any, ...]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
"""The largest page any list route serves."""
MAX_CURSOR_CHARS = 512


@dataclass(frozen=True)
class PageRequest:
    """The page a client asked for: at most ``limit`` items after ``after`` (a sort key).

    ``pinned`` carries what the first page fixed for the whole walk (e.g. the scan whose
    pairs are listed), so later pages read the same collection.
    """

    route: str
    limit: int
    after: SortKey | None = None
    pinned: str | None = None


def page_request(
    route: str,
    params: Mapping[str, str] | None,
    *,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
) -> PageRequest:
    """Read ``limit`` and ``cursor`` from a request's query parameters.

    Raises
    ------
    ParameterError
        ``limit`` is not an integer from 1 to ``max_limit``, or ``cursor`` is not a cursor
        this route handed out.
    """
    params = params or {}
    raw_limit = params.get("limit")
    limit = default_limit
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6):
            raise ParameterError(
                f"limit must be an integer from 1 to {max_limit}", {"parameter": "limit"}
            )
        limit = int(raw_limit)
        if not 1 <= limit <= max_limit:
            raise ParameterError(
                f"limit must be an integer from 1 to {max_limit}, got {limit}",
                {"parameter": "limit"},
            )
    raw_cursor = params.get("cursor")
    if raw_cursor is None:
        return PageRequest(route=route, limit=limit)
    after, pinned = decode_cursor(route, raw_cursor)
    return PageRequest(route=route, limit=limit, after=after, pinned=pinned)


def encode_cursor(route: str, after: SortKey, pinned: str | None = None) -> str:
    """The opaque cursor of the item with sort key ``after`` on ``route``."""
    doc: dict[str, Any] = {"r": route, "k": list(after)}
    if pinned is not None:
        doc["p"] = pinned
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(route: str, cursor: str) -> tuple[SortKey, str | None]:
    """The sort key and pinned value of a cursor of ``route``.

    Raises
    ------
    ParameterError
        Not a cursor of this route.
    """
    invalid = ParameterError(
        "cursor is not valid here; pass the next_cursor of a previous page of this list",
        {"parameter": "cursor"},
    )
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(doc, dict) or set(doc) - {"r", "k", "p"} or doc.get("r") != route:
        raise invalid
    key, pinned = doc.get("k"), doc.get("p")
    if not isinstance(key, list) or not key or (pinned is not None and not isinstance(pinned, str)):
        raise invalid
    if not all(isinstance(part, str | int) and not isinstance(part, bool) for part in key):
        raise invalid
    return tuple(key), pinned


@dataclass(frozen=True)
class Page:
    """One page: its items and the cursor of the next page (``None`` on the last one)."""

    items: list[Any]
    next_cursor: str | None

    def body(self) -> dict[str, Any]:
        """The JSON body: ``items``, and ``next_cursor`` unless this is the last page."""
        body: dict[str, Any] = {"items": self.items}
        if self.next_cursor is not None:
            body["next_cursor"] = self.next_cursor
        return body


def page_of(
    items: Sequence[T],
    request: PageRequest,
    key: Callable[[T], SortKey],
    render: Callable[[T], Any],
    accept: Callable[[T], bool] | None = None,
    *,
    descending: bool = False,
) -> Page:
    """The requested page of ``items``, sorted by ``key`` (ascending, or ``descending``).

    Keys are unique. ``accept`` filters items; the cursor still moves over the sorted
    sequence, so a filter never makes the walk skip or repeat an item.
    """
    start = 0
    if request.after is not None:
        after = request.after
        lo, hi = 0, len(items)
        while lo < hi:  # the first item that comes after ``after``
            mid = (lo + hi) // 2
            probe = _comparable(key(items[mid]), after)
            if (probe >= after) if descending else (probe <= after):
                lo = mid + 1
            else:
                hi = mid
        start = lo
    chosen: list[T] = []
    index = start
    while index < len(items) and len(chosen) < request.limit:
        if accept is None or accept(items[index]):
            chosen.append(items[index])
        index += 1
    more = index < len(items) if accept is None else any(map(accept, islice(items, index, None)))
    last_key = key(chosen[-1]) if chosen else None
    cursor = (
        encode_cursor(request.route, last_key, request.pinned)
        if more and last_key is not None
        else None
    )
    return Page(items=[render(item) for item in chosen], next_cursor=cursor)


def _comparable(key: SortKey, after: SortKey) -> SortKey:
    """``key`` cut to the length of ``after`` with the types of ``after`` where they differ
    (a forged cursor must give a 400 or a page, never a ``TypeError``)."""
    if len(key) != len(after) or any(
        type(a) is not type(b) for a, b in zip(key, after, strict=True)
    ):
        raise ParameterError(
            "cursor is not valid here; pass the next_cursor of a previous page of this list",
            {"parameter": "cursor"},
        )
    return key


def encoded_body(page: Page, head: Mapping[str, Any] | None = None) -> bytes:
    """The JSON bytes of a page whose items are JSON texts already (encoded once, when
    their document was read, so that serving a page only joins them), after the fields
    of ``head``."""
    parts = [f"{json.dumps(k)}:{json.dumps(v, allow_nan=False)}" for k, v in (head or {}).items()]
    parts.append('"items":[' + ",".join(page.items) + "]")
    if page.next_cursor is not None:
        parts.append(f'"next_cursor":{json.dumps(page.next_cursor)}')
    return ("{" + ",".join(parts) + "}").encode()


def entity_tag(body: bytes) -> str:
    """The strong entity tag of a response body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``tag`` (weak comparison, RFC 9110)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == tag:
            return True
    return False


def dumps_body(body: Any) -> bytes:
    """The compact JSON bytes a response carries (and its entity tag is computed over)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
