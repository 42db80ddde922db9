"""The contact gate: our hours and the shared compliance policy, placing and refusing contacts."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.followup.gate import ContactGate, ContactKind, is_agent_refusal, local_instant, planning_agent
from services.followup.models import AccountFacts, LedgerEntry
from services.followup.rules import load_rules
from shared.compliance import Agent, PackCatalog

GATE = ContactGate(PackCatalog(), load_rules().contact_hours)
SHANGHAI = "Asia/Shanghai"
REMINDER = ContactKind("sms", "sms.promise_reminder", "collection")
CALL = ContactKind("call", "call.promise_broken", "collection")


def facts(**kw) -> AccountFacts:
    base = {
        "account_id": "A1",
        "time_zone": SHANGHAI,
        "language": "zh-CN",
        "phone": "+8613800001111",
        "country": "CN",
    }
    return AccountFacts(**{**base, **kw})


def at_local(hour: int, minute: int = 0, day: date = date(2026, 12, 2), zone: str = SHANGHAI) -> datetime:
    return local_instant(day, hour * 60 + minute, zone)


def test_inside_our_hours_the_contact_is_due_at_once() -> None:
    placed = GATE.place(facts(), REMINDER, at_local(10), at_local(10) + timedelta(hours=24))
    assert placed.due_at == at_local(10) and placed.refusal is None


def test_before_our_hours_it_waits_for_them_without_a_refusal() -> None:
    # 08:30 is allowed by law (cn: 08:00-22:00) but before our 09:00.
    placed = GATE.place(facts(), REMINDER, at_local(8, 30), at_local(23))
    assert placed.due_at == at_local(9) and placed.refusal is None


def test_a_refused_time_is_deferred_to_the_next_allowed_one_and_the_refusal_returned() -> None:
    now = at_local(10)
    number = facts().number_id
    six_calls = tuple(
        LedgerEntry(uuid.uuid4(), "call", now - timedelta(minutes=10 * i), now, number_id=number)
        for i in range(1, 7)
    )
    placed = GATE.place(facts(ledger=six_calls), CALL, now, now + timedelta(days=3))
    assert placed.refusal is not None and placed.refusal.rule_id == "cn.attempts_per_number"
    assert placed.due_at == at_local(9, day=date(2026, 12, 3)), "tomorrow, when our hours open"


def test_a_care_hold_drops_collection_contact_but_not_the_care_teams() -> None:
    held = facts(flags={"care_hold": True})
    placed = GATE.place(held, REMINDER, at_local(10), at_local(10) + timedelta(days=3))
    assert placed.due_at is None and placed.refusal is not None and placed.refusal.rule_id == "cn.care_hold"
    assert GATE.place(
        held, ContactKind("sms", "sms.care_referral", "care"), at_local(10), at_local(11)
    ).due_at == at_local(10)


def test_a_dispute_allows_only_the_acknowledgement() -> None:
    disputed = facts(flags={"dispute": True})
    assert GATE.place(disputed, REMINDER, at_local(10), at_local(11)).due_at is None
    assert GATE.place(
        disputed, ContactKind("sms", "sms.dispute_ack", "dispute_response"), at_local(10), at_local(11)
    ).due_at == at_local(10)


def test_an_sms_opt_out_stops_sms_only() -> None:
    out = facts(sms_opt_out=True)
    refused = GATE.decide(out, REMINDER, at_local(10))
    assert not refused.allowed and refused.rule_id == "cn.channel_opt_out"
    assert GATE.decide(out, CALL, at_local(10)).allowed


def test_vulnerable_customers_are_called_by_trained_agents_only() -> None:
    vulnerable = facts(flags={"vulnerable": True})
    untrained = Agent(
        hardship_trained=False, certification_valid_until=date(2027, 1, 1), languages=frozenset({"zh"})
    )
    decision = GATE.decide(vulnerable, CALL, at_local(10), untrained)
    assert not decision.allowed and is_agent_refusal(decision)
    trained = planning_agent(vulnerable, date(2026, 12, 2))
    assert GATE.decide(vulnerable, CALL, at_local(10), trained).allowed


def test_acknowledgements_follow_the_laws_hours_only() -> None:
    confirmation = ContactKind("sms", "sms.promise_confirmation", "collection")
    assert GATE.place(facts(), confirmation, at_local(21), at_local(23)).due_at == at_local(21)
    night = GATE.place(facts(), confirmation, at_local(23), at_local(10, day=date(2026, 12, 3)))
    assert night.refusal is not None and night.refusal.rule_id == "cn.quiet_hours"
    assert night.due_at == at_local(8, day=date(2026, 12, 3)), "the pack's hours open at 08:00"


def test_nothing_in_the_window_means_no_contact_and_no_refusal() -> None:
    placed = GATE.place(facts(), REMINDER, at_local(20, 30), at_local(21))
    assert placed.due_at is None and placed.refusal is None


@pytest.mark.parametrize(
    ("zone", "day", "minute", "expected_utc"),
    [
        ("Asia/Shanghai", date(2026, 12, 2), 9 * 60, datetime(2026, 12, 2, 1, 0, tzinfo=UTC)),
        (
            "America/New_York",
            date(2026, 3, 8),
            9 * 60,
            datetime(2026, 3, 8, 13, 0, tzinfo=UTC),
        ),  # EDT from 02:00
        ("America/New_York", date(2026, 3, 7), 9 * 60, datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),
        ("Asia/Shanghai", date(2026, 12, 2), 1440, datetime(2026, 12, 2, 16, 0, tzinfo=UTC)),
    ],
)
def test_local_instants_follow_the_zone(zone, day, minute, expected_utc) -> None:
    assert local_instant(day, minute, zone) == expected_utc


def test_the_phone_never_shows_in_repr() -> None:
    assert "13800001111" not in repr(facts())
    assert facts().number_id and "13800001111" not in facts().number_id
