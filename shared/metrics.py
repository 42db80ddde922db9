"""Prometheus metrics of every Fieldcollect process, and the HTTP hooks that serve them.

This module is the catalogue: every metric a dashboard or an alert rule uses is declared
here (a unit test checks `deploy/grafana` and `deploy/prometheus` against it). Labels are
topics, event types, consumer groups, schemas, route templates and error classes — never
an account, a customer or a raw URL path.

`install_observability(app, hooks)` adds the HTTP middleware (request metrics by route
template, a request id and a trace span per request, both bound to every log line) and
`GET /metrics`, which first awaits the app's scrape hooks (gauges computed on scrape, such
as the outbox backlog) and then renders the registry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events.payloads import PAYLOAD_TYPES
from shared.logging import log_context
from shared.tracing import fail, start_span

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# --- consumers (shared/consumer.py) ----------------------------------------------------

EVENTS_CONSUMED = Counter(
    "fieldcollect_events_consumed_total",
    "Records a consumer group finished with, by outcome: processed, duplicate, skipped, dead_lettered.",
    ["group", "topic", "type", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "fieldcollect_events_dead_lettered_total",
    "Records sent to the group's dead-letter topic, by the error that sent them.",
    ["group", "topic", "type", "error"],
)
EVENT_HANDLER_SECONDS = Histogram(
    "fieldcollect_event_handler_seconds",
    "Time in one event's handler (inside the batch transaction).",
    ["group", "type"],
    buckets=_LATENCY_BUCKETS,
)
EVENT_AGE_SECONDS = Histogram(
    "fieldcollect_event_age_seconds",
    "From the record's broker timestamp to the commit of its effect (event-to-effect latency).",
    ["group", "topic"],
    buckets=_AGE_BUCKETS,
)
CONSUMER_BATCH_SECONDS = Histogram(
    "fieldcollect_consumer_batch_seconds",
    "One partition batch: transaction, handlers and offset commit.",
    ["group"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "fieldcollect_consumer_lag_messages",
    "Records this member's group has yet to apply, per partition it is assigned: the highwater of its"
    " last fetch minus the group's committed offset (computed on scrape).",
    ["group", "topic", "partition"],
)
CONSUMER_BATCH_FAILURES = Counter(
    "fieldcollect_consumer_batch_failures_total",
    "Batches that failed after their retries and will be re-read.",
    ["group", "topic", "error"],
)

# --- outbox relay (shared/outbox.py) ---------------------------------------------------

EVENTS_PRODUCED = Counter(
    "fieldcollect_events_produced_total",
    "Records the outbox relay published and the broker acknowledged.",
    ["schema", "topic", "type"],
)
OUTBOX_BACKLOG = Gauge(
    "fieldcollect_outbox_backlog_messages",
    "Outbox rows not yet published (computed on scrape).",
    ["schema"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "fieldcollect_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row, 0 when empty (computed on scrape).",
    ["schema"],
)
OUTBOX_RELAY_LEADER = Gauge(
    "fieldcollect_outbox_relay_leader",
    "1 when this process holds the schema's relay lock and publishes.",
    ["schema"],
)
OUTBOX_PUBLISH_SECONDS = Histogram(
    "fieldcollect_outbox_publish_seconds",
    "One relay batch: claim, send with acks=all, delete.",
    ["schema"],
    buckets=_LATENCY_BUCKETS,
)
OUTBOX_RELAY_ERRORS = Counter(
    "fieldcollect_outbox_relay_errors_total",
    "Relay iterations that failed (transient ones are retried with backoff).",
    ["schema", "error"],
)

# --- HTTP (every API) ------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "fieldcollect_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "fieldcollect_http_request_duration_seconds",
    "HTTP request latency by route template and method (streams: until the stream ends).",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
SCRAPE_HOOK_FAILURES = Counter(
    "fieldcollect_scrape_hook_failures_total",
    "Gauges that could not be computed for a scrape (they keep their last value).",
    ["hook"],
)

# --- the ops console's broker-side view (services/ops) ---------------------------------

CONSUMER_GROUP_LAG = Gauge(
    "fieldcollect_consumer_group_lag_messages",
    "Highwater minus the group's committed offset, per partition, read from the broker.",
    ["group", "topic", "partition"],
)
DLQ_DEPTH = Gauge(
    "fieldcollect_dlq_depth_messages",
    "Records in a consumer group's dead-letter topic (highwater minus low watermark).",
    ["group"],
)
DLQ_REPLAYED = Counter(
    "fieldcollect_dlq_replayed_total",
    "Dead letters republished to their original topic.",
    ["group"],
)
OPS_SCRAPE_UP = Gauge(
    "fieldcollect_ops_scrape_up",
    "1 when the ops console could read the service's /metrics on its last attempt.",
    ["service"],
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

ScrapeHook = Callable[[], Awaitable[None]]


def event_type_label(raw: str | None) -> str:
    """An event type safe as a label: catalog types as they are, anything else 'unknown'."""
    if raw is None:
        return "none"
    return raw if raw in PAYLOAD_TYPES else "unknown"


def observe_consumed(group: str, topic: str, tally: Mapping[tuple[str, str, str], int]) -> None:
    """Count a committed batch: `tally` maps (type label, outcome, error class) to records."""
    for (event_type, outcome, error), count in tally.items():
        EVENTS_CONSUMED.labels(group, topic, event_type, outcome).inc(count)
        if outcome == "dead_lettered":
            EVENTS_DEAD_LETTERED.labels(group, topic, event_type, error).inc(count)


def observe_event_age(group: str, topic: str, timestamp_ms: int) -> None:
    if timestamp_ms > 0:
        EVENT_AGE_SECONDS.labels(group, topic).observe(max(time.time() - timestamp_ms / 1000, 0.0))


def observe_produced(schema: str, topic: str, event_type: str | None, count: int = 1) -> None:
    EVENTS_PRODUCED.labels(schema, topic, event_type_label(event_type)).inc(count)


async def render_metrics(hooks: Sequence[ScrapeHook], timeout_s: float = 2.0) -> Response:
    """Run the scrape hooks (each bounded in time), then the registry in text format."""
    for hook in hooks:
        try:
            await asyncio.wait_for(hook(), timeout_s)
        except Exception as exc:
            name = getattr(hook, "__name__", None) or getattr(getattr(hook, "func", None), "__name__", "hook")
            SCRAPE_HOOK_FAILURES.labels(name).inc()
            log.warning("scrape hook failed", extra={"hook": name, "error": type(exc).__name__})
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def install_observability(
    app: FastAPI, hooks: Callable[[], Sequence[ScrapeHook]] = tuple, hook_timeout_s: float = 2.0
) -> None:
    """HTTP metrics, request ids and request spans on every route, plus `GET /metrics`."""
    app.add_middleware(HttpObservabilityMiddleware)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return await render_metrics(hooks(), hook_timeout_s)


class HttpObservabilityMiddleware:
    """Pure ASGI (no per-request task or body buffering): cheap enough for the agents' API.

    The route label is the matched route's template (`/v1/visits/{visit_id}`), never the
    path; a request id comes from `X-Request-ID` when it is a plain token, else is new, and
    is echoed back; a `traceparent` request header continues the caller's trace.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        supplied = headers.get("x-request-id", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else os.urandom(16).hex()
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        status = 500

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                extra = [(b"x-request-id", request_id.encode())]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        started = time.perf_counter()
        with (
            log_context(request_id=request_id),
            start_span(method, headers.get("traceparent", ""), SpanKind.SERVER) as request_span,
        ):
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                route = route_template(scope)
                request_span.update_name(f"{method} {route}")
                request_span.set_attributes(
                    {"http.request.method": method, "http.route": route, "http.response.status_code": status}
                )
                if status >= 500:
                    fail(request_span, str(status))
                counter, histogram = self._series(method, route, status)
                counter.inc()
                histogram.observe(time.perf_counter() - started)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The label children of a (method, route, status), looked up once (hot path)."""
        key = (method, route, status)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_REQUEST_SECONDS.labels(method, route),
            )
        return series


def route_template(scope: Scope) -> str:
    """The matched route's path template; unmatched requests share one label."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "<unmatched>"


def _headers(scope: Scope) -> dict[str, str]:
    wanted = (b"x-request-id", b"traceparent")
    raw: list[tuple[bytes, bytes]] = scope.get("headers") or []
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in raw if k in wanted}


def sample_value(name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """One sample of this process's registry (tests and diagnostics)."""
    value: Any = REGISTRY.get_sample_value(name, dict(labels or {}))
    return None if value is None else float(value)
