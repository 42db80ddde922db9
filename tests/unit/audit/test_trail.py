import uuid
from datetime import UTC, date, datetime

from services.audit.trail import AUDITED_TYPES, GENESIS_HASH, chain_hash, entry_for
from shared.events import Envelope
from shared.events import payloads as p


def _env(data: p.Payload) -> Envelope:
    return Envelope(data=data, source="/t", causation_id="cause-1")


def test_a_suppressed_contact_is_a_refusal_with_its_rule() -> None:
    entry = entry_for(
        _env(p.ContactSuppressed(account_id="A", channel="sms", rule="cn.quiet_hours", pack="cn@1"))
    )
    assert (entry.stage, entry.channel, entry.actor, entry.outcome) == (
        "refused",
        "sms",
        "policy",
        "suppressed",
    )
    assert entry.decision == {"rule": "cn.quiet_hours", "pack": "cn@1"}
    assert entry.caused_by == "cause-1"


def test_a_refused_check_in_is_audited_with_its_reason() -> None:
    event = p.VisitCheckedIn(
        account_id="A", visit_id=uuid.uuid4(), agent_id="AG-1", checkin_id=uuid.uuid4(),
        checked_in_at=datetime.now(UTC), accepted=False, refusal_reason="outside contact hours",
    )  # fmt: skip
    entry = entry_for(_env(event))
    assert (entry.stage, entry.actor, entry.decision["reason"]) == (
        "refused",
        "agent:AG-1",
        "outside contact hours",
    )


def test_failed_calls_and_planned_visits() -> None:
    call = entry_for(_env(p.CallCompleted(account_id="A", task_id=uuid.uuid4(), completed_at=datetime.now(UTC),
                                          result="no_answer")))  # fmt: skip
    assert (call.stage, call.channel) == ("failed", "call")
    cancelled = entry_for(
        _env(p.VisitCancelled(account_id="A", visit_id=uuid.uuid4(), agent_id="AG", reason="paid"))
    )
    assert (cancelled.stage, cancelled.decision) == ("cancelled", {"reason": "paid"})


def test_non_contacts_are_not_audited() -> None:
    assert entry_for(_env(p.PromiseKept(account_id="A", promise_id=uuid.uuid4()))) is None
    assert "promise.kept" not in AUDITED_TYPES


def test_the_hash_changes_with_any_field_and_with_the_previous_hash() -> None:
    event = p.VisitCancelled(account_id="A", visit_id=uuid.uuid4(), agent_id="AG", reason="paid")
    entry = entry_for(_env(event))
    base = chain_hash(GENESIS_HASH, 1, entry)
    assert len(base) == 64
    assert chain_hash(GENESIS_HASH, 2, entry) != base
    assert chain_hash("1" * 64, 1, entry) != base
    altered = entry_for(_env(event.model_copy(update={"reason": "cured"})))
    assert (
        chain_hash(GENESIS_HASH, 1, altered) != chain_hash(GENESIS_HASH, 1, entry)
        or altered.event_id != entry.event_id
    )


def test_dates_in_decisions_are_plain_strings() -> None:
    event = p.VisitAssigned(
        account_id="A", visit_id=uuid.uuid4(), agent_id="AG", plan_date=date(2026, 12, 1), sequence=0,
        window_start=datetime.now(UTC), window_end=datetime.now(UTC), time_zone="Asia/Shanghai", language="zh-CN",
        address=p.Address(line1="x", city="y", country="CN"), briefing=p.Briefing(),
    )  # fmt: skip
    assert entry_for(_env(event)).decision == {"plan_date": "2026-12-01"}
