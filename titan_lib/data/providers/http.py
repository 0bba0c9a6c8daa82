"""JSON over HTTPS for market-data providers, with the standard library only.

:func:`get_json` sends one GET and retries what a provider's own clients retry:

- 5xx answers, 408, timeouts, refused or reset connections and bodies cut short (a
  truncated page is never parsed as a shorter one): up to ``RetryPolicy.attempts`` tries,
  waiting a random time between 0 and ``base_delay_s * 2**retry`` seconds (full jitter,
  capped at ``max_delay_s``) before each retry;
- 429 (rate limited): waits as the server says, ``Retry-After`` (seconds or an HTTP
  date) or ``X-RateLimit-Reset`` (Unix seconds), at most ``max_wait_s``, then retries;
  a successful answer with ``X-RateLimit-Remaining: 0`` makes the next request wait
  for the reset the same way;
- other 4xx answers are definitive: :class:`ProviderRejectedError` with the server's
  message, never retried.

Base URLs must be ``https://``; plain ``http://`` is accepted for loopback hosts only
(a local test server), so an API key never travels unencrypted.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from titan_lib.exceptions import ParameterError, TitanError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ProviderUnavailableError(TitanError):
    """A market-data provider did not answer usefully after every retry."""

    code = "provider_unavailable"


class ProviderRejectedError(TitanError):
    """A market-data provider refused a request (bad key, bad symbol, bad range)."""

    code = "provider_rejected"


@dataclass(frozen=True)
class RetryPolicy:
    """How :func:`get_json` waits and retries.

    Attributes
    ----------
    attempts
        Tries per request, the first included (>= 1).
    timeout_s
        Seconds allowed for connecting and for each read of the answer.
    base_delay_s, max_delay_s
        Retry ``k`` (0-based) waits a uniform random time in
        ``[0, min(max_delay_s, base_delay_s * 2**k)]`` seconds.
    max_wait_s
        Longest wait, in seconds, for a rate-limit reset announced by the server.
    """

    attempts: int = 5
    timeout_s: float = 30.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ParameterError(f"retry attempts must be >= 1, got {self.attempts}")
        if min(self.timeout_s, self.base_delay_s, self.max_delay_s, self.max_wait_s) < 0:
            raise ParameterError("retry timeouts and delays must be >= 0 seconds")

    def backoff_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based), with full jitter."""
        return random.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2.0**retry))


@dataclass
class RequestLog:
    """What a client did: requests sent, retries and seconds spent waiting."""

    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    not_before: float = field(default=0.0, repr=False)
    """Monotonic time before which the next request must not be sent (rate limit)."""


def check_base_url(url: str, setting: str) -> str:
    """``url`` without a trailing slash, after checking it is https (or http to loopback).

    Raises
    ------
    ParameterError
        Another scheme, no host, or plain http to a host that is not loopback.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ParameterError(f"{setting} must be an https:// URL, got {url!r}", {setting: url})
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ParameterError(
            f"{setting} must use https:// (plain http is allowed for 127.0.0.1 only), got {url!r}",
            {setting: url},
        )
    return url.rstrip("/")


def _server_message(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", errors="replace").strip()
    if isinstance(doc, dict) and "message" in doc:
        return str(doc["message"])[:300]
    return str(doc)[:300]


def _reset_wait_s(after: str | None, reset: str | None, now: float) -> float | None:
    """Seconds until the rate-limit window reopens, from the ``Retry-After`` (``after``)
    or ``X-RateLimit-Reset`` (``reset``) header; ``None`` when neither is usable."""
    if after:
        try:
            return max(0.0, float(after))
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(after)
            except (TypeError, ValueError):
                moment = None
            if moment is not None:
                return max(0.0, moment.timestamp() - now)
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


def get_json(
    url: str,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    *,
    what: str,
    log: RequestLog | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """GET ``url`` and parse its JSON body, retrying as the module docstring says.

    Parameters
    ----------
    url
        The full URL with its query string (no secrets: keys go in ``headers``).
    headers
        Request headers (API keys).
    policy
        Retries, timeouts and waits.
    what
        How errors name the request, e.g. ``"alpaca bars for KO, PEP"``.
    log
        Counts requests, retries and waits; carries a rate-limit wait to the next call.
    sleep
        Waits (seconds); tests may pass a recorder.

    Raises
    ------
    ProviderRejectedError
        A definitive 4xx answer (the server's message is quoted).
    ProviderUnavailableError
        Still failing after ``policy.attempts`` tries.
    """
    log = log if log is not None else RequestLog()
    last = "no answer"
    for attempt in range(policy.attempts):
        pause = log.not_before - time.monotonic()
        if pause > 0:
            sleep(pause)
            log.waited_s += pause
        request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
        log.requests += 1
        wait: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout_s) as response:
                raw = response.read()
                answer_headers = response.headers
            doc = json.loads(raw)
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
            message = _server_message(raw)
            if status == 429:
                last = f"HTTP 429 (rate limited): {message}"
                wait = _reset_wait_s(
                    exc.headers.get("Retry-After"),
                    exc.headers.get("X-RateLimit-Reset"),
                    time.time(),
                )
            elif status == 408 or status >= 500:
                last = f"HTTP {status}: {message}"
            else:
                raise ProviderRejectedError(
                    f"{what}: HTTP {status}: {message}", {"status": status}
                ) from None
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            last = f"{type(reason).__name__}: {reason}".rstrip(": ")
        except ValueError:
            last = "the answer was not complete JSON"
        else:
            remaining = answer_headers.get("X-RateLimit-Remaining")
            if remaining is not None and remaining.strip() == "0":
                reset = _reset_wait_s(None, answer_headers.get("X-RateLimit-Reset"), time.time())
                if reset:
                    log.not_before = time.monotonic() + min(reset, policy.max_wait_s)
            return doc
        if attempt + 1 == policy.attempts:
            break
        log.retries += 1
        delay = min(wait, policy.max_wait_s) if wait is not None else policy.backoff_s(attempt)
        sleep(delay)
        log.waited_s += delay
    raise ProviderUnavailableError(
        f"{what}: no usable answer after {policy.attempts} tries; last: {last}",
        {"attempts": policy.attempts, "last": last},
    )
