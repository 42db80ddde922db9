"""Frequency caps count what each regime counts, per local day (or 7 local days)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.compliance import Channel, ContactHistory, ContactRecord, Customer, Recipient, decide, load_pack
from tests.unit.compliance.support import TUESDAY, assert_names_pack, calls, decide_at, local, request

SHANGHAI, NEW_YORK, HANOI, LONDON, JAKARTA = (
    "Asia/Shanghai",
    "America/New_York",
    "Asia/Ho_Chi_Minh",
    "Europe/London",
    "Asia/Jakarta",
)
HOUR = timedelta(hours=1)


# --- cn: attempts per number per day (6) -------------------------------------------------


@pytest.mark.parametrize(("attempts", "allowed"), [(5, True), (6, False)])
def test_cn_attempts_per_number_at_n_minus_1_and_n(attempts: int, allowed: bool) -> None:
    history = ContactHistory(SHANGHAI, calls(SHANGHAI, local(SHANGHAI, TUESDAY, 8, 0), attempts, every=HOUR))
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 15, 0), history
    )
    assert decision.allowed is allowed
    assert_names_pack(decision, "cn")
    if not allowed:
        assert decision.rule_id == "cn.attempts_per_number"
        assert decision.next_allowed == local(SHANGHAI, TUESDAY + timedelta(days=1), 8, 0)


def test_cn_attempts_count_per_number() -> None:
    history = ContactHistory(SHANGHAI, calls(SHANGHAI, local(SHANGHAI, TUESDAY, 8, 0), 6, every=HOUR))
    other_number = decide_at(
        "cn",
        Customer(time_zone=SHANGHAI),
        Channel.CALL,
        local(SHANGHAI, TUESDAY, 15, 0),
        history,
        number_id="n2",
    )
    assert other_number.allowed


def test_cn_per_number_cap_without_a_number_counts_every_number() -> None:
    history = ContactHistory(
        SHANGHAI, calls(SHANGHAI, local(SHANGHAI, TUESDAY, 8, 0), 6, every=HOUR, number_id="n2")
    )
    decision = decide_at(
        "cn",
        Customer(time_zone=SHANGHAI),
        Channel.CALL,
        local(SHANGHAI, TUESDAY, 15, 0),
        history,
        number_id=None,
    )
    assert decision.rule_id == "cn.attempts_per_number"


def test_cn_day_is_the_customers_local_day() -> None:
    """Six attempts between 16:00 and 21:00 UTC on Monday fall on Tuesday 00:00–05:00 in Shanghai."""
    monday_utc = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    history = ContactHistory(SHANGHAI, calls(SHANGHAI, monday_utc, 6, every=HOUR))
    tuesday_morning = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 9, 0), history
    )
    assert tuesday_morning.rule_id == "cn.attempts_per_number"
    wednesday = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, date(2026, 3, 11), 9, 0), history
    )
    assert wednesday.allowed


# --- cn: connected contacts per debtor per day (3), visits count ----------------------------


@pytest.mark.parametrize(("connected", "allowed"), [(2, True), (3, False)])
def test_cn_connected_calls_at_n_minus_1_and_n(connected: int, allowed: bool) -> None:
    records = [
        ContactRecord(
            Channel.CALL, local(SHANGHAI, TUESDAY, 9 + index, 0), connected=True, number_id=f"n{index}"
        )
        for index in range(connected)
    ]
    history = ContactHistory(SHANGHAI, records)
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 15, 0), history
    )
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "cn.connected_contacts_per_day"


def test_cn_visit_counts_as_a_connected_contact() -> None:
    records = [
        ContactRecord(Channel.CALL, local(SHANGHAI, TUESDAY, 9, 0), connected=True, number_id="n1"),
        ContactRecord(Channel.CALL, local(SHANGHAI, TUESDAY, 10, 0), connected=True, number_id="n1"),
        ContactRecord(Channel.VISIT, local(SHANGHAI, TUESDAY, 11, 0), connected=True),
    ]
    history = ContactHistory(SHANGHAI, records)
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 15, 0), history
    )
    assert decision.rule_id == "cn.connected_contacts_per_day"


def test_cn_calls_from_agencies_count_once_merged_into_the_history() -> None:
    lender = [ContactRecord(Channel.CALL, local(SHANGHAI, TUESDAY, 9, 0), connected=True, number_id="n1")]
    agencies = [
        ContactRecord(Channel.CALL, local(SHANGHAI, TUESDAY, 10, 0), connected=True, number_id="n1"),
        ContactRecord(Channel.CALL, local(SHANGHAI, TUESDAY, 11, 0), connected=True, number_id="n1"),
    ]
    history = ContactHistory(SHANGHAI, lender).extended(agencies)
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 15, 0), history
    )
    assert decision.rule_id == "cn.connected_contacts_per_day"


def test_cn_second_visit_same_day_refused() -> None:
    history = ContactHistory(
        SHANGHAI, [ContactRecord(Channel.VISIT, local(SHANGHAI, TUESDAY, 9, 0), connected=False)]
    )
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.VISIT, local(SHANGHAI, TUESDAY, 15, 0), history
    )
    assert decision.rule_id == "cn.visits_per_day"


def test_cn_sms_is_not_capped_by_call_caps() -> None:
    history = ContactHistory(
        SHANGHAI, calls(SHANGHAI, local(SHANGHAI, TUESDAY, 8, 0), 6, every=HOUR, connected=True)
    )
    assert decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.SMS, local(SHANGHAI, TUESDAY, 15, 0), history
    ).allowed


# --- us: 7 calls in 7 consecutive days, and the 7-day pause after a conversation ----------------


@pytest.mark.parametrize(("placed", "allowed"), [(6, True), (7, False)])
def test_us_7_in_7_at_n_minus_1_and_n(placed: int, allowed: bool) -> None:
    first = local(NEW_YORK, TUESDAY - timedelta(days=6), 10, 0)
    history = ContactHistory(NEW_YORK, calls(NEW_YORK, first, placed, every=timedelta(hours=20)))
    decision = decide_at(
        "us", Customer(time_zone=NEW_YORK), Channel.CALL, local(NEW_YORK, TUESDAY, 18, 0), history
    )
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "us.calls_in_7_days"


def test_us_7_in_7_next_allowed_is_when_the_oldest_call_leaves_the_window() -> None:
    # Two calls on each of Wed 4, Thu 5, Fri 6 and one on Sat 7 March: 7 calls.
    days = [date(2026, 3, 4)] * 2 + [date(2026, 3, 5)] * 2 + [date(2026, 3, 6)] * 2 + [date(2026, 3, 7)]
    records = [
        ContactRecord(Channel.CALL, local(NEW_YORK, day, 10 + index, 0)) for index, day in enumerate(days)
    ]
    history = ContactHistory(NEW_YORK, records)
    decision = decide_at(
        "us", Customer(time_zone=NEW_YORK), Channel.CALL, local(NEW_YORK, date(2026, 3, 9), 9, 0), history
    )
    assert decision.rule_id == "us.calls_in_7_days"
    # Window for Wed 11 March is 5..11 March: the 4 March calls drop out.
    assert decision.next_allowed == local(NEW_YORK, date(2026, 3, 11), 8, 0)


def test_us_calls_eight_days_ago_do_not_count() -> None:
    first = local(NEW_YORK, TUESDAY - timedelta(days=7), 9, 0)
    history = ContactHistory(NEW_YORK, calls(NEW_YORK, first, 7, every=timedelta(minutes=30)))
    assert decide_at(
        "us", Customer(time_zone=NEW_YORK), Channel.CALL, local(NEW_YORK, TUESDAY, 9, 0), history
    ).allowed


def test_us_7_in_7_sees_calls_already_scheduled_after_the_proposed_day() -> None:
    """A planner placing calls out of order: 7 calls on Thu–Sat make a Tuesday call an 8th in a window."""
    later = [ContactRecord(Channel.CALL, local(NEW_YORK, date(2026, 3, 12), 9, index)) for index in range(7)]
    history = ContactHistory(NEW_YORK, later)
    decision = decide_at(
        "us", Customer(time_zone=NEW_YORK), Channel.CALL, local(NEW_YORK, TUESDAY, 10, 0), history
    )
    assert decision.rule_id == "us.calls_in_7_days"


@pytest.mark.parametrize(("days_after", "allowed"), [(0, False), (1, False), (6, False), (7, True)])
def test_us_pause_after_a_telephone_conversation(days_after: int, allowed: bool) -> None:
    conversation = ContactRecord(Channel.CALL, local(NEW_YORK, TUESDAY, 10, 0), connected=True)
    history = ContactHistory(NEW_YORK, [conversation])
    day = TUESDAY + timedelta(days=days_after)
    decision = decide_at(
        "us", Customer(time_zone=NEW_YORK), Channel.CALL, local(NEW_YORK, day, 15, 0), history
    )
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "us.after_conversation"
        assert decision.next_allowed == local(NEW_YORK, TUESDAY + timedelta(days=7), 8, 0)


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VISIT])
def test_us_pause_is_for_calls_only(channel: Channel) -> None:
    history = ContactHistory(
        NEW_YORK, [ContactRecord(Channel.CALL, local(NEW_YORK, TUESDAY, 10, 0), connected=True)]
    )
    assert decide_at(
        "us", Customer(time_zone=NEW_YORK), channel, local(NEW_YORK, TUESDAY, 15, 0), history
    ).allowed


def test_us_third_party_call_is_not_a_conversation_with_the_debtor() -> None:
    record = ContactRecord(
        Channel.CALL, local(NEW_YORK, TUESDAY, 10, 0), connected=True, recipient=Recipient.THIRD_PARTY
    )
    history = ContactHistory(NEW_YORK, [record])
    assert decide_at(
        "us", Customer(time_zone=NEW_YORK), Channel.CALL, local(NEW_YORK, TUESDAY, 15, 0), history
    ).allowed


# --- vn: 5 reminders a day; uk and id count visits as contacts ------------------------------------


@pytest.mark.parametrize(("reminders", "allowed"), [(4, True), (5, False)])
def test_vn_reminders_per_day(reminders: int, allowed: bool) -> None:
    records = [
        ContactRecord(
            Channel.SMS if index % 2 else Channel.CALL, local(HANOI, TUESDAY, 8 + index, 0), number_id="n1"
        )
        for index in range(reminders)
    ]
    history = ContactHistory(HANOI, records)
    for channel in (Channel.CALL, Channel.SMS):
        decision = decide_at("vn", Customer(time_zone=HANOI), channel, local(HANOI, TUESDAY, 16, 0), history)
        assert decision.allowed is allowed
        if not allowed:
            assert decision.rule_id == "vn.reminders_per_day"


def test_vn_visits_are_not_reminders() -> None:
    records = [ContactRecord(Channel.VISIT, local(HANOI, TUESDAY, 9, 0))] + [
        ContactRecord(Channel.CALL, local(HANOI, TUESDAY, 10 + index, 0)) for index in range(4)
    ]
    assert decide_at(
        "vn",
        Customer(time_zone=HANOI),
        Channel.CALL,
        local(HANOI, TUESDAY, 16, 0),
        ContactHistory(HANOI, records),
    ).allowed


@pytest.mark.parametrize(("pack_id", "zone"), [("uk", LONDON), ("id", JAKARTA)])
def test_visits_count_as_contacts(pack_id: str, zone: str) -> None:
    records = [
        ContactRecord(Channel.CALL, local(zone, TUESDAY, 9, 0)),
        ContactRecord(Channel.VISIT, local(zone, TUESDAY, 10, 0)),
    ]
    history = ContactHistory(zone, records)
    assert decide_at(
        pack_id, Customer(time_zone=zone), Channel.SMS, local(zone, TUESDAY, 11, 0), history
    ).allowed
    history = history.with_contact(ContactRecord(Channel.SMS, local(zone, TUESDAY, 11, 0)))
    decision = decide_at(
        pack_id, Customer(time_zone=zone), Channel.CALL, local(zone, TUESDAY, 12, 0), history
    )
    assert decision.rule_id == f"{pack_id}.contacts_per_day"


def test_history_in_another_zone_is_rejected() -> None:
    history = ContactHistory(LONDON)
    with pytest.raises(ValueError, match="time zone"):
        decide(
            load_pack("cn"),
            Customer(time_zone=SHANGHAI),
            request(Channel.CALL, local(SHANGHAI, TUESDAY, 9, 0)),
            history,
        )
