"""Events built in SQL by the file path carry the envelope every consumer expects."""

from services.intake.repository import HEADER_KEYS, _apply_stage_sql
from shared.events import Envelope
from shared.events import payloads as p


def test_sql_events_have_the_envelope_headers_in_envelope_order() -> None:
    envelope = Envelope(
        data=p.DelinquencyCured(account_id="A", as_of="2026-11-28", reason="current"),
        source="/fieldcollect/intake",
        correlation_id="an-import",
    )
    assert tuple(k for k, _ in envelope.headers()) == HEADER_KEYS


def test_every_delinquency_type_built_in_sql_is_a_known_payload() -> None:
    sql = _apply_stage_sql()
    built = {t for t in p.PAYLOAD_TYPES if f"account_id, '{t}'" in sql}
    assert built == {
        "delinquency.opened",
        "delinquency.updated",
        "payment.received",
        "delinquency.cured",
        "customer.flags_changed",
    }
    assert p.DelinquencyOpened.topic in sql


def test_a_bundle_line_expands_to_the_envelope_headers_of_its_event() -> None:
    """What the relay makes of a bundle written by the file path: the headers an Envelope has."""
    from services.intake.repository import bundle_template
    from shared.outbox import BUNDLE, _unbundle, murmur2

    envelope = Envelope(
        data=p.DelinquencyCured(account_id="LN-1", as_of="2026-11-28", reason="current"),
        source="/fieldcollect/intake",
        correlation_id="an-import",
    )
    keys, values = bundle_template(envelope.source, envelope.time.isoformat(), "an-import")
    assert keys[0] == BUNDLE and len(keys) == len(values) + 1
    fields = [envelope.key, str(envelope.id).encode(), envelope.type.encode()]
    fields += [
        f"urn:fieldcollect:{envelope.type}:v1".encode(),
        envelope.traceparent.encode(),
        envelope.value(),
    ]
    [(topic, key, value, headers, event_type, key_hash)] = list(
        _unbundle(envelope.topic, keys[1:], values, b"\t".join(fields) + b"\n")
    )
    assert (topic, key, value, event_type) == (
        envelope.topic,
        b"LN-1",
        envelope.value(),
        b"delinquency.cured",
    )
    assert headers == envelope.headers()
    assert key_hash == murmur2(b"LN-1")
