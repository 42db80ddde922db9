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
