"""Structured JSON logs. Callers pass ids and counts in `extra`, never personal data.

Every line also carries the ids of what the process is working on: the HTTP request id,
the consumed event's id and correlation id (`log_context`), and the trace and span ids of
the current OpenTelemetry span (`shared/tracing.py`, which also writes one line per span
on the `fieldcollect.trace` logger; `LOG_SPANS=false` turns those lines off).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

from shared.tracing import current_ids, span_log

__all__ = [
    "JsonFormatter",
    "current_context",
    "log_context",
    "parse_traceparent",
    "setup_logging",
    "span_log",
]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}

_context: ContextVar[Mapping[str, str]] = ContextVar("fieldcollect_log_context", default=MappingProxyType({}))

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def current_context() -> Mapping[str, str]:
    """The ids bound to the running task (request, event, correlation)."""
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
        ids = current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
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
