"""Bearer-token (JWT) verification and scopes, in pure Python.

Two algorithms, each bound to its own key material so one can never stand in for the
other (the HS/RS confusion attack):

- ``HS256``: HMAC-SHA256 with a shared secret (at least 32 bytes).
- ``RS256``: RSASSA-PKCS1-v1_5 with SHA-256, verified with modular exponentiation on a
  public key given as PEM (SubjectPublicKeyInfo or PKCS#1), as JWKS ``(n, e)`` keys or as
  a JWKS URL (:class:`JwksCache`: cached, refetched when a token names an unknown key).

``alg: none`` and any other algorithm are refused. The order of work is fixed: the token
is checked for size and strict base64url (RFC 7515: no padding, no whitespace, canonical
final character, so one token has one spelling), the header is parsed with a size and a
nesting limit (duplicate names, unknown ``crit`` parameters refused), the signature is
verified, and only then is the payload parsed. Claims checked: ``exp`` (required, at
most :data:`MAX_TOKEN_LIFETIME_SECONDS` ahead), ``nbf`` and ``iat`` (when present, not in
the future), all finite numbers of seconds since the epoch below year 10000; ``iss``,
``aud`` and ``sub`` (required). Scopes come from ``scope`` (space separated) or ``scp``.

Keys are read by :meth:`AuthSettings.from_env`; secrets come from the environment or from
AWS SSM Parameter Store (:func:`read_secret`), never from files in the package.
Standard library only; boto3 is imported only when a secret lives in SSM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from titan_lib.core.strict_json import InvalidJSONError, parse_object
from titan_lib.exceptions import ParameterError, StoreError, TitanError

Scope = Literal["signals:read", "research:read", "orders:write", "jobs:write", "admin"]
SCOPES: tuple[Scope, ...] = ("signals:read", "research:read", "orders:write", "jobs:write", "admin")
Algorithm = Literal["HS256", "RS256"]

DEFAULT_ISSUER = "titan"
DEFAULT_AUDIENCE = "titan-api"
MIN_SECRET_BYTES = 32
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
MAX_RSA_EXPONENT_BITS = 256

MIN_TOKEN_LIFETIME_SECONDS = 300
"""Shortest lifetime ``titan token issue`` mints (5 minutes)."""
MAX_TOKEN_LIFETIME_SECONDS = 30 * 86400
"""Longest lifetime accepted: a token whose ``exp`` lies further ahead is refused."""
AUTHORIZER_CACHE_SECONDS = 60
"""How long API Gateway may reuse an authorizer decision for the same token (seconds).

A cached decision outlives the token's ``exp`` by up to this long, so it is kept at a
fifth of :data:`MIN_TOKEN_LIFETIME_SECONDS`."""

MAX_TOKEN_CHARS = 8192
MAX_HEADER_BYTES = 2048
MAX_HEADER_DEPTH = 4
MAX_PAYLOAD_DEPTH = 16
MAX_INTEGER_DIGITS = 20
MAX_NUMERIC_DATE = 253402300799.0
"""9999-12-31T23:59:59Z: the largest ``exp``, ``nbf`` or ``iat`` a token may carry."""
UNDERSTOOD_CRITICAL_PARAMETERS: frozenset[str] = frozenset()
"""JWS header extensions this verifier implements (RFC 7515, section 4.1.11): none."""

DEFAULT_JWKS_TTL_SECONDS = 600.0
DEFAULT_JWKS_MIN_REFRESH_SECONDS = 30.0
MAX_JWKS_BYTES = 256 * 1024

# DER DigestInfo prefix for SHA-256 (RFC 8017, section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_PRINTABLE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


class TokenError(TitanError):
    """A bearer token is missing, malformed, badly signed or has invalid claims."""

    code = "invalid_token"


@dataclass(frozen=True)
class RSAPublicKey:
    """An RSA public key: modulus ``n`` and public exponent ``e``.

    Raises
    ------
    ParameterError
        The modulus is even or not 2048 to 8192 bits long, or the exponent is below 3,
        even, not below ``n`` or longer than 256 bits: such a key is refused at load time.
    """

    n: int
    e: int
    kid: str | None = None

    def __post_init__(self) -> None:
        name = f"RSA key {self.kid!r}" if self.kid else "RSA key"
        bits = self.n.bit_length()
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS or self.n % 2 == 0:
            raise ParameterError(
                f"{name} has a {bits}-bit modulus; an odd modulus of {MIN_RSA_BITS} to "
                f"{MAX_RSA_BITS} bits is required",
                {"kid": self.kid, "bits": bits},
            )
        if self.e < 3 or self.e % 2 == 0 or self.e >= self.n:
            raise ParameterError(
                f"{name} has public exponent {self.e if self.e < 2**32 else 'too large'}; "
                "an odd exponent of at least 3 is required (65537 is usual)",
                {"kid": self.kid},
            )
        if self.e.bit_length() > MAX_RSA_EXPONENT_BITS:
            raise ParameterError(
                f"{name} has a {self.e.bit_length()}-bit public exponent; at most "
                f"{MAX_RSA_EXPONENT_BITS} bits are accepted",
                {"kid": self.kid},
            )

    @property
    def size_bytes(self) -> int:
        """Length of the modulus (and of every signature) in bytes."""
        return (self.n.bit_length() + 7) // 8


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token subject and the scopes granted to it."""

    subject: str
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, scope: Scope) -> bool:
        """Whether the principal was granted ``scope``."""
        return scope in self.scopes


