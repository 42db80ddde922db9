"""The console's HTTP API and page. Everything under /v1/ops needs the `ops` role.

The page itself (`GET /`) is static and holds no data; it asks for a token and sends it as
a bearer header. The event stream also takes `?access_token=` — for EventSource and curl,
which cannot set headers — but only from a loopback client (docs/ops.md explains why).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import jwt
import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from services.ops.broker import ReplayError
from services.ops.console import Console
from services.ops.feeds import EventFilter, LiveEvent
from shared.auth import Principal, TokenVerifier, require_role
from shared.events.payloads import PAYLOAD_TYPES
from shared.events.topics import ALL_TOPICS

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
GROUP_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"

router = APIRouter(prefix="/v1/ops", tags=["ops"])
page = APIRouter(tags=["page"])
Operator = Annotated[Principal, Depends(require_role("ops"))]
Group = Annotated[str, PathParam(pattern=GROUP_PATTERN)]


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def stream_viewer(request: Request, access_token: str | None = None) -> Principal:
    """Bearer header, or `?access_token=` from loopback; the `ops` role either way."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if token is None and access_token:
        if not (request.app.state.settings.ops_allow_query_token and _loopback(request)):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "query-string tokens are accepted from loopback only"
            )
        token = access_token
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", {"WWW-Authenticate": "Bearer"}
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(token)
    except jwt.PyJWTError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid token: {type(exc).__name__}") from None
    if principal.role != "ops":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this")
    return principal


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@page.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    html = await asyncio.to_thread((STATIC / "index.html").read_text, "utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/whoami", summary="Who the token says you are")
async def whoami(operator: Operator) -> dict[str, str]:
    return {"subject": operator.subject, "role": operator.role}


@router.get("/catalog", summary="Topics and event types, for the filters")
async def catalog(_: Operator) -> dict[str, Any]:
    return {
        "topics": list(ALL_TOPICS),
        "types": {name: model.topic for name, model in sorted(PAYLOAD_TYPES.items())},
    }


@router.get("/status", summary="The console's own feeds")
async def console_status(request: Request, _: Operator) -> dict[str, Any]:
    return console_of(request).status()


@router.get("/events", summary="The newest events seen since the console started")
async def recent_events(
    request: Request,
    _: Operator,
    topic: str | None = None,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    account: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    events = console_of(request).live.latest(EventFilter(topic, event_type, account), limit)
    return [e.to_json() for e in events]


@router.get(
    "/events/stream",
    summary="Live events as server-sent events (plus `rates` every 2 s)",
    response_class=StreamingResponse,
)
async def event_stream(
    request: Request,
    viewer: Annotated[Principal, Depends(stream_viewer)],
    topic: str | None = None,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    account: str | None = None,
    backlog: Annotated[int, Query(ge=0, le=500)] = 50,
) -> StreamingResponse:
    console = console_of(request)
    event_filter = EventFilter(topic or None, event_type or None, account or None)
    log.info("event stream opened", extra={"viewer": viewer.subject, "topic": topic, "type": event_type})
    return StreamingResponse(
        _sse(console, event_filter, backlog),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(console: Console, event_filter: EventFilter, backlog: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    with console.live.subscribe(event_filter) as subscription:
        yield b"retry: 3000\n\n"
        yield _sse_message("hello", console.status())
        for event in console.live.latest(event_filter, backlog):
            yield _sse_event(event)
        next_rates = 0.0
        reported_drops = 0
        while not console.stopping.is_set():
            if loop.time() >= next_rates:
                yield _sse_message("rates", console.live.rates.snapshot(console.live.topics))
                next_rates = loop.time() + 2.0
            if subscription.dropped != reported_drops:
                reported_drops = subscription.dropped
                yield _sse_message("dropped", {"dropped": reported_drops})
            try:
                event = await asyncio.wait_for(subscription.queue.get(), max(next_rates - loop.time(), 0.05))
            except TimeoutError:
                continue
            yield _sse_event(event)


def _sse_event(event: LiveEvent) -> bytes:
    return b"event: event\ndata: " + orjson.dumps(event.to_json()) + b"\n\n"


def _sse_message(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


@router.get("/rates", summary="Records per second per topic")
async def rates(request: Request, _: Operator) -> dict[str, Any]:
    live = console_of(request).live
    return live.rates.snapshot(live.topics)


@router.get("/lag", summary="Consumer-group lag per partition, from the broker")
async def lag(
    request: Request, _: Operator, group: Annotated[str | None, Query(pattern=GROUP_PATTERN)] = None
) -> list[dict[str, Any]]:
    groups = await console_of(request).lag()
    return [g.to_json() for g in groups if group is None or g.group == group]


@router.get("/services", summary="Each service's outbox backlog and counters, from its /metrics")
async def services(request: Request, _: Operator) -> list[dict[str, Any]]:
    return [s.to_json() for s in await console_of(request).services()]


@router.get("/funnel", summary="The day's funnel and recovery amounts (the console's projection)")
async def funnel(request: Request, _: Operator, day: date | None = None) -> dict[str, Any]:
    console = console_of(request)
    return {**console.projection.funnel(day), "caught_up": console.projection_feed.caught_up}


@router.get("/routes", summary="Stops per agent for a plan date (default: today, else the nearest)")
async def routes(request: Request, _: Operator, plan_date: date | None = None) -> dict[str, Any]:
    projection = console_of(request).projection
    shown = plan_date or projection.default_plan_date()
    return {
        **projection.routes(shown),
        "today": projection.today().isoformat(),
        "plan_dates": [d.isoformat() for d in projection.plan_dates()],
    }


@router.get("/dlq", summary="Dead-letter topics and their depth")
async def dlq_topics(request: Request, _: Operator) -> list[dict[str, Any]]:
    return [t.to_json() for t in await console_of(request).dlq()]


@router.get("/dlq/{group}/messages", summary="A group's newest dead letters (no payloads)")
async def dead_letters(
    request: Request,
    _: Operator,
    group: Group,
    partition: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    letters = await console_of(request).broker.dead_letters(group, partition, limit=limit)
    return [d.summary() for d in reversed(letters)]


@router.get(
    "/dlq/{group}/messages/{partition}/{offset}", summary="One dead letter: headers, redacted payload"
)
async def inspect_dead_letter(
    request: Request,
    _: Operator,
    group: Group,
    partition: Annotated[int, PathParam(ge=0)],
    offset: Annotated[int, PathParam(ge=0)],
) -> dict[str, Any]:
    letter = await console_of(request).broker.dead_letter(group, partition, offset)
    if letter is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such dead letter")
    return letter.inspect()


class ReplayRequest(BaseModel):
    partition: int | None = Field(default=None, ge=0, description="DLQ partition (optional if it has one)")
    from_offset: int = Field(ge=0)
    to_offset: int = Field(ge=0, description="inclusive")


@router.post("/dlq/{group}/replay", summary="Republish dead letters to their original topic")
async def replay(request: Request, operator: Operator, group: Group, body: ReplayRequest) -> dict[str, Any]:
    """Original key, bytes and headers (minus `dlq_*`), in offset order. The group's inbox
    skips what it already applied; dead-lettered events were never applied, so they run."""
    try:
        done = await console_of(request).broker.replay(
            group, body.partition, body.from_offset, body.to_offset
        )
    except ReplayError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    log.info(
        "dead letters replayed",
        extra={
            "by": operator.subject,
            "group": group,
            "partition": body.partition,
            "from_offset": body.from_offset,
            "to_offset": body.to_offset,
            "count": len(done),
        },
    )
    return {"replayed": [r.to_json() for r in done]}
