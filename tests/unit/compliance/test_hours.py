"""Contact hours per pack and channel, at the boundary minutes, in the customer's own zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from shared.compliance import Channel, Customer, LocalWindow, decide, load_pack
from tests.unit.compliance.support import PACK_ZONES, TUESDAY, assert_names_pack, decide_at, local, request

# (pack, channel, first allowed local minute, first refused local minute after it)
HOURS = [
    (pack_id, channel, start, end)
    for pack_id, start, end in [
        ("cn", (8, 0), (22, 0)),
        ("us", (8, 0), (21, 0)),
        ("uk", (8, 0), (21, 0)),
        ("ie", (9, 0), (21, 0)),
        ("in", (8, 0), (19, 0)),
        ("id", (8, 0), (20, 0)),
        ("ph", (6, 0), (22, 0)),
        ("vn", (7, 0), (21, 0)),
    ]
    for channel in Channel
]


def _minus_one_minute(hour_minute: tuple[int, int]) -> tuple[int, int]:
    moment = datetime.combine(TUESDAY, time(*hour_minute)) - timedelta(minutes=1)
    return moment.hour, moment.minute


@pytest.mark.parametrize(("pack_id", "channel", "start", "end"), HOURS)
def test_boundary_minutes(
    pack_id: str, channel: Channel, start: tuple[int, int], end: tuple[int, int]
) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone)
    cases = [
        (_minus_one_minute(start), False),
        (start, True),
        (_minus_one_minute(end), True),
        (end, False),
    ]
    for (hour, minute), expected in cases:
        decision = decide_at(pack_id, customer, channel, local(zone, TUESDAY, hour, minute))
        assert decision.allowed is expected, (pack_id, channel, hour, minute, decision)
        assert_names_pack(decision, pack_id)
        if not expected:
            assert decision.rule_id == f"{pack_id}.quiet_hours"


@pytest.mark.parametrize(("pack_id", "channel", "start", "end"), HOURS)
def test_next_allowed_after_quiet_hours(
    pack_id: str, channel: Channel, start: tuple[int, int], end: tuple[int, int]
) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone)
    early = decide_at(pack_id, customer, channel, local(zone, TUESDAY, *_minus_one_minute(start)))
    assert early.next_allowed == local(zone, TUESDAY, *start)
    late = decide_at(pack_id, customer, channel, local(zone, TUESDAY, *end))
    assert late.next_allowed == local(zone, TUESDAY + timedelta(days=1), *start)


@pytest.mark.parametrize(("hour", "minute"), [(7, 59), (8, 0), (21, 59), (22, 0)])
def test_cn_boundaries_21_59_and_22_00(hour: int, minute: int) -> None:
    decision = decide_at(
        "cn", Customer(time_zone="Asia/Shanghai"), Channel.CALL, local("Asia/Shanghai", TUESDAY, hour, minute)
    )
    assert decision.allowed is ((8, 0) <= (hour, minute) < (22, 0))


def test_seconds_before_the_window_opens_are_refused() -> None:
    zone = "Asia/Shanghai"
    decision = decide_at("cn", Customer(time_zone=zone), Channel.SMS, local(zone, TUESDAY, 7, 59, 59))
    assert not decision.allowed
    assert decision.next_allowed == local(zone, TUESDAY, 8, 0)


def test_time_is_the_customers_not_the_callers() -> None:
    """One UTC instant, two customers: allowed in New York, refused in Los Angeles (05:30)."""
    instant = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)  # 09:30 EDT, 06:30 PDT
    new_york = decide_at("us", Customer(time_zone="America/New_York"), Channel.CALL, instant)
    los_angeles = decide_at("us", Customer(time_zone="America/Los_Angeles"), Channel.CALL, instant)
    assert new_york.allowed
    assert not los_angeles.allowed
    assert los_angeles.next_allowed == local("America/Los_Angeles", TUESDAY, 8, 0)


def test_indonesia_spans_three_zones() -> None:
    instant = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)  # 07:30 WIB, 09:30 WIT
    assert not decide_at("id", Customer(time_zone="Asia/Jakarta"), Channel.CALL, instant).allowed
    assert decide_at("id", Customer(time_zone="Asia/Jayapura"), Channel.CALL, instant).allowed


def test_hours_hold_across_the_us_spring_forward() -> None:
    """2026-03-08 (a Sunday) New York jumps 02:00→03:00: 08:00 local is 12:00 UTC, not 13:00."""
    zone = "America/New_York"
    customer = Customer(time_zone=zone)
    night = decide_at("us", customer, Channel.CALL, local(zone, date(2026, 3, 8), 1, 30))
    assert night.next_allowed == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_hours_hold_across_the_irish_autumn_fallback() -> None:
    zone = "Europe/Dublin"
    customer = Customer(time_zone=zone)
    saturday = date(2026, 10, 24)  # clocks go back the next night
    late = decide_at("ie", customer, Channel.SMS, local(zone, saturday, 21, 0))
    assert late.next_allowed == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)  # 09:00 GMT on the Sunday


@pytest.mark.parametrize(
    ("pack_id", "consent_counts"),
    [
        ("cn", True),
        ("us", True),
        ("uk", True),
        ("ie", True),
        ("ph", True),
        ("in", False),
        ("id", False),
        ("vn", False),
    ],
)
def test_consented_hours_only_where_the_law_allows_consent(pack_id: str, consent_counts: bool) -> None:
    zone = PACK_ZONES[pack_id]
    customer = Customer(time_zone=zone, consented_hours=LocalWindow(time(5, 0), time(6, 0)))
    decision = decide_at(pack_id, customer, Channel.CALL, local(zone, TUESDAY, 5, 30))
    assert decision.allowed is consent_counts
    assert load_pack(pack_id).spec.quiet_hours.consent_extends_hours is consent_counts


def test_consent_window_crossing_midnight() -> None:
    zone = "Asia/Shanghai"
    customer = Customer(time_zone=zone, consented_hours=LocalWindow(time(22, 0), time(1, 0)))
    assert decide_at("cn", customer, Channel.CALL, local(zone, TUESDAY, 23, 30)).allowed
    assert decide_at("cn", customer, Channel.CALL, local(zone, TUESDAY, 0, 59)).allowed
    assert not decide_at("cn", customer, Channel.CALL, local(zone, TUESDAY, 1, 0)).allowed


@pytest.mark.parametrize(
    ("dpd", "hour", "minute", "allowed"),
    [
        (60, 5, 59, False),
        (61, 5, 59, True),
        (60, 6, 0, True),
        (60, 21, 59, True),
        (60, 22, 0, False),
        (61, 22, 0, True),
        (61, 3, 0, True),
        (0, 3, 0, False),
    ],
)
def test_ph_hours_lifted_past_60_dpd(dpd: int, hour: int, minute: int, allowed: bool) -> None:
    zone = "Asia/Manila"
    decision = decide_at(
        "ph", Customer(time_zone=zone, dpd=dpd), Channel.CALL, local(zone, TUESDAY, hour, minute)
    )
    assert decision.allowed is allowed
    assert_names_pack(decision, "ph")


def test_ph_consent_also_lifts_the_limit() -> None:
    zone = "Asia/Manila"
    customer = Customer(time_zone=zone, dpd=10, consented_hours=LocalWindow(time(22, 0), time(23, 0)))
    assert decide_at("ph", customer, Channel.CALL, local(zone, TUESDAY, 22, 30)).allowed


def test_naive_times_are_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        request(Channel.CALL, datetime(2026, 3, 10, 9, 0))


def test_allowed_decision_returns_the_proposed_time() -> None:
    zone = "Asia/Shanghai"
    at = local(zone, TUESDAY, 10, 15, 30)
    decision = decide(load_pack("cn"), Customer(time_zone=zone), request(Channel.CALL, at))
    assert decision.allowed
    assert decision.rule_id == "cn.allowed"
    assert decision.next_allowed == at
