"""`titan token issue`: mint development bearer tokens for the HTTP API.

HS256 tokens are signed with ``TITAN_JWT_SECRET`` (or the SSM parameter named by
``TITAN_JWT_SECRET_SSM``); RS256 tokens with a PEM private key file. Issuer and audience
default to ``TITAN_JWT_ISSUER`` / ``TITAN_JWT_AUDIENCE`` as the API verifies them.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Literal

import typer

from titan_lib.exceptions import ParameterError

TokenAlgorithm = Literal["HS256", "RS256"]


def issue_token(
    scopes: list[str],
    ttl_seconds: int,
    subject: str = "dev",
    algorithm: TokenAlgorithm = "HS256",
    private_key: Path | None = None,
    kid: str | None = None,
    now: float | None = None,
) -> str:
    """A signed JWT for ``subject`` with ``scopes``, valid for ``ttl_seconds`` from now.

    Raises
    ------
    ParameterError
        Unknown scope, a TTL outside 5 minutes to 30 days (see
        :data:`~titan_lib.core.auth.MIN_TOKEN_LIFETIME_SECONDS`), no secret (HS256) or no
        key file (RS256).
    """
    import jwt

    from titan_lib.core.auth import (
        DEFAULT_AUDIENCE,
        DEFAULT_ISSUER,
        MAX_TOKEN_LIFETIME_SECONDS,
        MIN_TOKEN_LIFETIME_SECONDS,
        parse_scopes,
        read_secret,
    )

    granted = parse_scopes(scopes)
    if not MIN_TOKEN_LIFETIME_SECONDS <= ttl_seconds <= MAX_TOKEN_LIFETIME_SECONDS:
        raise ParameterError(
            f"--ttl must be {MIN_TOKEN_LIFETIME_SECONDS // 60} minutes to "
            f"{MAX_TOKEN_LIFETIME_SECONDS // 86400} days, got {ttl_seconds}s (the API "
            "caches a verified token for a while, so shorter tokens would outlive their exp)"
        )
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "iss": os.environ.get("TITAN_JWT_ISSUER") or DEFAULT_ISSUER,
        "aud": os.environ.get("TITAN_JWT_AUDIENCE") or DEFAULT_AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(granted),
    }
    headers = {"kid": kid} if kid else None
    if algorithm == "HS256":
        secret = read_secret("TITAN_JWT_SECRET")
        if not secret:
            raise ParameterError("set TITAN_JWT_SECRET (or TITAN_JWT_SECRET_SSM) to sign HS256")
        return jwt.encode(claims, secret, algorithm="HS256", headers=headers)
    if algorithm == "RS256":
        if private_key is None or not private_key.is_file():
            raise ParameterError("RS256 needs --private-key pointing to a PEM private key file")
        return jwt.encode(claims, private_key.read_text(), algorithm="RS256", headers=headers)
    raise ParameterError(f"--alg must be HS256 or RS256, got {algorithm!r}")


def _ttl_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ParameterError(
            f"--ttl must be seconds or a number with s/m/h/d, got {text!r}"
        ) from None


token_app = typer.Typer(help="Development bearer tokens for the HTTP API.")


@token_app.command("issue")
def issue_command(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="signals:read, research:read, orders:write, jobs:write or admin (repeatable).",
        ),
    ],
    ttl: Annotated[str, typer.Option(help="Lifetime, 5m to 30d: seconds or 30m, 12h, 7d.")] = "1h",
    sub: Annotated[str, typer.Option(help="Subject (the principal).")] = "dev",
    alg: Annotated[str, typer.Option(help="HS256 (secret) or RS256 (private key).")] = "HS256",
    private_key: Annotated[
        Path | None, typer.Option(help="PEM private key file for RS256.")
    ] = None,
    kid: Annotated[str | None, typer.Option(help="Key id header (JWKS key selection).")] = None,
) -> None:
    """Print a signed JWT with the given scopes."""
    if alg not in ("HS256", "RS256"):
        raise ParameterError(f"--alg must be HS256 or RS256, got {alg!r}")
    typer.echo(
        issue_token(scope, _ttl_seconds(ttl), sub, alg, private_key, kid)  # type: ignore[arg-type]
    )


def register(app: typer.Typer) -> None:
    """Add the ``token`` command group."""
    app.add_typer(token_app, name="token")
