import uuid
from datetime import date
from decimal import Decimal

import pytest

from shared.events import Envelope, EventDecodeError, decode, topics
from shared.events import payloads as p


def _promise_kept() -> Envelope:
    return Envelope(data=p.PromiseKept(account_id="LN-1", promise_id=uuid.uuid4()), source="/test")


def test_round_trip_keeps_every_attribute() -> None:
    original = _promise_kept()
    parsed = decode(original.value(), original.headers())
    assert parsed == original
    assert parsed.topic == topics.FOLLOWUPS
    assert parsed.key == b"LN-1"


def test_binary_mode_headers_follow_cloudevents_kafka_binding() -> None:
    headers = dict(_promise_kept().headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"promise.kept"
    assert headers["ce_subject"] == b"LN-1"
    assert headers["content-type"] == b"application/json"
    version, trace_id, span_id, flags = headers["traceparent"].decode().split("-")
    assert (version, len(trace_id), len(span_id)) == ("00", 32, 16)
    assert int(flags, 16) & 0x01, "sampled (the SDK may also set W3C level 2's random-trace-id bit)"


def test_caused_event_keeps_trace_and_correlation() -> None:
    cause = _promise_kept()
    effect = cause.caused(p.RevisitRequested(account_id="LN-1", reason="broken promises"), "/planner")
    assert effect.causation_id == str(cause.id)
    assert effect.correlation_id == str(cause.id)
    assert effect.traceparent.split("-")[1] == cause.traceparent.split("-")[1]
    assert effect.traceparent != cause.traceparent


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda v, h: (v, [x for x in h if x[0] != "ce_id"]), "missing header ce_id"),
        (lambda v, h: (b"{not json", h), "Invalid JSON"),
        (
            lambda v, h: (v, [(k, b"no.such.type" if k == "ce_type" else x) for k, x in h]),
            "unknown event type",
        ),
        (lambda v, h: (v, [(k, b"sms.sent" if k == "ce_type" else x) for k, x in h]), "does not match"),
        (lambda v, h: (v, [(k, b"0.3" if k == "ce_specversion" else x) for k, x in h]), "specversion"),
    ],
)
def test_poison_records_are_refused_with_a_reason(mutate, reason) -> None:
    event = _promise_kept()
    value, headers = mutate(event.value(), event.headers())
    with pytest.raises(EventDecodeError, match=reason):
        decode(value, headers)


def test_validation_errors_name_fields_not_values() -> None:
    event = Envelope(
        data=p.PaymentReceived(
            account_id="LN-1",
            as_of=date(2026, 1, 1),
            amount=Decimal("1"),
            currency="CNY",
            overdue_amount_after=Decimal("0"),
        ),
        source="/t",
    )
    bad = event.value().replace(b'"CNY"', b'"SECRET-VALUE"')
    with pytest.raises(EventDecodeError) as info:
        decode(bad, event.headers())
    assert "currency" in str(info.value)
    assert "SECRET-VALUE" not in str(info.value)
