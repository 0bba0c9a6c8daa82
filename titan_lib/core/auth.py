"""Bearer-token (JWT) verification and scopes, in pure Python.

Two algorithms, each bound to its own key material so one can never stand in for the
other (the HS/RS confusion attack):

- ``HS256``: HMAC-SHA256 with a shared secret (at least 32 bytes).
- ``RS256``: RSASSA-PKCS1-v1_5 with SHA-256, verified with modular exponentiation on a
  public key given as PEM (SubjectPublicKeyInfo or PKCS#1) or as JWKS ``(n, e)`` keys.

``alg: none`` and any other algorithm are refused. Claims checked: ``exp`` (required),
``nbf`` and ``iat`` (when present, not in the future), ``iss``, ``aud`` and ``sub``
(required). Scopes come from ``scope`` (space separated) or ``scp`` (a list).

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
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from titan_lib.exceptions import ParameterError, StoreError, TitanError

Scope = Literal["signals:read", "orders:write", "admin"]
SCOPES: tuple[Scope, ...] = ("signals:read", "orders:write", "admin")
Algorithm = Literal["HS256", "RS256"]

DEFAULT_ISSUER = "titan"
DEFAULT_AUDIENCE = "titan-api"
MIN_SECRET_BYTES = 32
MIN_RSA_BITS = 2048

# DER DigestInfo prefix for SHA-256 (RFC 8017, section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")


class TokenError(TitanError):
    """A bearer token is missing, malformed, badly signed or has invalid claims."""

    code = "invalid_token"


@dataclass(frozen=True)
class RSAPublicKey:
    """An RSA public key: modulus ``n`` and public exponent ``e``."""

    n: int
    e: int
    kid: str | None = None

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
        Public keys for ``RS256``; empty disables RS256. With several keys, the token
        header's ``kid`` selects one.
    leeway_seconds
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    """

    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    hs256_secret: bytes | None = field(default=None, repr=False)
    rsa_keys: tuple[RSAPublicKey, ...] = ()
    leeway_seconds: int = 30

    def __post_init__(self) -> None:
        if self.hs256_secret is not None and len(self.hs256_secret) < MIN_SECRET_BYTES:
            raise ParameterError(
                f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes long",
                {"length": len(self.hs256_secret)},
            )
        if self.hs256_secret is None and not self.rsa_keys:
            raise ParameterError(
                "no token verification key is configured: set TITAN_JWT_SECRET (or "
                "TITAN_JWT_SECRET_SSM), TITAN_JWT_PUBLIC_KEY, TITAN_JWT_JWKS or "
                "TITAN_JWT_JWKS_URL"
            )
        for key in self.rsa_keys:
            if key.n.bit_length() < MIN_RSA_BITS:
                raise ParameterError(
                    f"RSA key {key.kid or ''} has {key.n.bit_length()} bits; "
                    f"at least {MIN_RSA_BITS} are required",
                    {"kid": key.kid},
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Build settings from environment variables.

        ``TITAN_JWT_ISSUER``, ``TITAN_JWT_AUDIENCE``, ``TITAN_JWT_LEEWAY_SECONDS``;
        HS256: ``TITAN_JWT_SECRET`` or ``TITAN_JWT_SECRET_SSM`` (an SSM parameter name);
        RS256: ``TITAN_JWT_PUBLIC_KEY`` (PEM text), ``TITAN_JWT_JWKS`` (JWKS JSON text)
        and/or ``TITAN_JWT_JWKS_URL`` (fetched once per process).
        """
        env = os.environ if environ is None else environ
        secret = read_secret("TITAN_JWT_SECRET", env)
        keys: list[RSAPublicKey] = []
        if env.get("TITAN_JWT_PUBLIC_KEY"):
            keys.append(load_pem_public_key(env["TITAN_JWT_PUBLIC_KEY"]))
        if env.get("TITAN_JWT_JWKS"):
            keys.extend(load_jwks(env["TITAN_JWT_JWKS"]))
        if env.get("TITAN_JWT_JWKS_URL"):
            keys.extend(fetch_jwks(env["TITAN_JWT_JWKS_URL"]))
        try:
            leeway = int(env.get("TITAN_JWT_LEEWAY_SECONDS", "30"))
        except ValueError:
            raise ParameterError("TITAN_JWT_LEEWAY_SECONDS must be an integer") from None
        return cls(
            issuer=env.get("TITAN_JWT_ISSUER") or DEFAULT_ISSUER,
            audience=env.get("TITAN_JWT_AUDIENCE") or DEFAULT_AUDIENCE,
            hs256_secret=secret.encode() if secret else None,
            rsa_keys=tuple(keys),
            leeway_seconds=leeway,
        )


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

    try:
        response = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
    except Exception as exc:
        raise StoreError(
            f"could not read SSM parameter {parameter!r} (named by {name}_SSM): "
            f"{type(exc).__name__}",
            {"parameter": parameter},
        ) from None
    return str(response["Parameter"]["Value"])


# -- encodings ---------------------------------------------------------------------------


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url; raise :class:`TokenError` on any other alphabet."""
    try:
        raw = segment.encode("ascii")
    except UnicodeEncodeError:
        raise TokenError("token segment is not ASCII") from None
    if b"=" in raw or b"+" in raw or b"/" in raw:
        raise TokenError("token segment is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("token segment is not valid base64url") from None


def _b64url_uint(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


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
    """Parse an RSA public key in PEM: ``PUBLIC KEY`` (SPKI) or ``RSA PUBLIC KEY`` (PKCS#1)."""
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
    """RSA signing keys of a JWKS document (``{"keys": [{"kty": "RSA", "n", "e"}]}``)."""
    try:
        doc = json.loads(document) if isinstance(document, str) else document
        entries = doc["keys"]
    except (ValueError, KeyError, TypeError):
        raise ParameterError("JWKS is not a JSON object with a 'keys' list") from None
    keys = []
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
            continue
        try:
            n, e = _b64url_uint(entry["n"]), _b64url_uint(entry["e"])
        except (KeyError, TokenError, TypeError):
            raise ParameterError(f"JWKS key {entry.get('kid')!r} has an invalid n or e") from None
        keys.append(RSAPublicKey(n=n, e=e, kid=entry.get("kid")))
    if not keys:
        raise ParameterError("JWKS holds no RSA signing key")
    return keys


_JWKS_CACHE: dict[str, list[RSAPublicKey]] = {}


def fetch_jwks(url: str, timeout: float = 5.0) -> list[RSAPublicKey]:
    """Fetch and parse a JWKS document over HTTP(S); cached for the life of the process."""
    if url in _JWKS_CACHE:
        return _JWKS_CACHE[url]
    if not url.startswith(("https://", "http://")):
        raise ParameterError(f"TITAN_JWT_JWKS_URL must be an http(s) URL, got {url!r}")
    import urllib.request  # only JWKS URLs need it; keeps the cold import small

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except OSError as exc:
        raise StoreError(f"could not fetch JWKS from {url}: {exc}", {"url": url}) from None
    keys = load_jwks(body.decode("utf-8", errors="replace"))
    _JWKS_CACHE[url] = keys
    return keys


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


def _select_rsa_key(keys: tuple[RSAPublicKey, ...], kid: Any) -> RSAPublicKey:
    if kid is not None:
        for key in keys:
            if key.kid == kid:
                return key
        raise TokenError("token key id (kid) is not a known key", {"kid": str(kid)[:64]})
    if len(keys) == 1:
        return keys[0]
    raise TokenError("token has no key id (kid) and several keys are configured")


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"token claim {name!r} is not a number")
    return float(value)


def verify_token(token: str, settings: AuthSettings, now: float | None = None) -> Principal:
    """Verify a compact JWS token and return its principal.

    Parameters
    ----------
    token
        ``header.payload.signature`` (a leading ``Bearer `` is accepted).
    settings
        Keys, issuer, audience and leeway.
    now
        Current time in seconds since the epoch (``time.time()`` by default).

    Raises
    ------
    TokenError
        The token is malformed, uses a refused or unconfigured algorithm, its signature
        does not verify, or a claim (exp, nbf, iat, iss, aud, sub) is invalid.
    """
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError("token is not a compact JWS (header.payload.signature)")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(payload_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("token header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("token header and payload must be JSON objects")
    alg = header.get("alg")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    signature = b64url_decode(signature_b64)
    if alg == "HS256" and settings.hs256_secret is not None:
        expected = hmac.new(settings.hs256_secret, signing_input, hashlib.sha256).digest()
        valid = hmac.compare_digest(expected, signature)
    elif alg == "RS256" and settings.rsa_keys:
        key = _select_rsa_key(settings.rsa_keys, header.get("kid"))
        valid = rsa_pkcs1v15_sha256_verify(key, signing_input, signature)
    else:
        raise TokenError(f"token algorithm {str(alg)[:16]!r} is not accepted", {"alg": str(alg)})
    if not valid:
        raise TokenError("token signature does not verify")
    return _check_claims(claims, settings, time.time() if now is None else now)


def _check_claims(claims: dict[str, Any], settings: AuthSettings, now: float) -> Principal:
    leeway = settings.leeway_seconds
    exp = _numeric_claim(claims, "exp")
    if exp is None:
        raise TokenError("token has no expiry (exp)")
    if now > exp + leeway:
        raise TokenError("token has expired", {"exp": exp})
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
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise TokenError("token has no subject (sub)")
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
