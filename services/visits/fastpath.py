"""A shorter way through the framework for the agents' two hottest requests.

`GET /v1/me/route/{day}` and a new outcome (`POST /v1/me/visits/{id}/outcomes`) are answered
here, inside the observability middleware (same span, metrics and request id) but before
FastAPI's routing, dependency injection and parameter validation, which cost more CPU than
the request's own work. Only the plain case is taken: a token already verified (cache hit)
of role agent, within its rate, well-formed parameters, a JSON body that validates, and for
an outcome the one-call write answering. Anything else — or any error — is handed to the
FastAPI route untouched (the body replayed, the rate token given back) *before* anything is
written, so every answer, error and OpenAPI operation stays the route's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.visits import api, handlers
from services.visits.guards import CachingTokenVerifier, RateLimiter
from services.visits.idempotency import IDEMPOTENCY_KEY_PATTERN, fingerprint
from services.visits.models import OutcomeIn
from shared.auth import Principal
from shared.runtime import runtime_of

_ROUTE_PREFIX = "/v1/me/route/"
_VISITS_PREFIX, _OUTCOMES_SUFFIX = "/v1/me/visits/", "/outcomes"


@dataclass(frozen=True)
class _RouteName:
    """What the metrics' route label and the span name read from scope["route"] (the routes'
    own objects sit inside FastAPI's included routers)."""

    path: str


_ROUTE_NAME = _RouteName(api.agent_router.prefix + "/route/{day}")
_OUTCOME_NAME = _RouteName(api.agent_router.prefix + "/visits/{visit_id}/outcomes")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class FastPaths:
    """Pure ASGI; installed innermost of the app's middleware (`install`)."""

    def __init__(self, app: ASGIApp, visits_app: FastAPI) -> None:
        self.app = app
        self.visits_app = visits_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if scope["method"] == "GET" and path.startswith(_ROUTE_PREFIX):
                if await self._route(scope, receive, send):
                    return
            elif (
                scope["method"] == "POST"
                and path.startswith(_VISITS_PREFIX)
                and path.endswith(_OUTCOMES_SUFFIX)
            ):
                handled, receive = await self._outcome(scope, receive, send)
                if handled:
                    return
        await self.app(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> bool:
        day = scope["path"][len(_ROUTE_PREFIX) :]
        headers = _headers(scope)
        if day not in ("today", "tomorrow") or headers is None:
            return False
        tz = _tz(scope["query_string"])
        if_none_match = headers.get(b"if-none-match")
        if tz == "" or (if_none_match is not None and len(if_none_match) > 1000):
            return False
        agent = self._agent(headers)
        if agent is None:
            return False
        if not self._take(agent):
            return False
        try:
            inm = if_none_match.decode("latin-1") if if_none_match is not None else None
            response = await api.route_response(self.visits_app, agent.subject, day, tz, inm)
        except Exception:  # e.g. an unknown zone: the route answers it as it does
            self._limiter.give_back(agent.subject)
            return False
        scope["route"] = _ROUTE_NAME
        await response(scope, receive, send)
        return True

    async def _outcome(self, scope: Scope, receive: Receive, send: Send) -> tuple[bool, Receive]:
        path: str = scope["path"]
        raw_id = path[len(_VISITS_PREFIX) : -len(_OUTCOMES_SUFFIX)]
        headers = _headers(scope)
        if headers is None or not _UUID.fullmatch(raw_id) or not _plain_json(headers):
            return False, receive
        key = headers.get(b"idempotency-key")
        idempotency_key = key.decode("latin-1") if key is not None else None
        if idempotency_key is not None and not _KEY.match(idempotency_key):
            return False, receive
        agent = self._agent(headers)
        if agent is None:
            return False, receive
        messages, body = await _read_body(receive)
        receive = _replay(messages, receive)
        if body is None:
            return False, receive
        try:
            outcome = OutcomeIn.model_validate_json(body)
        except ValidationError:
            return False, receive
        otp = outcome.cash_confirmation is not None and outcome.cash_confirmation.method == "otp"
        if otp or not self._take(agent):
            return False, receive  # an otp try is counted once, by the route
        written = None
        try:
            written = await self._write_outcome(agent, UUID(raw_id), path, outcome, idempotency_key)
        finally:
            if written is None:
                self._limiter.give_back(agent.subject)
        if written is None:
            return False, receive
        scope["route"] = _OUTCOME_NAME
        await written.response()(scope, receive, send)
        return True, receive

    async def _write_outcome(
        self, agent: Principal, visit_id: UUID, path: str, body: OutcomeIn, key: str | None
    ) -> Any:
        """The one-call write, or None (nothing written) for the route to answer."""
        ctx: handlers.Visits = self.visits_app.state.visits
        fp = fingerprint("POST", path, body)
        try:
            async with runtime_of(self.visits_app).pool.acquire() as conn:
                return await handlers.record_outcome_at_once(
                    conn, ctx, agent.subject, visit_id, body, fp, key
                )
        except Exception:
            return None  # the route runs it again and answers the error as it does

    def _agent(self, headers: dict[bytes, bytes]) -> Principal | None:
        scheme, _, credentials = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            return None
        verifier: CachingTokenVerifier = self.visits_app.state.token_verifier
        principal = verifier.cached(credentials)
        return principal if principal is not None and principal.role == "agent" else None

    @property
    def _limiter(self) -> RateLimiter:
        limiter: RateLimiter = self.visits_app.state.rate_limiter
        return limiter

    def _take(self, agent: Principal) -> bool:
        return self._limiter.take(agent.subject) == 0.0


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The request's headers; None when one is repeated (the framework decides then)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in headers:
            return None
        headers[name] = value
    return headers


def _tz(query_string: bytes) -> str | None:
    """`tz` when it is the only query parameter (None without one; "" when not plain)."""
    if not query_string:
        return None
    params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "tz" or not 0 < len(params[0][1]) <= 64:
        return ""
    return params[0][1]


def _plain_json(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length", b"")
    return headers.get(b"content-type") == b"application/json" and length.isdigit()


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The whole body and the messages it came in (None when the client went away)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def install(app: FastAPI) -> None:
    """Innermost of the user middleware: inside the observability and body limits."""
    from starlette.middleware import Middleware

    app.user_middleware.append(Middleware(FastPaths, visits_app=app))