class JwksCache:
    """RSA signing keys published at a JWKS URL, kept fresh without restarting.

    The keys are fetched when the cache is created, refetched once they are older than
    ``ttl_seconds``, and refetched at once when a token names a key id (``kid``) that is
    not among them (the identity provider rotated its keys). Fetches are at least
    ``min_refresh_seconds`` apart whatever the traffic, so tokens with made-up key ids
    cannot flood the provider. A failed refetch keeps the keys already known; while no
    key could be fetched yet, :meth:`keys` raises :class:`StoreError` (without fetching
    more often).

    Parameters
    ----------
    url
        ``https://`` URL of the JWKS document; ``http://`` is accepted for 127.0.0.1 only
        (local tests).
    ttl_seconds
        Age (seconds) after which the keys are refetched.
    min_refresh_seconds
        Least time (seconds) between two fetches.
    timeout
        Connect and read timeout of one fetch (seconds).
    clock
        Monotonic time source in seconds.

    Raises
    ------
    ParameterError
        The URL is not allowed, or the first document fetched holds no acceptable RSA
        signing key.
    """

    def __init__(
        self,
        url: str,
        ttl_seconds: float = DEFAULT_JWKS_TTL_SECONDS,
        min_refresh_seconds: float = DEFAULT_JWKS_MIN_REFRESH_SECONDS,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_jwks_url(url)
        if not (math.isfinite(ttl_seconds) and ttl_seconds > 0):
            raise ParameterError(f"the JWKS cache TTL must be positive, got {ttl_seconds}")
        if not (math.isfinite(min_refresh_seconds) and 0 <= min_refresh_seconds <= ttl_seconds):
            raise ParameterError(
                "the JWKS refresh interval must be between 0 and the cache TTL, got "
                f"{min_refresh_seconds}"
            )
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[RSAPublicKey, ...] = ()
        self._fetched_at = self._attempted_at = -math.inf
        self._failure: ParameterError | StoreError | None = None
        self._refresh(clock())
        if isinstance(self._failure, ParameterError):
            raise self._failure

    def keys(self) -> tuple[RSAPublicKey, ...]:
        """The current keys, refetched first when older than the TTL (rate-limited).

        Raises
        ------
        StoreError
            No key could be fetched yet; the last failure is named.
        """
        now = self._clock()
        if now - self._fetched_at >= self.ttl_seconds:
            self._refresh(now)
        if not self._keys:
            failure = self._failure.message if self._failure else "no fetch yet"
            raise StoreError(f"no JWKS keys from {self.url}: {failure}", {"url": self.url})
        return self._keys

    def refresh_for_unknown_kid(self, kid: str) -> tuple[RSAPublicKey, ...]:
        """The keys after refetching for ``kid`` (at most once per refresh interval)."""
        if not any(key.kid == kid for key in self._keys):
            self._refresh(self._clock())
        return self._keys

    def _refresh(self, now: float) -> None:
        with self._lock:
            if now - self._attempted_at < self.min_refresh_seconds:
                return
            self._attempted_at = now
            try:
                self._keys = tuple(fetch_jwks(self.url, self.timeout))
            except (ParameterError, StoreError) as exc:
                self._failure = exc  # keep the keys already known; retried after the interval
                return
            self._fetched_at = now
            self._failure = None


@dataclass(frozen=True)
class AuthSettings:
    """What a token must be signed with and who it must be from and for.

    Parameters
    ----------
    issuer, audience
        Required ``iss`` and (one of the) ``aud`` values.
    hs256_secret
        Shared secret for ``HS256``; ``None`` disables HS256.
    rsa_keys
        Public keys for ``RS256``. With several keys, the token header's ``kid`` selects
        one.
    jwks
        Keys published at a JWKS URL, used with ``rsa_keys``; ``None`` for none. With
        neither, RS256 is disabled.
    leeway_seconds
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (0 to 300 seconds).
    max_lifetime_seconds
        A token whose ``exp`` is further than this (seconds) ahead is refused.
    """

    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    hs256_secret: bytes | None = field(default=None, repr=False)
    rsa_keys: tuple[RSAPublicKey, ...] = ()
    jwks: JwksCache | None = field(default=None, compare=False)
    leeway_seconds: int = 30
    max_lifetime_seconds: int = MAX_TOKEN_LIFETIME_SECONDS

    def __post_init__(self) -> None:
        if self.hs256_secret is not None and len(self.hs256_secret) < MIN_SECRET_BYTES:
            raise ParameterError(
                f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes long",
                {"length": len(self.hs256_secret)},
            )
        if self.hs256_secret is None and not self.rsa_keys and self.jwks is None:
            raise ParameterError(
                "no token verification key is configured: set TITAN_JWT_SECRET (or "
                "TITAN_JWT_SECRET_SSM), TITAN_JWT_PUBLIC_KEY, TITAN_JWT_JWKS or "
                "TITAN_JWT_JWKS_URL"
            )
        if not 0 <= self.leeway_seconds <= 300:
            raise ParameterError(
                f"the token leeway must be 0 to 300 seconds, got {self.leeway_seconds}"
            )
        if not 0 < self.max_lifetime_seconds <= MAX_TOKEN_LIFETIME_SECONDS:
            raise ParameterError(
                f"the maximum token lifetime must be 1 to {MAX_TOKEN_LIFETIME_SECONDS} "
                f"seconds, got {self.max_lifetime_seconds}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Build settings from environment variables.

        ``TITAN_JWT_ISSUER``, ``TITAN_JWT_AUDIENCE``, ``TITAN_JWT_LEEWAY_SECONDS``,
        ``TITAN_JWT_MAX_LIFETIME_SECONDS``; HS256: ``TITAN_JWT_SECRET`` or
        ``TITAN_JWT_SECRET_SSM`` (an SSM parameter name); RS256: ``TITAN_JWT_PUBLIC_KEY``
        (PEM text), ``TITAN_JWT_JWKS`` (JWKS JSON text) and/or ``TITAN_JWT_JWKS_URL``
        (fetched now, then kept fresh: ``TITAN_JWT_JWKS_TTL_SECONDS``, default 600, and
        ``TITAN_JWT_JWKS_MIN_REFRESH_SECONDS``, default 30).
        """
        env = os.environ if environ is None else environ
        secret = read_secret("TITAN_JWT_SECRET", env)
        keys: list[RSAPublicKey] = []
        jwks = None
        variable = ""
        try:
            if env.get(variable := "TITAN_JWT_PUBLIC_KEY"):
                keys.append(load_pem_public_key(env[variable]))
            if env.get(variable := "TITAN_JWT_JWKS"):
                keys.extend(load_jwks(env[variable]))
            if env.get(variable := "TITAN_JWT_JWKS_URL"):
                jwks = JwksCache(
                    env[variable],
                    ttl_seconds=_number_from_env(
                        env, "TITAN_JWT_JWKS_TTL_SECONDS", DEFAULT_JWKS_TTL_SECONDS
                    ),
                    min_refresh_seconds=_number_from_env(
                        env, "TITAN_JWT_JWKS_MIN_REFRESH_SECONDS", DEFAULT_JWKS_MIN_REFRESH_SECONDS
                    ),
                )
        except ParameterError as exc:
            if exc.message.startswith("TITAN_JWT_"):
                raise
            raise ParameterError(f"{variable}: {exc.message}", exc.details) from None
        return cls(
            issuer=env.get("TITAN_JWT_ISSUER") or DEFAULT_ISSUER,
            audience=env.get("TITAN_JWT_AUDIENCE") or DEFAULT_AUDIENCE,
            hs256_secret=secret.encode() if secret else None,
            rsa_keys=tuple(keys),
            jwks=jwks,
            leeway_seconds=int(_number_from_env(env, "TITAN_JWT_LEEWAY_SECONDS", 30)),
            max_lifetime_seconds=int(
                _number_from_env(env, "TITAN_JWT_MAX_LIFETIME_SECONDS", MAX_TOKEN_LIFETIME_SECONDS)
            ),
        )


def _number_from_env(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"{name} must be a number, got {text[:32]!r}") from None
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {text[:32]!r}")
    return value


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the environment variable ``name``, else from SSM.

    When ``name`` is unset and ``<name>_SSM`` names an SSM parameter, the parameter is read
    with decryption (boto3, imported here). Returns ``None`` when neither is set.

    Raises
    ------
    StoreError
        The SSM parameter could not be read.
    """
    env = os.environ if environ is None else environ
    if env.get(name):
        return env[name]
    parameter = env.get(f"{name}_SSM")
    if not parameter:
        return None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(
            f"could not read SSM parameter {parameter!r} (named by {name}_SSM): "
            f"{type(exc).__name__}",
            {"parameter": parameter},
        ) from None
    return str(response["Parameter"]["Value"])


# -- encodings ---------------------------------------------------------------------------


def b64url_decode(segment: str) -> bytes:
    """Decode strict base64url (RFC 7515, section 2): the one canonical spelling only.

    Refused with :class:`TokenError`: padding, whitespace, characters outside
    ``A-Z a-z 0-9 - _``, an impossible length, and a final character whose unused bits
    are not zero (which would let several spellings decode to the same bytes).
    """
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError("token segment is not unpadded base64url")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise TokenError("token segment is not canonical base64url")
    return raw


def _b64url_uint(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


def _json_object(data: bytes, part: str, max_depth: int) -> dict[str, Any]:
    """Parse ``data`` as one strict JSON object nested at most ``max_depth`` deep."""
    try:
        return parse_object(data.decode("utf-8"), max_depth, MAX_INTEGER_DIGITS)
    except UnicodeDecodeError:
        raise TokenError(f"token {part} is not UTF-8") from None
    except InvalidJSONError as exc:
        raise TokenError(f"token {part}: {exc.message}") from None


def _der_read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one DER TLV at ``pos``: ``(tag, contents, next position)``."""
    if pos + 2 > len(data):
        raise ParameterError("public key DER is truncated")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ParameterError("public key DER has an invalid length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ParameterError("public key DER is truncated")
    return tag, data[pos:end], end


def _der_rsa_public_key(der: bytes) -> tuple[int, int]:
    """``(n, e)`` from a PKCS#1 ``RSAPublicKey`` SEQUENCE."""
    tag, body, _ = _der_read(der, 0)
    if tag != 0x30:
        raise ParameterError("RSA public key is not a DER SEQUENCE")
    tag_n, n_bytes, pos = _der_read(body, 0)
    tag_e, e_bytes, _ = _der_read(body, pos)
    if tag_n != 0x02 or tag_e != 0x02:
        raise ParameterError("RSA public key does not hold two INTEGERs")
    return int.from_bytes(n_bytes, "big"), int.from_bytes(e_bytes, "big")


def load_pem_public_key(pem: str, kid: str | None = None) -> RSAPublicKey:
    """Parse an RSA public key in PEM: ``PUBLIC KEY`` (SPKI) or ``RSA PUBLIC KEY`` (PKCS#1).

    Raises
    ------
    ParameterError
        Not an RSA public key in PEM, or a key refused by :class:`RSAPublicKey`.
    """
    lines = [line.strip() for line in pem.strip().splitlines() if line.strip()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN "):
        raise ParameterError("TITAN_JWT_PUBLIC_KEY is not a PEM block")
    label = lines[0][len("-----BEGIN ") :].rstrip("-")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise ParameterError("PEM public key body is not base64") from None
    if label == "RSA PUBLIC KEY":
        n, e = _der_rsa_public_key(der)
    elif label == "PUBLIC KEY":
        tag, spki, _ = _der_read(der, 0)
        if tag != 0x30:
            raise ParameterError("PEM public key is not a DER SEQUENCE")
        tag_alg, algorithm, pos = _der_read(spki, 0)
        tag_bits, bits, _ = _der_read(spki, pos)
        _, oid, _ = _der_read(algorithm, 0)
        if tag_alg != 0x30 or oid != _RSA_ENCRYPTION_OID:
            raise ParameterError("PEM public key is not an RSA key (only RSA is supported)")
        if tag_bits != 0x03 or not bits or bits[0] != 0:
            raise ParameterError("PEM public key has a malformed BIT STRING")
        n, e = _der_rsa_public_key(bits[1:])
    else:
        raise ParameterError(f"unsupported PEM block {label!r}; expected PUBLIC KEY")
    return RSAPublicKey(n=n, e=e, kid=kid)


def load_jwks(document: str | Mapping[str, Any]) -> list[RSAPublicKey]:
    """RSA signing keys of a JWKS document (``{"keys": [{"kty": "RSA", "n", "e"}]}``).

    Keys of other types or uses are skipped; an RSA signing key with a bad ``n`` or ``e``
    (see :class:`RSAPublicKey`) is refused with :class:`ParameterError`.
    """
    try:
        doc = json.loads(document) if isinstance(document, str) else document
        entries = doc["keys"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ParameterError("JWKS is not a JSON object with a 'keys' list") from None
    if not isinstance(entries, list):
        raise ParameterError("JWKS is not a JSON object with a 'keys' list")
    keys = []
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
            continue
        kid = entry.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise ParameterError(f"JWKS key id {kid!r} is not a string")
        try:
            n, e = _b64url_uint(entry["n"]), _b64url_uint(entry["e"])
        except (KeyError, TokenError, TypeError):
            raise ParameterError(f"JWKS key {kid!r} has an invalid n or e") from None
        keys.append(RSAPublicKey(n=n, e=e, kid=kid))
    if not keys:
        raise ParameterError("JWKS holds no RSA signing key")
    return keys


def check_jwks_url(url: str) -> None:
    """Refuse a JWKS URL that is not ``https://`` (``http://127.0.0.1`` is allowed).

    Raises
    ------
    ParameterError
        Another scheme, no host, or plain HTTP to any host but 127.0.0.1.
    """
    import ipaddress  # only JWKS URLs need these; keeps the cold import small
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host:
        try:
            if ipaddress.ip_address(host) == ipaddress.ip_address("127.0.0.1"):
                return
        except ValueError:
            pass
    raise ParameterError(
        f"TITAN_JWT_JWKS_URL must be an https:// URL (http:// only for 127.0.0.1), got "
        f"{url[:200]!r}",
        {"url": url[:200]},
    )


def fetch_jwks(url: str, timeout: float = 5.0) -> list[RSAPublicKey]:
    """Fetch and parse a JWKS document; see :class:`JwksCache` for the cached keys.

    Redirects are followed only to URLs :func:`check_jwks_url` allows; the document may
    be at most 256 KiB.

    Raises
    ------
    ParameterError
        The URL is not allowed or the document is not an acceptable JWKS.
    StoreError
        The document could not be fetched.
    """
    check_jwks_url(url)
    import urllib.request  # only JWKS URLs need it; keeps the cold import small

    class CheckedRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            check_jwks_url(newurl)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(CheckedRedirects)
    try:
        with opener.open(url, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise StoreError(f"could not fetch JWKS from {url}: {exc}", {"url": url}) from None
    if len(body) > MAX_JWKS_BYTES:
        raise ParameterError(f"JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
    return load_jwks(body.decode("utf-8", errors="replace"))


# -- verification ------------------------------------------------------------------------


def rsa_pkcs1v15_sha256_verify(key: RSAPublicKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of ``message``."""
    k = key.size_bytes
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    encoded = pow(s, key.e, key.n).to_bytes(k, "big")
    digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    padding = k - 3 - len(digest_info)
    if padding < 8:
        return False
    expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)


def _rsa_key_for(settings: AuthSettings, kid: str | None) -> RSAPublicKey:
    keys = settings.rsa_keys + (settings.jwks.keys() if settings.jwks else ())
    if kid is None:
        if len(keys) == 1:
            return keys[0]
        raise TokenError("token has no key id (kid) and several keys are configured")
    for key in keys:
        if key.kid == kid:
            return key
    if settings.jwks is not None:
        for key in settings.jwks.refresh_for_unknown_kid(kid):
            if key.kid == kid:
                return key
    raise TokenError("token key id (kid) is not a known key", {"kid": kid})


def _header_string(header: Mapping[str, Any], name: str) -> str | None:
    value = header.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 256 or not _PRINTABLE.fullmatch(value):
        raise TokenError(f"token header {name!r} is not a short printable string")
    return value


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"token claim {name!r} is not a number")
    if not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TokenError(f"token claim {name!r} is not a time between 1970 and 9999")
    return float(value)


def verify_token(token: str, settings: AuthSettings, now: float | None = None) -> Principal:
    """Verify a compact JWS token and return its principal.

    Parameters
    ----------
    token
        ``header.payload.signature`` (a leading ``Bearer `` is accepted).
    settings
        Keys, issuer, audience, leeway and maximum lifetime.
    now
        Current time in seconds since the epoch (``time.time()`` by default).

    Raises
    ------
    TokenError
        The token is too long or malformed (strict base64url, JSON header of at most
        2 KiB and 4 levels), names a critical header parameter, uses a refused or
        unconfigured algorithm, its signature does not verify, or a claim (exp, nbf, iat,
        iss, aud, sub) is invalid. The payload is parsed only after the signature holds.
    """
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"token is longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError("token is not a compact JWS (header.payload.signature)")
    if not all(_B64URL.fullmatch(part) for part in parts):
        raise TokenError("token holds characters outside the base64url alphabet")
    header_b64, payload_b64, signature_b64 = parts
    if len(header_b64) > MAX_HEADER_BYTES * 4 // 3 + 4:
        raise TokenError(f"token header is larger than {MAX_HEADER_BYTES} bytes")
    header = _json_object(b64url_decode(header_b64), "header", MAX_HEADER_DEPTH)
    if "crit" in header:
        raise TokenError(
            "token header names critical parameters (crit) this server does not implement",
            {"crit": [str(name)[:64] for name in header["crit"]][:8]}
            if isinstance(header["crit"], list)
            else {},
        )
    alg = header.get("alg")
    kid = _header_string(header, "kid")
    signature = b64url_decode(signature_b64)
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if alg == "HS256" and settings.hs256_secret is not None:
        expected = hmac.new(settings.hs256_secret, signing_input, hashlib.sha256).digest()
        valid = hmac.compare_digest(expected, signature)
    elif alg == "RS256" and (settings.rsa_keys or settings.jwks is not None):
        key = _rsa_key_for(settings, kid)
        valid = rsa_pkcs1v15_sha256_verify(key, signing_input, signature)
    else:
        shown = alg if isinstance(alg, str) and _PRINTABLE.fullmatch(alg[:16]) else "?"
        raise TokenError(f"token algorithm {shown[:16]!r} is not accepted", {"alg": shown[:16]})
    if not valid:
        raise TokenError("token signature does not verify")
    claims = _json_object(b64url_decode(payload_b64), "payload", MAX_PAYLOAD_DEPTH)
    return _check_claims(claims, settings, time.time() if now is None else now)


def _check_claims(claims: dict[str, Any], settings: AuthSettings, now: float) -> Principal:
    leeway = settings.leeway_seconds
    exp = _numeric_claim(claims, "exp")
    if exp is None:
        raise TokenError("token has no expiry (exp)")
    if now > exp + leeway:
        raise TokenError("token has expired", {"exp": exp})
    if exp > now + settings.max_lifetime_seconds + leeway:
        raise TokenError(
            f"token expiry (exp) is more than {settings.max_lifetime_seconds} seconds ahead",
            {"exp": exp},
        )
    nbf = _numeric_claim(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise TokenError("token is not valid yet (nbf)", {"nbf": nbf})
    iat = _numeric_claim(claims, "iat")
    if iat is not None and now + leeway < iat:
        raise TokenError("token was issued in the future (iat)", {"iat": iat})
    if claims.get("iss") != settings.issuer:
        raise TokenError("token issuer (iss) is not accepted")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if settings.audience not in audiences:
        raise TokenError("token audience (aud) is not accepted")
    subject = claims.get("sub")
    if not isinstance(subject, str) or len(subject) > 256 or not _PRINTABLE.fullmatch(subject):
        raise TokenError("token has no subject (sub) of 1 to 256 printable characters")
    return Principal(subject=subject, scopes=scopes_of(claims), claims=claims)


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes granted by a token: ``scope`` (space separated string) or ``scp`` (list)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()


def parse_scopes(values: list[str]) -> tuple[Scope, ...]:
    """Validate scope names (each may hold several, space or comma separated)."""
    found: list[Scope] = []
    for value in values:
        for name in value.replace(",", " ").split():
            if name not in SCOPES:
                raise ParameterError(
                    f"unknown scope {name!r}; choose from {', '.join(SCOPES)}", {"scope": name}
                )
            if name not in found:
                found.append(name)  # type: ignore[arg-type]
    if not found:
        raise ParameterError(f"give at least one scope: {', '.join(SCOPES)}")
    return tuple(found)
