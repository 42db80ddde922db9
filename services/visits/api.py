"""The field agents' app API and the supervisors' views.

An agent only ever sees and changes their own visits: any other visit id is 404, exactly
like one that does not exist. A supervisor sees the visits of the team named in their token.
Every write runs in one transaction with its outbox event and its Idempotency-Key row.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Query, Request, Response, status

from services.visits import handlers
from services.visits.guards import authorized
from services.visits.idempotency import IDEMPOTENCY_KEY_PATTERN, Written, fingerprint, idempotent
from services.visits.models import (
    OUTCOME_EXAMPLES,
    CashConfirmationIn,
    CashConfirmationView,
    CashDayView,
    CheckInIn,
    CheckInView,
    DepositIn,
    DepositView,
    Errors,
    FlaggedCheckInView,
    IsoDate,
    IsoDateTime,
    Message,
    OutcomeIn,
    OutcomeView,
    RouteView,
    TeamVisitView,
    VisitDetail,
    VisitView,
)
from shared.auth import Principal
from shared.errors import Invalid
from shared.runtime import runtime_of

FieldAgent = Annotated[Principal, Depends(authorized("agent"))]
Supervisor = Annotated[Principal, Depends(authorized("supervisor"))]
VisitId = Annotated[
    UUID, Path(description="one of the agent's visits", examples=["0b6f4a52-3a5e-4a6e-9d3e-2f6a7c1d9e01"])
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Same key and same request: the first response again. Same key, another request: 409.",
        examples=["3f0c2b1a-offline-queue-17"],
    ),
]

_COMMON: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "a body that is not UTF-8 text"},
    401: {"model": Message, "description": "no token, or a token that is expired, tampered or not for us"},
    403: {"model": Message, "description": "a token of another role"},
    413: {"model": Errors, "description": "request body too large"},
    422: {"model": Errors, "description": "invalid request: the field and the reason"},
    429: {"model": Errors, "description": "too many requests from this agent; see Retry-After"},
}
_NOT_YOURS: dict[int | str, dict[str, Any]] = {
    404: {"model": Errors, "description": "no such visit of yours"}
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    **_NOT_YOURS,
    409: {"model": Errors, "description": "id or Idempotency-Key already used for a different request"},
}

agent_router = APIRouter(prefix="/v1/me", tags=["agents"], responses=_COMMON)
team_router = APIRouter(prefix="/v1/team", tags=["supervisors"], responses=_COMMON)


def _ctx(request: Request) -> handlers.Visits:
    ctx: handlers.Visits = request.app.state.visits
    return ctx


def _pool(request: Request) -> Any:
    return runtime_of(request.app).pool


# --- the agent's day ---------------------------------------------------------------------------


@agent_router.get("/visits", response_model=list[VisitView], summary="My visits, in route order")
async def my_visits(
    request: Request,
    agent: FieldAgent,
    plan_date: Annotated[IsoDate | None, Query(description="one day only", examples=["2026-11-29"])] = None,
) -> list[VisitView]:
    async with _pool(request).acquire() as conn:
        return await handlers.my_visits(conn, agent.subject, plan_date)


@agent_router.get(
    "/route/{day}",
    response_model=RouteView,
    summary="Today's or tomorrow's route: ordered visits with windows, addresses and briefings",
    description="Send the last ETag in If-None-Match: an unchanged route is 304 with no body.",
    responses={
        200: {"headers": {"ETag": {"description": "of this route", "schema": {"type": "string"}}}},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
    },
)
async def my_route(
    request: Request,
    agent: FieldAgent,
    day: Annotated[Literal["today", "tomorrow"], Path(description="read in `tz`", examples=["today"])],
    tz: Annotated[
        str | None,
        Query(
            max_length=64,
            description="IANA zone of the device; default: the service's",
            examples=["Asia/Shanghai"],
        ),
    ] = None,
    if_none_match: Annotated[
        str | None,
        Header(alias="If-None-Match", max_length=1000, examples=['"3f1c0e5b8a9d4e2f7c6b5a4d3e2f1a0b"']),
    ] = None,
) -> Response:
    return await route_response(request.app, agent.subject, day, tz, if_none_match)


async def route_response(
    app: Any, agent_id: str, day: str, tz: str | None, if_none_match: str | None
) -> Response:
    """The route's answer once the caller is known (also served by `fastpath`)."""
    zone = tz or app.state.settings.route_time_zone
    plan_date = datetime.now(_zone(zone)).date() + timedelta(days=1 if day == "tomorrow" else 0)
    async with runtime_of(app).pool.acquire() as conn:
        body = await handlers.route(conn, agent_id, plan_date, zone)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("unknown time zone", "tz") from None


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison: any listed tag (W/ or not) equal to ours, or `*`."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@agent_router.get(
    "/visits/{visit_id}",
    response_model=VisitDetail,
    responses=_NOT_YOURS,
    summary="One of my visits, with my check-ins and outcomes",
)
async def my_visit(visit_id: VisitId, request: Request, agent: FieldAgent) -> VisitDetail:
    async with _pool(request).acquire() as conn:
        return await handlers.visit_detail(conn, agent.subject, visit_id)


