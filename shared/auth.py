"""Signed JWTs (EdDSA/RS256) for every HTTP API, and role checks as FastAPI dependencies.

Tokens name the subject (`sub`), a role and, for agents, their team. Only asymmetric
algorithms are accepted, so `alg: none` and HMAC-with-the-public-key tricks fail.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ALGORITHMS = ["EdDSA", "RS256"]
ROLES = ("agent", "supervisor", "ops", "auditor", "care", "core_banking", "service", "dialer")


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: str
    team: str | None = None


class TokenVerifier:
    def __init__(self, public_key_pem: str, audience: str, issuer: str) -> None:
        self._key = serialization.load_pem_public_key(public_key_pem.encode())
        self._audience = audience
        self._issuer = issuer

    def verify(self, token: str) -> Principal:
        claims = jwt.decode(
            token,
            self._key,  # type: ignore[arg-type]
            algorithms=ALGORITHMS,
            audience=self._audience,
            issuer=self._issuer,
            options={"require": ["exp", "sub", "aud", "iss"]},
        )
        role = claims.get("role")
        if role not in ROLES:
            raise jwt.InvalidTokenError("unknown role")
        return Principal(subject=str(claims["sub"]), role=role, team=claims.get("team"))


_bearer = HTTPBearer(auto_error=False)


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", {"WWW-Authenticate": "Bearer"}
        )
    try:
        return _verifier(request).verify(credentials.credentials)
    except jwt.PyJWTError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"invalid token: {type(exc).__name__}",
            {"WWW-Authenticate": "Bearer"},
        ) from None


def require_role(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this")
        return principal

    return dependency


# --- the development issuer ----------------------------------------------------------


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Write an Ed25519 key pair for local use (dev stack and tests), once."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "jwt-private.pem", directory / "jwt-public.pem"
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_path, public_path


def issue_token(
    private_key_pem: str,
    subject: str,
    role: str,
    audience: str,
    issuer: str,
    team: str | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "exp": now + ttl,
    }
    if team:
        claims["team"] = team
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]
