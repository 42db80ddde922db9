"""The contact ledger's rules: what makes a pending contact pointless, absences in a row, history."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.followup.ledger import contact_history, facts_of, in_a_row, pointless_because
from services.followup.models import LedgerEntry
from services.followup.rules import load_rules
from shared.compliance import Channel

RULES = load_rules()
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def entry(kind: str, at: datetime, connected: bool = False, detail: str | None = None, **kw) -> LedgerEntry:
    return LedgerEntry(kw.pop("source_id", uuid.uuid4()), kind, at, at, connected, detail=detail, **kw)


def test_facts() -> None:
    assert facts_of(entry("payment", T0, detail="cleared")) == {"payment", "payment_cleared"}
    assert facts_of(entry("payment", T0, amount=Decimal(1))) == {"payment"}
    assert facts_of(entry("visit", T0, connected=True)) == {"visit", "visit_met"}
    assert facts_of(entry("call", T0)) == {"call"}


def test_no_call_the_morning_after_the_customer_paid() -> None:
    decided = T0
    paid = entry("payment", T0 + timedelta(hours=9), amount=Decimal(50))
    assert pointless_because(RULES, "call.promise_broken", [paid], decided) == "payment"


def test_a_payment_just_before_the_decision_counts_too() -> None:
    paid = entry("payment", T0 - timedelta(hours=3))
    assert pointless_because(RULES, "call.customer_absent", [paid], T0) == "payment"
    old = entry("payment", T0 - timedelta(hours=RULES.ledger.lookback_hours + 1))
    assert pointless_because(RULES, "call.customer_absent", [old], T0) is None


def test_a_partial_payment_does_not_cancel_a_reminder_but_clearing_does() -> None:
    partial = entry("payment", T0 + timedelta(hours=1), amount=Decimal(10))
    cleared = entry("payment", T0 + timedelta(hours=2), detail="cleared")
    assert pointless_because(RULES, "sms.promise_reminder", [partial], T0) is None
    assert pointless_because(RULES, "sms.promise_reminder", [partial, cleared], T0) == "payment_cleared"


def test_the_trigger_itself_never_cancels_its_contact() -> None:
    trigger = uuid.uuid4()
    promise = entry("promise", T0, source_id=trigger)
    assert pointless_because(RULES, "call.customer_absent", [promise], T0, exclude=(trigger,)) is None
    assert pointless_because(RULES, "call.customer_absent", [promise], T0) == "promise"


def test_a_conversation_or_a_meeting_makes_the_call_pointless() -> None:
    talked = entry("call", T0 + timedelta(hours=1), connected=True)
    met = entry("visit", T0 + timedelta(hours=2), connected=True)
    not_met = entry("visit", T0 + timedelta(hours=2))
    assert pointless_because(RULES, "call.refused", [talked], T0) == "call_connected"
    assert pointless_because(RULES, "call.refused", [met], T0) == "visit_met"
    assert pointless_because(RULES, "call.refused", [not_met], T0) is None


def test_absences_in_a_row_count_back_to_the_last_meeting() -> None:
    visits = [
        entry("visit", T0, detail="customer_absent"),
        entry("visit", T0 + timedelta(days=1), connected=True, detail="promise_to_pay"),
        entry("visit", T0 + timedelta(days=2), detail="customer_absent"),
        entry("visit", T0 + timedelta(days=3), detail="customer_absent"),
    ]
    assert in_a_row(visits, "customer_absent") == 2
    assert in_a_row(visits[:2], "customer_absent") == 0
    assert in_a_row([], "customer_absent") == 0


def test_history_holds_contacts_only() -> None:
    entries = [
        entry("sms", T0, number_id="n1"),
        entry("call", T0 + timedelta(hours=1), connected=True, number_id="n1"),
        entry("payment", T0),
        entry("promise", T0),
    ]
    history = contact_history(entries, "Asia/Shanghai")
    assert [r.channel for r in history.records] == [Channel.SMS, Channel.CALL]
