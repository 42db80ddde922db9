"""OpenTelemetry spans of the plumbing: producer spans named by events' traceparent, spans
continuing a remote parent, failures by class name only, the file exporter."""

import json
import logging

import orjson
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from shared.events import Envelope, decode
from shared.events import payloads as p
from shared.events.envelope import child_traceparent
from shared.logging import JsonFormatter, log_context, span_log
from shared.tracing import configure_tracing, start_span
from tests.unit.ops.spans import TracingOptions

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def _ids(traceparent: str) -> tuple[str, str]:
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def _hex(span) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def _revisit(account: str = "ACC-1") -> p.RevisitRequested:
    return p.RevisitRequested(account_id=account, reason="callback")


def test_a_new_event_records_its_producer_span_under_the_current_span(exported) -> None:
    with start_span("consume x", f"00-{TRACE}-{PARENT}-01", SpanKind.CONSUMER) as consumer:
        event = Envelope(data=_revisit(), source="/test")
    producer, consumed = exported.get_finished_spans()
    assert producer.name == "produce revisit.requested" and producer.kind is SpanKind.PRODUCER
    assert _ids(event.traceparent) == _hex(producer), "the header names the producer span"
    assert producer.parent.span_id == consumer.get_span_context().span_id
    assert _hex(consumed)[0] == TRACE and f"{consumed.parent.span_id:016x}" == PARENT
    assert producer.attributes["messaging.message.id"] == str(event.id)
    assert producer.attributes["messaging.destination.name"] == event.topic
    assert "ACC-1" not in json.dumps(dict(producer.attributes)), "no account ids in spans"


def test_an_event_outside_any_span_starts_a_trace_and_decoding_records_nothing(exported) -> None:
    event = Envelope(data=_revisit(), source="/test")
    (producer,) = exported.get_finished_spans()
    assert producer.parent is None and _ids(event.traceparent) == _hex(producer)
    exported.clear()
    assert decode(event.value(), event.headers()).traceparent == event.traceparent
    assert exported.get_finished_spans() == ()


def test_a_caused_event_is_a_child_of_its_cause_even_outside_the_causes_span(exported) -> None:
    cause = Envelope(data=_revisit(), source="/test", traceparent=f"00-{TRACE}-{PARENT}-01")
    effect = cause.caused(_revisit(), "/test")
    with start_span("unrelated work"):
        later = child_traceparent(cause.traceparent, "sms.sent")
    producer, delayed, _unrelated = exported.get_finished_spans()
    assert _ids(effect.traceparent) == _hex(producer) and _hex(producer)[0] == TRACE
    assert f"{producer.parent.span_id:016x}" == PARENT and producer.parent.is_remote
    assert effect.causation_id == str(cause.id) and effect.correlation_id == str(cause.id)
    assert delayed.name == "produce sms.sent" and _ids(later) == _hex(delayed)
    assert _hex(delayed)[0] == TRACE and f"{delayed.parent.span_id:016x}" == PARENT


def test_a_failed_span_names_the_exception_class_never_its_message(exported) -> None:
    with pytest.raises(ValueError, match="secret"), start_span("boom"):
        raise ValueError("phone +86 138 secret")
    (failed,) = exported.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR and failed.status.description == "ValueError"
    assert failed.attributes["error.type"] == "ValueError" and failed.events == ()


def test_span_log_lines_carry_the_ids_of_their_context(exported) -> None:
    lines: list[dict] = []
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter("t"))
    handler.emit = lambda record: lines.append(orjson.loads(handler.format(record)))  # type: ignore[method-assign]
    span_log.addHandler(handler)
    previous = span_log.level
    span_log.setLevel(logging.INFO)
    try:
        with (
            log_context(event_id="E1"),
            start_span("consume x", f"00-{TRACE}-{PARENT}-01", attributes={"fieldcollect.outcome": "ok"}),
        ):
            pass
    finally:
        span_log.removeHandler(handler)
        span_log.setLevel(previous)
    (line,) = lines
    (span,) = exported.get_finished_spans()
    assert (line["span"], line["trace_id"], line["parent_span_id"]) == ("consume x", TRACE, PARENT)
    assert line["span_id"] == _hex(span)[1] and line["event_id"] == "E1", "written inside the span's context"
    assert line["fieldcollect.outcome"] == "ok" and line["duration_ms"] >= 0


def test_the_file_exporter_writes_the_sdks_json_lines(tmp_path) -> None:
    path = tmp_path / "spans" / "intake.jsonl"
    provider = configure_tracing("intake", TracingOptions(traces_file=path))
    try:
        with start_span("POST /v1/things", f"00-{TRACE}-{PARENT}-01", SpanKind.SERVER):
            pass
        provider.force_flush()
        (line,) = path.read_text().splitlines()
        span = json.loads(line)
        assert span["name"] == "POST /v1/things" and span["kind"] == "SpanKind.SERVER"
        assert span["context"]["trace_id"] == f"0x{TRACE}" and span["parent_id"] == f"0x{PARENT}"
        assert span["resource"]["attributes"]["service.name"] == "intake"
    finally:
        configure_tracing("fieldcollect", TracingOptions())
