"""Push channels a WebSocket client may subscribe to.

- ``signals:<model_id>``: the model's signal, pushed when it changes (scope
  ``signals:read``);
- ``fills``: every fill of the subscriber's own orders (scope ``orders:write``);
- ``jobs:<job_id>``: each state change of one of the subscriber's jobs (scope
  ``jobs:write``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from titan_lib.exceptions import ParameterError

ChannelKind = Literal["signals", "fills", "jobs"]
MAX_CHANNELS_PER_MESSAGE = 20
CHANNEL_SCOPES: dict[ChannelKind, str] = {
    "signals": "signals:read",
    "fills": "orders:write",
    "jobs": "jobs:write",
}
_CHANNEL = re.compile(r"(signals|jobs):([A-Za-z0-9_.:\-]{1,128})|fills")


@dataclass(frozen=True)
class Channel:
    """A parsed channel name: its kind and the model or job it is about."""

    name: str
    kind: ChannelKind
    key: str | None

    @property
    def scope(self) -> str:
        """The scope a subscriber needs."""
        return CHANNEL_SCOPES[self.kind]


SIGNALS_PREFIX = "signals:"
"""Start of every model's signal channel."""


def signal_channel(model_id: str) -> str:
    """The channel of a model's signal: ``signals:<model_id>``."""
    return f"{SIGNALS_PREFIX}{model_id}"


def parse_channel(name: object) -> Channel:
    """Read a channel name.

    Raises
    ------
    ParameterError
        Not ``signals:<model_id>``, ``fills`` or ``jobs:<job_id>``.
    """
    match = _CHANNEL.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        shown = name[:80] if isinstance(name, str) else type(name).__name__
        raise ParameterError(
            f"channel {shown!r} is not signals:<model_id>, fills or jobs:<job_id>",
            {"channel": shown},
        )
    if match.group(1) is None:
        return Channel(name=str(name), kind="fills", key=None)
    kind: ChannelKind = "signals" if match.group(1) == "signals" else "jobs"
    return Channel(name=str(name), kind=kind, key=match.group(2))
