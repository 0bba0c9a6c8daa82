"""JWT verification (pure Python) against tokens minted by PyJWT + cryptography."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from titan_lib.core import auth
from titan_lib.core.auth import AuthSettings, TokenError, verify_token

SECRET = "s" * 48


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_private(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_public(key: rsa.RSAPrivateKey, fmt: str = "spki") -> str:
    pub_format = (
        serialization.PublicFormat.SubjectPublicKeyInfo
        if fmt == "spki"
        else serialization.PublicFormat.PKCS1
    )
    return key.public_key().public_bytes(serialization.Encoding.PEM, pub_format).decode()


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwks(key: rsa.RSAPrivateKey, kid: str) -> dict:
    numbers = key.public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "alg": "RS256",
                "n": _b64(numbers.n),
                "e": _b64(numbers.e),
            }
        ]
    }


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
    token = jwt.encode(_claims(scp=["admin"], scope=None), _pem_private(rsa_key), algorithm="RS256")
    principal = verify_token("Bearer " + token, settings)
    assert principal.scopes == {"admin"}


def test_rs256_with_jwks_selects_the_key_by_kid(rsa_key) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = auth.load_jwks(
        json.dumps({"keys": _jwks(other, "k1")["keys"] + _jwks(rsa_key, "k2")["keys"]})
    )
    settings = AuthSettings(rsa_keys=tuple(keys))
    good = jwt.encode(_claims(), _pem_private(rsa_key), algorithm="RS256", headers={"kid": "k2"})
    assert verify_token(good, settings).subject == "alice"
    wrong_kid = jwt.encode(
        _claims(), _pem_private(rsa_key), algorithm="RS256", headers={"kid": "k1"}
    )
    with pytest.raises(TokenError, match="signature"):
        verify_token(wrong_kid, settings)
    unknown = jwt.encode(_claims(), _pem_private(rsa_key), algorithm="RS256", headers={"kid": "k9"})
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
    token = jwt.encode(_claims(), _pem_private(rsa_key), algorithm="RS256")
    with pytest.raises(TokenError, match="not accepted"):
        verify_token(token, AuthSettings(hs256_secret=SECRET.encode()))


def test_tampered_payload_is_refused(rsa_key) -> None:
    hs = jwt.encode(_claims(), SECRET, algorithm="HS256")
    rs = jwt.encode(_claims(), _pem_private(rsa_key), algorithm="RS256")
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
    with pytest.raises(Exception, match="at least 32 bytes"):
        AuthSettings(hs256_secret=b"short")
    with pytest.raises(Exception, match="no token verification key"):
        AuthSettings()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(Exception, match="2048"):
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
    with pytest.raises(Exception, match="could not read SSM parameter"):
        AuthSettings.from_env({"TITAN_JWT_SECRET_SSM": "/titan/test/missing"})


def test_jwks_is_fetched_from_a_url(rsa_key) -> None:
    body = json.dumps(_jwks(rsa_key, "main")).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        settings = AuthSettings.from_env({"TITAN_JWT_JWKS_URL": url})
        token = jwt.encode(
            _claims(), _pem_private(rsa_key), algorithm="RS256", headers={"kid": "main"}
        )
        assert verify_token(token, settings).subject == "alice"
    finally:
        server.shutdown()


def test_token_cli_mints_tokens_the_verifier_accepts(monkeypatch, rsa_key, tmp_path) -> None:
    from titan_lib.cli.token import issue_token

    monkeypatch.setenv("TITAN_JWT_SECRET", SECRET)
    token = issue_token(["signals:read,admin"], 60, subject="bob")
    principal = verify_token(token, AuthSettings.from_env())
    assert principal.subject == "bob" and principal.scopes == {"signals:read", "admin"}
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(_pem_private(rsa_key))
    rs = issue_token(["orders:write"], 60, algorithm="RS256", private_key=key_file, kid="k")
    settings = AuthSettings(rsa_keys=(auth.load_pem_public_key(_pem_public(rsa_key), kid="k"),))
    assert verify_token(rs, settings).scopes == {"orders:write"}
    expired = issue_token(["admin"], 60, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        verify_token(expired, AuthSettings.from_env())
    with pytest.raises(Exception, match="unknown scope"):
        issue_token(["root"], 60)
