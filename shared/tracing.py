"""OpenTelemetry traces: one tracer provider per process, spans that cross Kafka.

Spans are the SDK's. Where they go is configuration (`configure_tracing`): an OTLP/HTTP
collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, a JSON-lines file (`TRACES_FILE`), and
one log line per span on the `fieldcollect.trace` logger (`LOG_SPANS`, on by default) so
that `grep <trace id>` over the logs follows a flow without a collector.

The W3C `traceparent` crosses Kafka in each event's headers. A new event records a
*producer* span (the event's `traceparent` names it) as a child of the current span; a
consumer's span continues the event's trace under that producer span; an HTTP request's
span continues the caller's `traceparent`. Span attributes are ids, names and counts only,
and an exception is recorded by class name, never by message (messages can hold data).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

span_log = logging.getLogger("fieldcollect.trace")
_PROPAGATOR = TraceContextTextMapPropagator()
_SCOPE = "fieldcollect"
Attributes = Mapping[str, AttributeValue]
# Names a log record's `extra` may not set.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class TracingSettings(Protocol):
    @property
    def otel_exporter_otlp_endpoint(self) -> str | None: ...

    @property
    def traces_file(self) -> Path | None: ...


class LogSpanProcessor(SpanProcessor):
    """One JSON log line per ended span, written while the span's log context is still bound
    (the line also carries the request or event ids). Off when `fieldcollect.trace` is above INFO."""

    def on_end(self, span: ReadableSpan) -> None:
        if not span_log.isEnabledFor(logging.INFO) or span.context is None:
            return
        parent = span.parent
        duration_ns = (span.end_time or 0) - (span.start_time or 0)
        span_log.info(
            "span",
            extra={
                **{k: v for k, v in (span.attributes or {}).items() if k not in _RESERVED},
                "span": span.name,
                "kind": span.kind.name.lower(),
                "trace_id": trace.format_trace_id(span.context.trace_id),
                "span_id": trace.format_span_id(span.context.span_id),
                "parent_span_id": trace.format_span_id(parent.span_id) if parent else None,
                "status": "error" if span.status.status_code is StatusCode.ERROR else "ok",
                "duration_ms": round(duration_ns / 1e6, 3),
            },
        )


def _provider(service: str, log_spans: bool = True) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service, "service.namespace": "fieldcollect"}),
        shutdown_on_exit=False,
    )
    if log_spans:
        provider.add_span_processor(LogSpanProcessor())
    return provider


# Until a process configures tracing, spans are still real (ids, parents) and logged.
_current = _provider("fieldcollect")
_tracer = _current.get_tracer(_SCOPE)


def configure_tracing(service: str, settings: TracingSettings, log_spans: bool = True) -> TracerProvider:
    """Install this process's tracer provider (`service.name` = service) and its exporters.

    OTLP/HTTP when `settings.otel_exporter_otlp_endpoint` is set (a base URL: `/v1/traces` is
    appended, as the SDK does for OTEL_EXPORTER_OTLP_ENDPOINT); the SDK's JSON lines into
    `settings.traces_file`; log lines unless `log_spans` is false. Replaces (and shuts down)
    the previous provider, so tests may call it again.
    """
    global _current, _tracer
    provider = _provider(service, log_spans)
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
        endpoint = endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if settings.traces_file:
        provider.add_span_processor(BatchSpanProcessor(_file_exporter(settings.traces_file)))
    previous, _current, _tracer = _current, provider, provider.get_tracer(_SCOPE)
    previous.shutdown()
    return provider


@atexit.register
def shutdown_tracing() -> None:
    """Export what is buffered (end of process)."""
    _current.shutdown()


def tracer_provider() -> TracerProvider:
    return _current


def _file_exporter(path: Path) -> ConsoleSpanExporter:
    path.parent.mkdir(parents=True, exist_ok=True)
    out: IO[str] = path.open("a", encoding="utf-8")
    return ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")


# --- traceparent in and out -----------------------------------------------------------------


def extract(traceparent: str | None) -> Context:
    """The context a W3C `traceparent` names (an empty one when absent or malformed)."""
    return _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})


def traceparent_of(span: Span) -> str:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier["traceparent"]


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, for log lines; None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


# --- the spans of the plumbing --------------------------------------------------------------


def producer_traceparent(name: str, parent: str | None = None, attributes: Attributes | None = None) -> str:
    """Record a new event's producer span and return the `traceparent` its headers carry.

    Its parent is the current span; or, when `parent` (e.g. a stored cause's traceparent)
    belongs to another trace than the current span's, the span `parent` names.
    """
    context = _parent_context(parent)
    producer = _tracer.start_span(name, context=context, kind=SpanKind.PRODUCER, attributes=attributes)
    producer.end()
    return traceparent_of(producer)


def _parent_context(parent: str | None) -> Context | None:
    if parent is None:
        return None
    current = trace.get_current_span().get_span_context()
    remote = trace.get_current_span(extract(parent)).get_span_context()
    if not remote.is_valid or (current.is_valid and current.trace_id == remote.trace_id):
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(remote), Context())


@contextlib.contextmanager
def start_span(
    name: str,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """The current span for the block: a child of the span `parent` names when given (a
    remote caller or a consumed event), else of the current span, else a new trace.

    An exception escaping the block marks the span failed with the exception's class name.
    """
    context = extract(parent) if parent is not None else None
    with _tracer.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            fail(current, type(exc).__name__)
            raise


def fail(span: Span, error: str) -> None:
    """Mark a span failed; `error` is a class name or a code, never a message."""
    span.set_attribute("error.type", error)
    span.set_status(Status(StatusCode.ERROR, error))
