"""Structured JSON logs. Callers pass ids and counts in `extra`, never personal data.

Every line also carries the ids of what the process is working on (`log_context`): the
HTTP request id, the consumed event's id and correlation id, and the trace and span ids.
Spans are the W3C trace context already on every event (`traceparent`), recorded as log
lines on the `fieldcollect.trace` logger; `LOG_SPANS=false` turns those lines off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}

_context: ContextVar[Mapping[str, str]] = ContextVar("fieldcollect_log_context", default=MappingProxyType({}))
span_log = logging.getLogger("fieldcollect.trace")

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def current_context() -> Mapping[str, str]:
    """The ids bound to the running task (request, event, correlation, trace, span)."""
    return _context.get()


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Bind ids to every log line written inside the block (and tasks it starts)."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    parent_span_id: str | None
    flags: str = "01"


def parse_traceparent(value: str | None) -> TraceContext | None:
    """A W3C `traceparent` (version 00), or None when absent or malformed."""
    match = _TRACEPARENT.match(value.strip().lower()) if value else None
    if match is None or match.group(1) == "ff" or set(match.group(2)) == {"0"}:
        return None
    return TraceContext(match.group(2), match.group(3), match.group(4))


def current_traceparent() -> str:
    """A traceparent continuing the current span (a new trace outside any span)."""
    ids = _context.get()
    trace_id = ids.get("trace_id") or os.urandom(16).hex()
    return f"00-{trace_id}-{os.urandom(8).hex()}-01"


@dataclass(slots=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    attributes: dict[str, object] = field(default_factory=dict)
    status: str = "ok"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def span(name: str, parent: str | None = None, **attributes: object) -> SpanScope:
    """A span in `parent`'s trace (a new trace without one), logged when it ends.

    Attributes must be ids, names and counts: they are written to the logs.
    """
    context = parse_traceparent(parent)
    return SpanScope(
        Span(
            name=name,
            trace_id=context.trace_id if context else os.urandom(16).hex(),
            span_id=os.urandom(8).hex(),
            parent_span_id=context.parent_span_id if context else None,
            attributes=attributes,
        )
    )


class SpanScope:
    """`with span(…) as s:` binds the span's ids to the log context and logs it at the end.

    A class rather than a generator-based context manager: it runs on every request and
    every consumed event.
    """

    __slots__ = ("_span", "_started", "_token")

    def __init__(self, current: Span) -> None:
        self._span = current
        self._started = 0.0
        self._token: Token[Mapping[str, str]] | None = None

    def __enter__(self) -> Span:
        ids = {**_context.get(), "trace_id": self._span.trace_id, "span_id": self._span.span_id}
        self._token = _context.set(ids)
        self._started = time.perf_counter()
        return self._span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        current = self._span
        if exc_type is not None:
            current.status = "error"
            current.attributes.setdefault("error", exc_type.__name__)
        try:
            if span_log.isEnabledFor(logging.INFO):
                span_log.info(
                    "span",
                    extra={
                        "span": current.name,
                        "parent_span_id": current.parent_span_id,
                        "status": current.status,
                        "duration_ms": round((time.perf_counter() - self._started) * 1000, 3),
                        **current.attributes,
                    },
                )
        finally:
            if self._token is not None:
                _context.reset(self._token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_context.get())
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints full URLs; ours carry ids only, but keep it terse.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    spans_on = os.environ.get("LOG_SPANS", "true").strip().lower() not in ("0", "false", "no", "off")
    span_log.setLevel(logging.INFO if spans_on else logging.WARNING)
