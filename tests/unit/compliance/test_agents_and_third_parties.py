"""Agents (certification, hardship training, language), vulnerable customers, third parties."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.compliance import (
    PACK_IDS,
    Agent,
    Channel,
    ContactHistory,
    ContactRecord,
    Customer,
    Purpose,
    Recipient,
    check_visit_outcome,
    decide,
    load_pack,
    may_contain_debt_details,
)
from tests.unit.compliance.support import (
    CERTIFIED,
    HARDSHIP,
    PACK_ZONES,
    TUESDAY,
    assert_names_pack,
    decide_at,
    local,
    request,
)

SHANGHAI = "Asia/Shanghai"


# --- certification valid on the local visit date -----------------------------------------------


@pytest.mark.parametrize(
    ("valid_until", "allowed"),
    [
        (TUESDAY - timedelta(days=1), False),
        (TUESDAY, True),
        (TUESDAY + timedelta(days=1), True),
        (None, False),
    ],
)
def test_certification_valid_on_the_visit_date(valid_until: date | None, allowed: bool) -> None:
    agent = Agent(hardship_trained=False, certification_valid_until=valid_until)
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.VISIT, local(SHANGHAI, TUESDAY, 10, 0), agent=agent
    )
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "cn.agent_certification"
        assert decision.next_allowed is None


@pytest.mark.parametrize(
    ("zone", "instant", "allowed"),
    [
        # 20:00 UTC on Tuesday is 10:00 on Wednesday in Kiritimati: a Tuesday certificate has lapsed.
        ("Pacific/Kiritimati", datetime(2026, 3, 10, 20, 0, tzinfo=UTC), False),
        # 01:00 UTC on Wednesday is 14:00 on Tuesday in Pago Pago: still valid.
        ("Pacific/Pago_Pago", datetime(2026, 3, 11, 1, 0, tzinfo=UTC), True),
    ],
)
def test_certification_date_is_the_customers_local_date(zone: str, instant: datetime, allowed: bool) -> None:
    agent = Agent(hardship_trained=False, certification_valid_until=TUESDAY)
    decision = decide_at("cn", Customer(time_zone=zone), Channel.VISIT, instant, agent=agent)
    assert decision.allowed is allowed
    assert decision.rule_id == ("cn.allowed" if allowed else "cn.agent_certification")


def test_certification_lapsing_later_bounds_the_search() -> None:
    """Refused for quiet hours on the certificate's last day: nothing is allowed after it."""
    agent = Agent(hardship_trained=False, certification_valid_until=TUESDAY)
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.VISIT, local(SHANGHAI, TUESDAY, 22, 30), agent=agent
    )
    assert decision.rule_id == "cn.quiet_hours"
    assert decision.next_allowed is None


@pytest.mark.parametrize("pack_id", PACK_IDS)
def test_every_pack_refuses_expired_certification(pack_id: str) -> None:
    zone = PACK_ZONES[pack_id]
    expired = Agent(hardship_trained=True, certification_valid_until=date(2025, 1, 1))
    decision = decide_at(
        pack_id, Customer(time_zone=zone), Channel.VISIT, local(zone, TUESDAY, 12, 0), agent=expired
    )
    assert decision.rule_id == f"{pack_id}.agent_certification"
    assert_names_pack(decision, pack_id)


def test_a_visit_needs_an_agent() -> None:
    pack = load_pack("cn")
    bare = request(Channel.VISIT, local(SHANGHAI, TUESDAY, 10, 0), agent=CERTIFIED)
    decision = decide(pack, Customer(time_zone=SHANGHAI), replace(bare, agent=None))
    assert decision.rule_id == "cn.agent_required"


def test_a_call_by_an_agent_is_checked_too() -> None:
    expired = Agent(hardship_trained=False, certification_valid_until=date(2025, 1, 1))
    decision = decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 10, 0), agent=expired
    )
    assert decision.rule_id == "cn.agent_certification"
    assert decide_at(
        "cn", Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 10, 0)
    ).allowed


@pytest.mark.parametrize(
    ("languages", "allowed"), [({"zh"}, True), ({"zh-CN"}, True), ({"en"}, False), (set(), False)]
)
def test_visit_agent_speaks_the_customers_language(languages: set[str], allowed: bool) -> None:
    agent = Agent(
        hardship_trained=False, certification_valid_until=date(2030, 1, 1), languages=frozenset(languages)
    )
    customer = Customer(time_zone=SHANGHAI, language="zh-CN")
    decision = decide_at("cn", customer, Channel.VISIT, local(SHANGHAI, TUESDAY, 10, 0), agent=agent)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "cn.agent_language"


# --- vulnerable customers ---------------------------------------------------------------------------


def test_uk_never_visits_a_vulnerable_customer() -> None:
    zone = "Europe/London"
    customer = Customer(time_zone=zone, vulnerable=True)
    decision = decide_at("uk", customer, Channel.VISIT, local(zone, TUESDAY, 12, 0), agent=HARDSHIP)
    assert decision.rule_id == "uk.vulnerable_visit"
    assert decision.next_allowed is None


@pytest.mark.parametrize(("agent", "allowed"), [(HARDSHIP, True), (CERTIFIED, False), (None, False)])
def test_uk_vulnerable_calls_only_by_hardship_trained_agents(agent: Agent | None, allowed: bool) -> None:
    zone = "Europe/London"
    customer = Customer(time_zone=zone, vulnerable=True)
    decision = decide_at("uk", customer, Channel.CALL, local(zone, TUESDAY, 12, 0), agent=agent)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "uk.vulnerable_agent"