# --- writes --------------------------------------------------------------------------------------


@agent_router.post(
    "/visits/{visit_id}/check-ins",
    response_model=CheckInView,
    status_code=status.HTTP_201_CREATED,
    responses={**_WRITE, 200: {"model": CheckInView, "description": "already recorded (replay)"}},
    summary="Check in at a visit: accepted, or refused with the reason (recorded either way)",
    description=(
        "Refused when the position is beyond the geofence around the address or the time is outside "
        "the customer's legal contact hours; a refusal is still 201 (the check-in is recorded) with "
        "`accepted: false`. X-Device-Clock is the device's clock when the request is sent: the server "
        "corrects device times by it, so check-ins queued offline keep their true time."
    ),
)
async def post_check_in(
    visit_id: VisitId,
    body: CheckInIn,
    request: Request,
    agent: FieldAgent,
    device_clock: Annotated[
        IsoDateTime,
        Header(
            alias="X-Device-Clock", description="ISO 8601 with offset", examples=["2026-11-29T10:02:05+08:00"]
        ),
    ],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    received_at = datetime.now(UTC)
    fp = fingerprint("POST", request.scope["path"], body)

    async def write(conn: Any) -> Written:
        view, created = await handlers.check_in(
            conn, _ctx(request), agent.subject, visit_id, body, device_clock, received_at, fp
        )
        return Written.of(view, created)

    return await _write(request, agent, idempotency_key, fp, write)


@agent_router.post(
    "/visits/{visit_id}/outcomes",
    response_model=OutcomeView,
    status_code=status.HTTP_201_CREATED,
    responses={**_WRITE, 200: {"model": OutcomeView, "description": "already recorded (replay)"}},
    summary="Record what happened at a visit",
    description=(
        "Typed outcomes, validated per type. Cash outcomes need the customer's confirmation and a receipt "
        "number this agent has not used before. Where the rule pack requires it (cn), the visit's "
        "recording reference is required. An outcome for a visit cancelled meanwhile is kept and flagged."
    ),
)
async def post_outcome(
    visit_id: VisitId,
    body: Annotated[OutcomeIn, Body(openapi_examples=OUTCOME_EXAMPLES)],
    request: Request,
    agent: FieldAgent,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    fp = fingerprint("POST", request.scope["path"], body)
    async with _pool(request).acquire() as conn:
        await handlers.check_cash_code(conn, _ctx(request), agent.subject, visit_id, body)
        written = await handlers.record_outcome_at_once(
            conn, _ctx(request), agent.subject, visit_id, body, fp, idempotency_key
        )
    if written is not None:
        return written.response()

    async def write(conn: Any) -> Written:
        view, created = await handlers.record_outcome(conn, _ctx(request), agent.subject, visit_id, body, fp)
        return Written.of(view, created)

    return await _write(request, agent, idempotency_key, fp, write)


@agent_router.post(
    "/visits/{visit_id}/cash-confirmations",
    response_model=CashConfirmationView,
    status_code=status.HTTP_201_CREATED,
    responses={**_WRITE, 200: {"model": CashConfirmationView, "description": "already requested (replay)"}},
    summary="Have the customer texted a one-time code confirming the cash they hand over",
    description=(
        "Follow-up's SMS channel sends the code to the phone it holds for the account. The customer "
        "reads it back if amount and receipt number are right; the cash outcome then carries "
        "`cash_confirmation: {method: otp, reference: <confirmation_id>, code}`. A code is valid for one "
        "outcome, until `expires_at`, for a few attempts. A resend of this request sends no new code."
    ),
)
async def post_cash_confirmation(
    visit_id: VisitId,
    body: CashConfirmationIn,
    request: Request,
    agent: FieldAgent,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    fp = fingerprint("POST", request.scope["path"], body)

    async def write(conn: Any) -> Written:
        view, created = await handlers.request_cash_confirmation(
            conn, _ctx(request), agent.subject, visit_id, body, fp
        )
        return Written.of(view, created)

    return await _write(request, agent, idempotency_key, fp, write)


@agent_router.post(
    "/cash-deposits",
    response_model=DepositView,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_COMMON,
        200: {"model": DepositView, "description": "already recorded (replay)"},
        409: {"model": Errors, "description": "id, bank slip or Idempotency-Key already used"},
    },
    summary="Record cash I paid in at the bank",
)
async def post_deposit(
    body: DepositIn, request: Request, agent: FieldAgent, idempotency_key: IdempotencyKey = None
) -> Response:
    fp = fingerprint("POST", request.scope["path"], body)

    async def write(conn: Any) -> Written:
        view, created = await handlers.record_deposit(conn, agent.subject, body, fp)
        return Written.of(view, created)

    return await _write(request, agent, idempotency_key, fp, write)


async def _write(request: Request, agent: Principal, key: str | None, fp: str, write: Any) -> Response:
    """One transaction: the Idempotency-Key row, the state change and its outbox event."""
    async with _pool(request).acquire() as conn, conn.transaction():
        written = await idempotent(conn, agent.subject, key, fp, lambda: write(conn))
    return written.response()


# --- supervisors ---------------------------------------------------------------------------------


def _team_of(supervisor: Principal) -> str:
    if not supervisor.team:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this supervisor token names no team")
    return supervisor.team


@team_router.get("/visits", response_model=list[TeamVisitView], summary="My team's visits on a day")
async def team_visits(
    request: Request, supervisor: Supervisor, plan_date: Annotated[IsoDate, Query(examples=["2026-11-29"])]
) -> list[TeamVisitView]:
    async with _pool(request).acquire() as conn:
        return await handlers.team_visits(conn, _team_of(supervisor), plan_date)


@team_router.get(
    "/check-in-flags",
    response_model=list[FlaggedCheckInView],
    summary="Check-ins of my team flagged as possibly spoofed, newest first",
    description="Mock location, poor accuracy, stale device time, impossible travel, replayed coordinates.",
)
async def team_check_in_flags(
    request: Request,
    supervisor: Supervisor,
    since: Annotated[
        IsoDateTime | None, Query(description="default: 7 days ago", examples=["2026-11-22T00:00:00+08:00"])
    ] = None,
    until: Annotated[
        IsoDateTime | None, Query(description="default: now", examples=["2026-11-30T00:00:00+08:00"])
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, examples=[100])] = 100,
) -> list[FlaggedCheckInView]:
    now = datetime.now(UTC)
    since, until = since or now - timedelta(days=7), until or now
    async with _pool(request).acquire() as conn:
        return await handlers.team_flags(conn, _team_of(supervisor), since, until, limit)


@team_router.get(
    "/cash",
    response_model=list[CashDayView],
    summary="Cash collected vs deposited per agent of my team and day",
)
async def team_cash(
    request: Request,
    supervisor: Supervisor,
    from_day: Annotated[IsoDate, Query(examples=["2026-11-23"])],
    to_day: Annotated[IsoDate, Query(examples=["2026-11-29"])],
) -> list[CashDayView]:
    async with _pool(request).acquire() as conn:
        return await handlers.team_cash(conn, _team_of(supervisor), from_day, to_day)
