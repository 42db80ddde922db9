"""The console's pure parts: redaction, live events, rates, dead letters, scraping, CLI output."""

import uuid
from decimal import Decimal

import httpx
from aiokafka import ConsumerRecord

from services.ops.broker import DeadLetter
from services.ops.cli import format_event, print_table, resolve_topic
from services.ops.feeds import EventFilter, LiveEvent, RateMeter
from services.ops.redact import REDACTED, redact, redacted_payload
from services.ops.scrape import scrape_one, summarize
from shared.events import Envelope
from shared.events import payloads as p

PHONE = "+8613812345678"


def _record(topic: str, value: bytes | None, headers: list[tuple[str, bytes]], key: bytes | None = b"ACC-1"):
    return ConsumerRecord(
        topic=topic,
        partition=2,
        offset=41,
        timestamp=1_795_000_000_123,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=headers,
    )


def _opened_envelope() -> Envelope:
    return Envelope(
        data=p.DelinquencyOpened(
            account_id="ACC-1",
            customer_id="C-1",
            product="cash_loan",
            currency="CNY",
            as_of="2026-11-29",
            principal=Decimal(1000),
            outstanding=Decimal(900),
            overdue_amount=Decimal(100),
            dpd=3,
            dpd_bucket="1-29",
            contact=p.ContactDetails(name="Li Lei", phone=PHONE),
            address=p.Address(
                line1="8 Secret Lane",
                city="Shenzhen",
                country="CN",
                postal_code="518000",
                location=p.GeoPoint(lat=22.5, lon=114.1),
            ),
        ),
        source="/test",
    )


def test_personal_fields_are_redacted_wherever_they_are() -> None:
    redacted = redact(
        {
            "contact": {"name": "Li", "phone": PHONE},
            "address": {"line1": "x", "city": "Shenzhen"},
            "items": [{"notes": "at home after 6"}],
            "dpd": 3,
            "customer_name": None,
            "confirmation": {"code": "482913", "amount": "50.00"},
        }
    )
    assert redacted == {
        "contact": REDACTED,
        "address": {"line1": REDACTED, "city": "Shenzhen"},
        "items": [{"notes": REDACTED}],
        "dpd": 3,
        "customer_name": None,
        "confirmation": {"code": REDACTED, "amount": "50.00"},
    }
    assert redacted_payload(b"\xff not json") == (None, "not JSON")


def test_a_live_event_shows_the_cloudevents_attributes_and_no_personal_data() -> None:
    envelope = _opened_envelope()
    event = LiveEvent.of(_record(envelope.topic, envelope.value(), envelope.headers()))
    shown = event.to_json()
    assert shown["type"] == "delinquency.opened" and shown["id"] == str(envelope.id)
    assert shown["account"] == "ACC-1" and shown["trace_id"] == envelope.traceparent.split("-")[1]
    assert shown["payload"]["overdue_amount"] == "100"
    text = str(shown)
    assert PHONE not in text and "Li Lei" not in text and "Secret Lane" not in text and "518000" not in text
    assert "22.5" not in text, "exact coordinates stay out of the live feed"


def test_filters_match_topic_type_and_account() -> None:
    envelope = _opened_envelope()
    event = LiveEvent.of(_record(envelope.topic, envelope.value(), envelope.headers()))
    assert EventFilter().matches(event)
    assert EventFilter(topic=envelope.topic, type="delinquency.opened", account="ACC-1").matches(event)
    assert not EventFilter(type="visit.assigned").matches(event)
    assert not EventFilter(account="ACC-2").matches(event)


def test_rates_are_per_second_over_a_sliding_window() -> None:
    meter = RateMeter(window_s=120)
    meter.add("t", 1, now=850)  # leaves the window when later seconds arrive; stays in the total
    for second in range(1000, 1010):
        meter.add("t", 3, now=second + 0.5)
    meter.add("t", 1, now=1009.7)
    snapshot = meter.snapshot(["t", "u"], now=1009.9)
    assert snapshot["t"]["series"][-10:] == [3] * 9 + [4]
    assert snapshot["t"]["rate_10s"] == 3.1
    assert snapshot["t"]["total"] == 32
    assert snapshot["u"] == {"rate_10s": 0.0, "rate_60s": 0.0, "series": [0] * 60, "total": 0}


def _dead_letter() -> DeadLetter:
    headers = [
        ("ce_type", b"visit.assigned"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("traceparent", b"00-ab-cd-01"),
        ("dlq_error_class", b"EventDecodeError"),
        ("dlq_error_reason", b"address: field required"),
        ("dlq_original_topic", b"collections.assignments.v1"),
        ("dlq_original_partition", b"1"),
        ("dlq_original_offset", b"7"),
        ("dlq_consumer_group", b"visits.assignments"),
    ]
    record = _record("collections.dlq.visits.assignments", b'{"customer_name": "Li Lei"}', headers)
    return DeadLetter.of("visits.assignments", record)


def test_a_dead_letter_replays_with_its_original_headers_only() -> None:
    letter = _dead_letter()
    assert letter.original_topic == "collections.assignments.v1"
    assert [k for k, _ in letter.replay_headers()] == ["ce_type", "ce_id", "traceparent"]
    summary = letter.summary()
    assert summary["original_offset"] == 7 and summary["error_class"] == "EventDecodeError"
    assert "Li Lei" not in str(letter.inspect())


def test_service_figures_are_read_from_the_prometheus_exposition() -> None:
    text = "\n".join(
        [
            "# TYPE fieldcollect_outbox_backlog_messages gauge",
            'fieldcollect_outbox_backlog_messages{schema="visits"} 12.0',
            "# TYPE fieldcollect_http_requests_total counter",
            'fieldcollect_http_requests_total{method="GET",route="/x",status="200"} 10.0',
            'fieldcollect_http_requests_total{method="GET",route="/x",status="503"} 2.0',
            "# TYPE fieldcollect_events_dead_lettered_total counter",
            'fieldcollect_events_dead_lettered_total{group="g",topic="t",type="unknown",error="E"} 3.0',
            "# TYPE fieldcollect_consumer_lag_messages gauge",
            'fieldcollect_consumer_lag_messages{group="g",topic="t",partition="0"} 4.0',
            'fieldcollect_consumer_lag_messages{group="g",topic="t",partition="1"} 1.0',
        ]
    )
    health = summarize("visits", "http://v", text).to_json()
    assert (
        health["outbox_backlog"] == 12.0 and health["dead_lettered"] == 3.0 and health["consumer_lag"] == 5.0
    )
    assert health["http_requests"] == 12.0 and health["http_5xx"] == 2.0 and health["up"]


async def test_a_service_that_does_not_answer_is_down() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        health = await scrape_one(client, "planner", "http://planner")
    assert not health.up and health.error == "ConnectError"


def test_cli_output() -> None:
    envelope = _opened_envelope()
    event = LiveEvent.of(_record(envelope.topic, envelope.value(), envelope.headers()))
    line = format_event(event, compact=True)
    assert line.split(" ", 1)[1].startswith(
        "collections.delinquency.v1[2]@41 delinquency.opened account=ACC-1"
    )
    assert PHONE not in format_event(event)
    assert resolve_topic("assignments") == "collections.assignments.v1"
    assert resolve_topic("dlq.visits.assignments") == "collections.dlq.visits.assignments"

    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

    out = Out()
    print_table(out, ("A", "BB"), [(1, "x"), (22, "yyy")])
    assert out.text.splitlines() == ["A   BB", "1   x", "22  yyy"]
