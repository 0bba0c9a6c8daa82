"""JWT verification (pure Python) against tokens minted by PyJWT + cryptography."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures.hostile_tokens import claims_json, hostile_tokens, hs256_token, non_canonical
from fixtures.identity_provider import JwksServer, b64_uint, jwks_of, pem_private

from titan_lib.core import auth
from titan_lib.core.auth import AuthSettings, TokenError, verify_token
from titan_lib.exceptions import ParameterError, StoreError

SECRET = "s" * 48


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_public(key: rsa.RSAPrivateKey, fmt: str = "spki") -> str:
    pub_format = (
        serialization.PublicFormat.SubjectPublicKeyInfo
        if fmt == "spki"
        else serialization.PublicFormat.PKCS1
    )
    return key.public_key().public_bytes(serialization.Encoding.PEM, pub_format).decode()


def _claims(**overrides: object) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "iss": "titan",
        "aud": "titan-api",
        "iat": now,
        "exp": now + 300,
        "scope": "signals:read orders:write",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_hs256_token_is_verified_with_its_scopes() -> None:
    settings = AuthSettings(hs256_secret=SECRET.encode())
    principal = verify_token(jwt.encode(_claims(), SECRET, algorithm="HS256"), settings)
    assert principal.subject == "alice"
    assert principal.scopes == {"signals:read", "orders:write"}
    assert principal.has("orders:write") and not principal.has("admin")


@pytest.mark.parametrize("fmt", ["spki", "pkcs1"])
def test_rs256_token_is_verified_with_a_pem_public_key(rsa_key, fmt: str) -> None:
    settings = AuthSettings(rsa_keys=(auth.load_pem_public_key(_pem_public(rsa_key, fmt)),))
    token = jwt.encode(_claims(scp=["admin"], scope=None), pem_private(rsa_key), algorithm="RS256")
    principal = verify_token("Bearer " + token, settings)
    assert principal.scopes == {"admin"}


def test_rs256_with_jwks_selects_the_key_by_kid(rsa_key) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = auth.load_jwks(
        json.dumps({"keys": jwks_of(other, "k1")["keys"] + jwks_of(rsa_key, "k2")["keys"]})
    )
    settings = AuthSettings(rsa_keys=tuple(keys))
    good = jwt.encode(_claims(), pem_private(rsa_key), algorithm="RS256", headers={"kid": "k2"})
    assert verify_token(good, settings).subject == "alice"
    wrong_kid = jwt.encode(
        _claims(), pem_private(rsa_key), algorithm="RS256", headers={"kid": "k1"}
    )
    with pytest.raises(TokenError, match="signature"):
        verify_token(wrong_kid, settings)
    unknown = jwt.encode(_claims(), pem_private(rsa_key), algorithm="RS256", headers={"kid": "k9"})
    with pytest.raises(TokenError, match="kid"):
        verify_token(unknown, settings)


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"exp": None}, "expiry"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"iat": int(time.time()) + 3600}, "future"),
        ({"iss": "mallory"}, "issuer"),
        ({"aud": "other-api"}, "audience"),
        ({"sub": None}, "subject"),
        ({"exp": "tomorrow"}, "not a number"),
    ],
)
def test_invalid_claims_are_refused(claims: dict, match: str) -> None:
    settings = AuthSettings(hs256_secret=SECRET.encode())
    token = jwt.encode(_claims(**claims), SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match=match):
        verify_token(token, settings)


def test_audience_list_containing_ours_is_accepted() -> None:
    settings = AuthSettings(hs256_secret=SECRET.encode())
    token = jwt.encode(_claims(aud=["x", "titan-api"]), SECRET, algorithm="HS256")
    assert verify_token(token, settings).subject == "alice"


def _unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    enc = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
    sig = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    return f"{enc(header)}.{enc(claims)}.{sig}"


def test_alg_none_is_refused(rsa_key) -> None:
    settings = AuthSettings(
        hs256_secret=SECRET.encode(), rsa_keys=(auth.load_pem_public_key(_pem_public(rsa_key)),)
    )
    for alg in ("none", "None", "NONE", ""):
        with pytest.raises(TokenError, match="not accepted"):
            verify_token(_unsigned({"alg": alg, "typ": "JWT"}, _claims()), settings)


def test_hs_rs_confusion_is_refused(rsa_key) -> None:
    """An HS256 token keyed with the RSA public key must not verify as RS256 nor HS256."""
    public_pem = _pem_public(rsa_key)
    only_rsa = AuthSettings(rsa_keys=(auth.load_pem_public_key(public_pem),))
    header = {"alg": "HS256", "typ": "JWT"}
    unsigned = _unsigned(header, _claims())
    signing_input = unsigned.rsplit(".", 1)[0].encode()
    forged_sig = hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()
    forged = _unsigned(header, _claims(), forged_sig)
    with pytest.raises(TokenError, match="not accepted"):
        verify_token(forged, only_rsa)
    both = AuthSettings(hs256_secret=SECRET.encode(), rsa_keys=only_rsa.rsa_keys)
    with pytest.raises(TokenError, match="signature"):
        verify_token(forged, both)


def test_rs256_token_is_refused_when_only_hs256_is_configured(rsa_key) -> None:
    token = jwt.encode(_claims(), pem_private(rsa_key), algorithm="RS256")
    with pytest.raises(TokenError, match="not accepted"):
        verify_token(token, AuthSettings(hs256_secret=SECRET.encode()))


def test_tampered_payload_is_refused(rsa_key) -> None:
    hs = jwt.encode(_claims(), SECRET, algorithm="HS256")
    rs = jwt.encode(_claims(), pem_private(rsa_key), algorithm="RS256")
    rsa_settings = AuthSettings(rsa_keys=(auth.load_pem_public_key(_pem_public(rsa_key)),))
    for token, settings in ((hs, AuthSettings(hs256_secret=SECRET.encode())), (rs, rsa_settings)):
        header, payload, sig = token.split(".")
        claims = json.loads(auth.b64url_decode(payload))
        claims["scope"] = "admin"
        tampered_payload = (
            base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        )
        with pytest.raises(TokenError, match="signature"):
            verify_token(f"{header}.{tampered_payload}.{sig}", settings)
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        with pytest.raises(TokenError):
            verify_token(f"{header}.{payload}.{flipped}", settings)


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "!!!.@@@.###", "e30.e30.", "W10.W10.x"]
)
def test_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(token, AuthSettings(hs256_secret=SECRET.encode()))


def test_weak_or_missing_keys_are_refused_at_configuration() -> None:
    with pytest.raises(ParameterError, match="at least 32 bytes"):
        AuthSettings(hs256_secret=b"short")
    with pytest.raises(ParameterError, match="no token verification key"):
        AuthSettings()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ParameterError, match="2048"):
        AuthSettings(rsa_keys=(auth.load_pem_public_key(_pem_public(small)),))


def test_secret_is_read_from_ssm(moto_endpoint: str) -> None:
    import boto3

    boto3.client("ssm").put_parameter(
        Name="/titan/test/jwt-secret", Value=SECRET, Type="SecureString", Overwrite=True
    )
    settings = AuthSettings.from_env({"TITAN_JWT_SECRET_SSM": "/titan/test/jwt-secret"})
    assert settings.hs256_secret == SECRET.encode()
    assert SECRET not in repr(settings)
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    assert verify_token(token, settings).subject == "alice"
    with pytest.raises(StoreError, match="could not read SSM parameter"):
        AuthSettings.from_env({"TITAN_JWT_SECRET_SSM": "/titan/test/missing"})


@pytest.fixture()
def jwks_server():
    server = JwksServer()
    yield server
    server.close()


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rs256(key: rsa.RSAPrivateKey, kid: str) -> str:
    return jwt.encode(_claims(), pem_private(key), algorithm="RS256", headers={"kid": kid})


def test_jwks_is_fetched_from_a_url(rsa_key, jwks_server) -> None:
    jwks_server.document = jwks_of(rsa_key, "main")
    settings = AuthSettings.from_env({"TITAN_JWT_JWKS_URL": jwks_server.url})
    assert verify_token(_rs256(rsa_key, "main"), settings).subject == "alice"
    assert jwks_server.hits == 1


def test_jwks_rotation_is_picked_up_without_a_restart(rsa_key, jwks_server) -> None:
    """The identity provider rotates its key: a token naming the new kid triggers one
    refetch; made-up kids cannot make it fetch more than once per refresh interval."""
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.document = jwks_of(rsa_key, "2026-01")
    clock = ManualClock()
    cache = auth.JwksCache(jwks_server.url, ttl_seconds=600, min_refresh_seconds=30, clock=clock)
    settings = AuthSettings(jwks=cache)
    assert verify_token(_rs256(rsa_key, "2026-01"), settings).subject == "alice"
    assert jwks_server.hits == 1

    jwks_server.document = jwks_of(rotated, "2026-02")
    clock.now += 31
    assert verify_token(_rs256(rotated, "2026-02"), settings).subject == "alice"
    assert jwks_server.hits == 2
    with pytest.raises(TokenError, match="kid"):  # the old key is gone at the provider
        verify_token(_rs256(rsa_key, "2026-01"), settings)
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        with pytest.raises(TokenError, match="kid"):
            verify_token(_rs256(rotated, kid), settings)
    assert jwks_server.hits == 2  # within the refresh interval: no fetch at all

    clock.now += 31
    with pytest.raises(TokenError, match="kid"):
        verify_token(_rs256(rotated, "made-up-4"), settings)
    with pytest.raises(TokenError, match="kid"):
        verify_token(_rs256(rotated, "made-up-5"), settings)
    assert jwks_server.hits == 3  # one fetch per interval, however many unknown kids


def test_jwks_is_refetched_after_its_ttl_and_kept_when_the_provider_fails(
    rsa_key, jwks_server
) -> None:
    jwks_server.document = jwks_of(rsa_key, "k1")
    clock = ManualClock()
    cache = auth.JwksCache(jwks_server.url, ttl_seconds=600, min_refresh_seconds=30, clock=clock)
    settings = AuthSettings(jwks=cache)
    token = _rs256(rsa_key, "k1")
    clock.now += 599
    verify_token(token, settings)
    assert jwks_server.hits == 1  # fresh: served from the cache
    clock.now += 2
    verify_token(token, settings)
    assert jwks_server.hits == 2  # stale: refetched

    jwks_server.status = 500
    clock.now += 601
    assert verify_token(token, settings).subject == "alice"  # known keys keep working
    assert jwks_server.hits == 3
    verify_token(token, settings)
    assert jwks_server.hits == 3  # the failed fetch is not retried at once
    jwks_server.status = 200
    clock.now += 31
    verify_token(token, settings)
    assert jwks_server.hits == 4


def test_an_identity_provider_down_at_start_is_retried_at_the_refresh_interval(
    rsa_key, jwks_server
) -> None:
    jwks_server.document = jwks_of(rsa_key, "k1")
    jwks_server.status = 503
    clock = ManualClock()
    cache = auth.JwksCache(jwks_server.url, ttl_seconds=600, min_refresh_seconds=30, clock=clock)
    settings = AuthSettings(jwks=cache)
    token = _rs256(rsa_key, "k1")
    for _ in range(3):
        with pytest.raises(StoreError, match="could not fetch JWKS"):
            verify_token(token, settings)
    assert jwks_server.hits == 1
    jwks_server.status = 200
    clock.now += 30
    assert verify_token(token, settings).subject == "alice"
    assert jwks_server.hits == 2


def test_a_jwks_with_weak_keys_is_a_configuration_error(jwks_server) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwks_server.document = jwks_of(small, "small")
    with pytest.raises(ParameterError, match=r"^TITAN_JWT_JWKS_URL: RSA key 'small' has a 1024"):
        AuthSettings.from_env({"TITAN_JWT_JWKS_URL": jwks_server.url})


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/jwks.json",
        "http://localhost/jwks.json",
        "http://127.0.0.2/jwks.json",
        "ftp://127.0.0.1/jwks.json",
        "file:///etc/passwd",
        "https:///jwks.json",
        "jwks.json",
    ],
)
def test_jwks_url_must_be_https(url: str) -> None:
    with pytest.raises(ParameterError, match="https://"):
        AuthSettings.from_env({"TITAN_JWT_JWKS_URL": url})


def test_jwks_redirect_to_plain_http_is_refused(rsa_key, jwks_server) -> None:
    jwks_server.status = 302
    jwks_server.location = "http://example.com/jwks.json"
    with pytest.raises(ParameterError, match="https://"):
        auth.fetch_jwks(jwks_server.url)
    assert jwks_server.hits == 1


def _jwk_of(n: int, e: int, kid: str = "weak") -> dict:
    return {"keys": [{"kty": "RSA", "kid": kid, "n": b64_uint(n), "e": b64_uint(e)}]}


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 128:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _pkcs1_pem(n: int, e: int) -> str:
    body = _der_integer(n) + _der_integer(e)
    der = b"\x30" + _der_length(len(body)) + body
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join(["-----BEGIN RSA PUBLIC KEY-----", *lines, "-----END RSA PUBLIC KEY-----"])


@pytest.mark.parametrize(
    ("e", "match"),
    [(1, "exponent 1;"), (2, "exponent 2;"), (0, "exponent 0;"), (65536, "exponent 65536;")],
)
def test_weak_rsa_exponents_are_refused_at_load(rsa_key, e: int, match: str) -> None:
    n = rsa_key.public_key().public_numbers().n
    with pytest.raises(ParameterError, match=match):
        auth.load_jwks(_jwk_of(n, e))
    with pytest.raises(ParameterError, match=match):
        auth.load_pem_public_key(_pkcs1_pem(n, e))
    with pytest.raises(ParameterError, match=f"^TITAN_JWT_JWKS: RSA key 'weak' has .*{match}"):
        AuthSettings.from_env({"TITAN_JWT_JWKS": json.dumps(_jwk_of(n, e))})


def test_small_even_or_huge_rsa_moduli_are_refused_at_load(rsa_key) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ParameterError, match="1024-bit modulus"):
        auth.load_jwks(jwks_of(small, "small"))
    with pytest.raises(ParameterError, match="1024-bit modulus"):
        auth.load_pem_public_key(_pkcs1_pem(small.public_key().public_numbers().n, 65537))
    n = rsa_key.public_key().public_numbers().n
    with pytest.raises(ParameterError, match="odd modulus"):
        auth.load_jwks(_jwk_of(n + 1, 65537))
    with pytest.raises(ParameterError, match="16384-bit modulus"):
        auth.load_jwks(_jwk_of(2**16383 + 1, 65537))
    with pytest.raises(ParameterError, match="public exponent"):
        auth.load_jwks(_jwk_of(n, n + 2))
    with pytest.raises(ParameterError, match="257-bit public exponent"):
        auth.load_jwks(_jwk_of(n, 2**256 + 1))


def test_exponent_three_keys_load_and_verify() -> None:
    """e = 3 is weak only with a lax padding check; this verifier compares the whole block."""
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    settings = AuthSettings(rsa_keys=(auth.load_pem_public_key(_pem_public(key)),))
    token = jwt.encode(_claims(), pem_private(key), algorithm="RS256")
    assert verify_token(token, settings).subject == "alice"


@pytest.mark.parametrize("name", sorted(hostile_tokens(SECRET)))
def test_hostile_tokens_are_refused_with_a_token_error(name: str) -> None:
    settings = AuthSettings(hs256_secret=SECRET.encode())
    now = int(time.time())
    header = '{"alg": "HS256", "typ": "JWT"}'
    assert verify_token(hs256_token(header, claims_json(now), SECRET), settings, now=now)
    with pytest.raises(TokenError):
        verify_token(hostile_tokens(SECRET, now)[name], settings, now=now)


def test_the_payload_is_parsed_only_after_the_signature_holds() -> None:
    settings = AuthSettings(hs256_secret=SECRET.encode())
    header = '{"alg": "HS256"}'
    forged = hs256_token(header, "[" * 3000 + "]" * 3000, "w" * 48)
    with pytest.raises(TokenError, match="signature does not verify"):
        verify_token(forged, settings)
    signed = hs256_token(header, "[" * 3000 + "]" * 3000, SECRET)
    with pytest.raises(TokenError, match="payload: JSON is nested"):
        verify_token(signed, settings)
    with pytest.raises(TokenError, match="payload: not JSON"):
        verify_token(hs256_token(header, "{not json", SECRET), settings)


def test_one_token_has_one_spelling() -> None:
    settings = AuthSettings(hs256_secret=SECRET.encode())
    token = hs256_token('{"alg": "HS256"}', claims_json(), SECRET)
    head, payload, signature = token.split(".")
    assert base64.urlsafe_b64decode(non_canonical(signature) + "=") == base64.urlsafe_b64decode(
        signature + "="
    )
    assert verify_token(token, settings).subject == "mallory"
    with pytest.raises(TokenError, match="canonical"):
        verify_token(f"{head}.{payload}.{non_canonical(signature)}", settings)


def test_exp_further_than_the_maximum_lifetime_is_refused() -> None:
    now = int(time.time())
    settings = AuthSettings(hs256_secret=SECRET.encode(), max_lifetime_seconds=3600)
    header = '{"alg": "HS256"}'
    ok = hs256_token(header, claims_json(now, exp=str(now + 3600)), SECRET)
    assert verify_token(ok, settings, now=now)
    far = hs256_token(header, claims_json(now, exp=str(now + 3600 + 31)), SECRET)
    with pytest.raises(TokenError, match="more than 3600 seconds ahead"):
        verify_token(far, settings, now=now)


def test_challenge_header_cannot_be_broken_by_a_message() -> None:
    from titan_lib.core.http_errors import UnauthorizedError, bearer_challenge

    header = UnauthorizedError('bad "kid"\r\nSet-Cookie: x=1 \\ é').headers()["WWW-Authenticate"]
    assert header == (
        'Bearer realm="titan", error="invalid_token", '
        'error_description="bad ?kid???Set-Cookie: x=1 ? ?"'
    )
    header.encode("ascii")
    assert UnauthorizedError("no token", bearer_error=None).headers() == {
        "WWW-Authenticate": 'Bearer realm="titan"'
    }
    assert bearer_challenge("invalid_token", "x" * 500).count("x") == 200


def test_token_cli_mints_tokens_the_verifier_accepts(monkeypatch, rsa_key, tmp_path) -> None:
    from titan_lib.cli.token import issue_token

    monkeypatch.setenv("TITAN_JWT_SECRET", SECRET)
    token = issue_token(["signals:read,admin"], 300, subject="bob")
    principal = verify_token(token, AuthSettings.from_env())
    assert principal.subject == "bob" and principal.scopes == {"signals:read", "admin"}
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem_private(rsa_key))
    rs = issue_token(["orders:write"], 300, algorithm="RS256", private_key=key_file, kid="k")
    settings = AuthSettings(rsa_keys=(auth.load_pem_public_key(_pem_public(rsa_key), kid="k"),))
    assert verify_token(rs, settings).scopes == {"orders:write"}
    expired = issue_token(["admin"], 300, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        verify_token(expired, AuthSettings.from_env())
    with pytest.raises(ParameterError, match="unknown scope"):
        issue_token(["root"], 300)


def test_token_cli_lifetime_outlasts_the_authorizer_cache(monkeypatch) -> None:
    """A cached authorizer decision may outlive a token's exp by the cache TTL: the CLI
    never mints a token shorter than five times that TTL."""
    from titan_lib.cli.token import issue_token

    monkeypatch.setenv("TITAN_JWT_SECRET", SECRET)
    assert auth.AUTHORIZER_CACHE_SECONDS * 5 <= auth.MIN_TOKEN_LIFETIME_SECONDS
    for too_short in (1, 60, auth.MIN_TOKEN_LIFETIME_SECONDS - 1):
        with pytest.raises(ParameterError, match="5 minutes to 30 days"):
            issue_token(["admin"], too_short)
    with pytest.raises(ParameterError, match="5 minutes to 30 days"):
        issue_token(["admin"], auth.MAX_TOKEN_LIFETIME_SECONDS + 1)
    longest = issue_token(["admin"], auth.MAX_TOKEN_LIFETIME_SECONDS)
    assert verify_token(longest, AuthSettings.from_env()).has("admin")