@pytest.mark.parametrize("pack_id", [pack for pack in PACK_IDS if pack != "uk"])
@pytest.mark.parametrize(("agent", "allowed"), [(HARDSHIP, True), (CERTIFIED, False)])
def test_vulnerable_visit_only_with_a_hardship_trained_agent(
    pack_id: str, agent: Agent, allowed: bool
) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone, vulnerable=True)
    decision = decide_at(pack_id, customer, Channel.VISIT, local(zone, TUESDAY, 12, 0), agent=agent)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == f"{pack_id}.vulnerable_agent"


def test_vulnerable_sms_needs_no_agent() -> None:
    customer = Customer(time_zone=SHANGHAI, vulnerable=True)
    assert decide_at("cn", customer, Channel.SMS, local(SHANGHAI, TUESDAY, 12, 0)).allowed


# --- third parties -----------------------------------------------------------------------------------


def _attempts(*outcomes: tuple[Channel, bool]) -> ContactHistory:
    records = [
        ContactRecord(
            channel, local(SHANGHAI, TUESDAY - timedelta(days=1), 9 + index, 0), connected=connected
        )
        for index, (channel, connected) in enumerate(outcomes)
    ]
    return ContactHistory(SHANGHAI, records)


FAILED_CALL, ANSWERED_CALL = (Channel.CALL, False), (Channel.CALL, True)
FAILED_VISIT, TEXT = (Channel.VISIT, False), (Channel.SMS, False)


@pytest.mark.parametrize(
    ("outcomes", "allowed"),
    [
        ((), False),
        ((FAILED_CALL, FAILED_CALL), False),
        ((FAILED_CALL, FAILED_CALL, FAILED_CALL), True),
        ((FAILED_CALL, FAILED_VISIT, FAILED_CALL), True),
        ((FAILED_CALL, FAILED_CALL, FAILED_CALL, ANSWERED_CALL), False),
        ((FAILED_CALL, ANSWERED_CALL, FAILED_CALL, FAILED_CALL), False),
        ((ANSWERED_CALL, FAILED_CALL, FAILED_CALL, FAILED_CALL), True),
        ((FAILED_CALL, FAILED_CALL, TEXT, FAILED_CALL), True),  # texts are not attempts to reach
    ],
)
def test_cn_third_party_after_3_consecutive_failed_attempts(
    outcomes: tuple[tuple[Channel, bool], ...], allowed: bool
) -> None:
    decision = decide_at(
        "cn",
        Customer(time_zone=SHANGHAI),
        Channel.CALL,
        local(SHANGHAI, TUESDAY, 10, 0),
        _attempts(*outcomes),
        recipient=Recipient.THIRD_PARTY,
        purpose=Purpose.LOCATE_DEBTOR,
        number_id="referee-1",
    )
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule_id == "cn.third_party_unreachable"
        assert decision.next_allowed is None


def test_cn_third_party_when_the_own_number_is_invalid() -> None:
    customer = Customer(time_zone=SHANGHAI, own_number_invalid=True)
    decision = decide_at(
        "cn",
        customer,
        Channel.CALL,
        local(SHANGHAI, TUESDAY, 10, 0),
        recipient=Recipient.THIRD_PARTY,
        purpose=Purpose.LOCATE_DEBTOR,
    )
    assert decision.allowed


def test_third_party_never_for_collection() -> None:
    history = _attempts(FAILED_CALL, FAILED_CALL, FAILED_CALL)
    decision = decide_at(
        "cn",
        Customer(time_zone=SHANGHAI),
        Channel.CALL,
        local(SHANGHAI, TUESDAY, 10, 0),
        history,
        recipient=Recipient.THIRD_PARTY,
    )
    assert decision.rule_id == "cn.third_party_purpose"


@pytest.mark.parametrize("pack_id", ["id", "vn"])
def test_consumer_only_packs_never_contact_third_parties(pack_id: str) -> None:
    zone = PACK_ZONES[pack_id]
    decision = decide_at(
        pack_id,
        Customer(time_zone=zone, own_number_invalid=True),
        Channel.CALL,
        local(zone, TUESDAY, 10, 0),
        recipient=Recipient.THIRD_PARTY,
        purpose=Purpose.LOCATE_DEBTOR,
    )
    assert decision.rule_id == f"{pack_id}.third_party"


@pytest.mark.parametrize("pack_id", PACK_IDS)
def test_third_parties_never_receive_debt_details(pack_id: str) -> None:
    assert load_pack(pack_id).id == pack_id
    assert may_contain_debt_details(Recipient.THIRD_PARTY) is False
    assert may_contain_debt_details(Recipient.DEBTOR) is True


# --- visit records ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack_id", "recording_ref", "accepted"),
    [
        ("cn", None, False),
        ("cn", "  ", False),
        ("cn", "rec-7f3a", True),
        ("us", None, True),
        ("uk", None, True),
    ],
)
def test_visit_outcome_recording(pack_id: str, recording_ref: str | None, accepted: bool) -> None:
    decision = check_visit_outcome(load_pack(pack_id), recording_ref=recording_ref)
    assert decision.allowed is accepted
    if not accepted:
        assert decision.rule_id == "cn.visit_recording"
