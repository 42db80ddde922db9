"""What stands in front of the handlers: token cache, per-agent rate limits, body size, errors.

The rate limiter is an in-process token bucket per agent: behind several replicas each
replica keeps its own buckets, so an agent may reach N x the limit across N replicas
(the load balancer spreads an agent's requests; the limit is a guard against a runaway
app or a stolen token, not an accounting quota).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Principal, TokenVerifier

# --- verified tokens -------------------------------------------------------------------


class CachingTokenVerifier:
    """Remembers tokens it has verified until they expire.

    Verifying an EdDSA signature costs ~200 µs; an agent's app sends the same token for
    hours. The cache key is the whole token (signature included), so only the exact bytes
    that passed verification hit; an entry is dropped at the token's `exp`.
    """

    def __init__(self, inner: TokenVerifier, size: int) -> None:
        self._inner = inner
        self._size = size
        self._cache: dict[str, tuple[Principal, float]] = {}

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before and not expired, else None (no verification)."""
        hit = self._cache.get(token)
        return hit[0] if hit is not None and time.time() < hit[1] else None

    def verify(self, token: str) -> Principal:
        hit = self._cache.get(token)
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        principal = self._inner.verify(token)
        if self._size:
            expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
            if len(self._cache) >= self._size:
                self._cache.pop(next(iter(self._cache)))  # the oldest entry
            self._cache[token] = (principal, expires)
        return principal


# --- rate limits -----------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per key: `rate` per second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed (one token taken), else the seconds until a token is available."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def give_back(self, key: str) -> None:
        """Return the token a request took when another path will answer it (and take it again)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self._burst, bucket.tokens + 1.0)

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        full_after = self._burst / self._rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}


def authorized(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """One dependency for the whole gate: bearer token, role, then the caller's rate.

    The same checks as shared.auth's `require_role`, folded into one dependency: FastAPI's
    dependency resolution costs per dependant, and this runs on every request of the agents'
    app (the bearer scheme is declared in the OpenAPI document by `install_bearer_openapi`).
    """

    async def dependency(request: Request) -> Principal:
        principal = _authenticate(request)
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this")
        limiter: RateLimiter = request.app.state.rate_limiter
        wait = limiter.take(principal.subject)
        if wait > 0:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                [{"reason": "too many requests from this agent; retry later"}],
                {"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        return principal

    return dependency


def _authenticate(request: Request) -> Principal:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", _CHALLENGE)
    verifier: CachingTokenVerifier = request.app.state.token_verifier
    try:
        return verifier.verify(credentials)
    except jwt.PyJWTError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"invalid token: {type(exc).__name__}", _CHALLENGE
        ) from None


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def install_bearer_openapi(app: FastAPI, prefix: str = "/v1/") -> None:
    """Declare the bearer scheme on every operation under `prefix` in the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["bearer"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        for path, operations in document["paths"].items():
            if path.startswith(prefix):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# --- request bodies --------------------------------------------------------------------


class BodyLimit:
    """Pure ASGI: 413 for a body above `max_bytes`, by Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = JSONResponse({"detail": self._detail()}, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException is what FastAPI lets through its body parsing untouched.
                    raise HTTPException(413, self._detail())
            return message

        return limited

    def _detail(self) -> list[dict[str, str]]:
        return [{"reason": f"request body larger than {self.max_bytes} bytes"}]


# --- validation errors -----------------------------------------------------------------


def install_validation_errors(app: FastAPI) -> None:
    """422 names the field and the reason, and never echoes the input back (it may be personal)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_item(error) for error in exc.errors()]}, status_code=422)


def _item(error: Mapping[str, Any]) -> dict[str, str]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    return {"field": ".".join(loc) or "body", "reason": str(error.get("msg", "invalid"))}
