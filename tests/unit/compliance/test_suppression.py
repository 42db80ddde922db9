"""Suppression flags stop contact, except for the exceptions each pack documents."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.compliance import (
    PACK_IDS,
    BreathingSpace,
    Channel,
    Customer,
    Purpose,
    Suppression,
    load_pack,
)
from tests.unit.compliance.support import HARDSHIP, PACK_ZONES, TUESDAY, assert_names_pack, decide_at, local

FLAGS = ["deceased", "bankruptcy", "cease_contact", "dispute", "care_hold"]


@pytest.mark.parametrize("pack_id", PACK_IDS)
@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("channel", list(Channel))
def test_flag_stops_collection_contact_for_good(pack_id: str, flag: str, channel: Channel) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone, **{flag: True})  # type: ignore[arg-type]
    decision = decide_at(pack_id, customer, channel, local(zone, TUESDAY, 12, 0))
    assert not decision.allowed
    assert decision.rule_id == f"{pack_id}.{flag}"
    assert decision.next_allowed is None  # waiting does not lift a flag; clearing it does
    assert_names_pack(decision, pack_id)


# (flag, purpose, channel) the packs allow, everything else of that flag is refused.
DOCUMENTED = {
    "dispute": {(Purpose.DISPUTE_RESPONSE, Channel.SMS), (Purpose.DISPUTE_RESPONSE, Channel.CALL)},
    "cease_contact": {(Purpose.CEASE_CONFIRMATION, Channel.SMS)},
    "care_hold": {(Purpose.CARE, channel) for channel in Channel},
    "deceased": set(),
    "bankruptcy": set(),
}


@pytest.mark.parametrize("pack_id", PACK_IDS)
@pytest.mark.parametrize("flag", FLAGS)
def test_documented_exceptions_and_nothing_else(pack_id: str, flag: str) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone, **{flag: True})  # type: ignore[arg-type]
    pack = load_pack(pack_id)
    expected = DOCUMENTED[flag]
    if pack_id == "us" and flag == "dispute":
        expected = {(Purpose.DISPUTE_RESPONSE, Channel.SMS)}  # Reg F: verification in writing
    assert pack.exceptions_for(Suppression(flag)) == expected
    for purpose in Purpose:
        if purpose is Purpose.LOCATE_DEBTOR:
            continue  # a third-party purpose
        for channel in Channel:
            decision = decide_at(
                pack_id, customer, channel, local(zone, TUESDAY, 12, 0), purpose=purpose, agent=HARDSHIP
            )
            assert decision.allowed is ((purpose, channel) in expected), (purpose, channel, decision)


def test_dispute_response_still_keeps_hours() -> None:
    zone = "Asia/Shanghai"
    customer = Customer(time_zone=zone, dispute=True)
    decision = decide_at(
        "cn", customer, Channel.SMS, local(zone, TUESDAY, 23, 0), purpose=Purpose.DISPUTE_RESPONSE
    )
    assert decision.rule_id == "cn.quiet_hours"
    assert decision.next_allowed == local(zone, TUESDAY + timedelta(days=1), 8, 0)


def test_every_active_flag_must_allow_the_request() -> None:
    zone = "Asia/Shanghai"
    customer = Customer(time_zone=zone, dispute=True, cease_contact=True)
    decision = decide_at(
        "cn", customer, Channel.SMS, local(zone, TUESDAY, 12, 0), purpose=Purpose.DISPUTE_RESPONSE
    )
    assert decision.rule_id == "cn.cease_contact"


def test_deceased_comes_first() -> None:
    zone = "Europe/London"
    customer = Customer(time_zone=zone, deceased=True, dispute=True)
    decision = decide_at(
        "uk", customer, Channel.SMS, local(zone, TUESDAY, 12, 0), purpose=Purpose.DISPUTE_RESPONSE
    )
    assert decision.rule_id == "uk.deceased"
    assert decision.next_allowed is None


def test_uk_breathing_space_60_days() -> None:
    zone = "Europe/London"
    start = date(2026, 3, 2)
    customer = Customer(time_zone=zone, breathing_space=BreathingSpace(start=start))
    during = decide_at("uk", customer, Channel.CALL, local(zone, start + timedelta(days=59), 10, 0))
    assert during.rule_id == "uk.breathing_space"
    assert during.next_allowed == local(zone, start + timedelta(days=60), 8, 0)
    assert decide_at("uk", customer, Channel.CALL, local(zone, start + timedelta(days=60), 10, 0)).allowed
    assert decide_at("uk", customer, Channel.CALL, local(zone, start - timedelta(days=1), 10, 0)).allowed


def test_uk_mental_health_crisis_breathing_space() -> None:
    zone = "Europe/London"
    start = date(2026, 1, 5)
    ongoing = Customer(time_zone=zone, breathing_space=BreathingSpace(start=start, mental_health_crisis=True))
    decision = decide_at("uk", ongoing, Channel.SMS, local(zone, date(2026, 9, 1), 10, 0))
    assert decision.rule_id == "uk.breathing_space"
    assert decision.next_allowed is None  # lasts as long as the treatment does
    ended = Customer(
        time_zone=zone,
        breathing_space=BreathingSpace(
            start=start, mental_health_crisis=True, treatment_ended=date(2026, 5, 1)
        ),
    )
    during = decide_at("uk", ended, Channel.SMS, local(zone, date(2026, 5, 30), 10, 0))
    assert during.rule_id == "uk.breathing_space"
    assert during.next_allowed == local(zone, date(2026, 5, 31), 8, 0)  # treatment end + 30 days


def test_care_hold_with_an_end_date() -> None:
    zone = "Asia/Shanghai"
    customer = Customer(time_zone=zone, care_hold=True, care_hold_until=date(2026, 3, 12))
    decision = decide_at("cn", customer, Channel.CALL, local(zone, TUESDAY, 10, 0))
    assert decision.rule_id == "cn.care_hold"
    assert decision.next_allowed == local(zone, date(2026, 3, 13), 8, 0)


@pytest.mark.parametrize("pack_id", PACK_IDS)
def test_channel_opt_out_stops_that_medium_only(pack_id: str) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone, opted_out_channels=frozenset({Channel.CALL}))
    refused = decide_at(pack_id, customer, Channel.CALL, local(zone, TUESDAY, 12, 0))
    assert refused.rule_id == f"{pack_id}.channel_opt_out"
    assert refused.next_allowed is None
    assert decide_at(pack_id, customer, Channel.SMS, local(zone, TUESDAY, 12, 0)).allowed


def test_a_lender_may_switch_a_channel_off() -> None:
    pack = load_pack("cn", overrides={"override_id": "no-visits", "quiet_hours": {"visit": []}})
    zone = "Asia/Shanghai"
    decision = decide_at(pack, Customer(time_zone=zone), Channel.VISIT, local(zone, TUESDAY, 12, 0))
    assert decision.rule_id == "cn.channel_not_permitted"
    assert decision.next_allowed is None
    assert decision.pack_version == "2026.1+no-visits"
