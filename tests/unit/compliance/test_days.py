"""Rest days and public holidays (from the holidays package), per pack and channel."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.compliance import Channel, Customer, load_pack
from shared.compliance.clock import date_of, day_of
from shared.compliance.holiday_calendar import calendar_for, holiday_days
from tests.unit.compliance.support import PACK_ZONES, assert_names_pack, decide_at, local

CHINA_NATIONAL_DAY = date(2025, 10, 1)  # a Wednesday
INDONESIAN_INDEPENDENCE_DAY = date(2026, 8, 17)  # a Monday
ST_PATRICKS_DAY = date(2026, 3, 17)  # a Tuesday
SATURDAY, SUNDAY = date(2026, 3, 14), date(2026, 3, 15)


@pytest.mark.parametrize(
    ("pack_id", "day", "channel", "rule"),
    [
        # China: the law has no holiday bar; the humane default keeps visits off public holidays.
        ("cn", CHINA_NATIONAL_DAY, Channel.VISIT, "cn.public_holiday"),
        ("cn", CHINA_NATIONAL_DAY, Channel.CALL, None),
        ("cn", CHINA_NATIONAL_DAY, Channel.SMS, None),
        # Indonesia: no collection on national holidays, whatever the channel.
        ("id", INDONESIAN_INDEPENDENCE_DAY, Channel.VISIT, "id.public_holiday"),
        ("id", INDONESIAN_INDEPENDENCE_DAY, Channel.CALL, "id.public_holiday"),
        ("id", INDONESIAN_INDEPENDENCE_DAY, Channel.SMS, "id.public_holiday"),
        # Ireland: s.46 covers visits and calls, not texts.
        ("ie", ST_PATRICKS_DAY, Channel.VISIT, "ie.public_holiday"),
        ("ie", ST_PATRICKS_DAY, Channel.CALL, "ie.public_holiday"),
        ("ie", ST_PATRICKS_DAY, Channel.SMS, None),
        # Sundays.
        ("id", SUNDAY, Channel.CALL, "id.rest_day"),
        ("id", SUNDAY, Channel.SMS, "id.rest_day"),
        ("id", SUNDAY, Channel.VISIT, "id.rest_day"),
        ("ie", SUNDAY, Channel.CALL, "ie.rest_day"),
        ("ie", SUNDAY, Channel.VISIT, "ie.rest_day"),
        ("ie", SUNDAY, Channel.SMS, None),
        ("uk", SUNDAY, Channel.CALL, None),
        ("us", SUNDAY, Channel.CALL, None),
        ("cn", SUNDAY, Channel.VISIT, None),
        ("vn", SUNDAY, Channel.CALL, None),
        # Saturdays are working days for Indonesia (Mon–Sat) and Ireland.
        ("id", SATURDAY, Channel.CALL, None),
        ("ie", SATURDAY, Channel.CALL, None),
    ],
)
def test_rest_days_and_holidays(pack_id: str, day: date, channel: Channel, rule: str | None) -> None:
    zone = PACK_ZONES[pack_id]
    decision = decide_at(pack_id, Customer(time_zone=zone), channel, local(zone, day, 11, 0))
    assert decision.allowed is (rule is None), decision
    assert decision.rule_id == (rule or f"{pack_id}.allowed")
    assert_names_pack(decision, pack_id)


def test_irish_holiday_next_allowed_is_the_next_working_morning() -> None:
    zone = "Europe/Dublin"
    decision = decide_at("ie", Customer(time_zone=zone), Channel.CALL, local(zone, ST_PATRICKS_DAY, 10, 0))
    assert decision.next_allowed == local(zone, date(2026, 3, 18), 9, 0)


def test_irish_saturday_evening_call_waits_for_monday() -> None:
    zone = "Europe/Dublin"
    decision = decide_at("ie", Customer(time_zone=zone), Channel.CALL, local(zone, SATURDAY, 21, 0))
    assert decision.next_allowed == local(zone, date(2026, 3, 16), 9, 0)


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"])
def test_indonesian_independence_day_in_every_zone(zone: str) -> None:
    decision = decide_at(
        "id", Customer(time_zone=zone), Channel.CALL, local(zone, INDONESIAN_INDEPENDENCE_DAY, 9, 0)
    )
    assert decision.rule_id == "id.public_holiday"
    assert decision.next_allowed == local(zone, date(2026, 8, 18), 8, 0)


def test_indonesian_saturday_evening_waits_for_monday() -> None:
    zone = "Asia/Jakarta"
    decision = decide_at("id", Customer(time_zone=zone), Channel.SMS, local(zone, SATURDAY, 20, 0))
    assert decision.rule_id == "id.quiet_hours"
    assert decision.next_allowed == local(zone, date(2026, 3, 16), 8, 0)


def test_the_holiday_is_the_customers_local_date() -> None:
    """01:30 UTC on 17 Aug is 08:30 on Independence Day in Jakarta: refused as a holiday."""
    zone = "Asia/Jakarta"
    instant = datetime(2026, 8, 17, 1, 30, tzinfo=UTC)  # 08:30 WIB on the 17th
    assert decide_at("id", Customer(time_zone=zone), Channel.CALL, instant).rule_id == "id.public_holiday"


def test_china_golden_week_visits_resume_after_the_statutory_days() -> None:
    zone = "Asia/Shanghai"
    decision = decide_at(
        "cn", Customer(time_zone=zone), Channel.VISIT, local(zone, CHINA_NATIONAL_DAY, 10, 0)
    )
    statutory = holiday_days("CN", None, 2025)
    first_free = next(
        date_of(day)
        for day in range(day_of(CHINA_NATIONAL_DAY), day_of(CHINA_NATIONAL_DAY) + 30)
        if day not in statutory
    )
    assert decision.next_allowed == local(zone, first_free, 8, 0)


def test_holiday_sets_are_cached_per_country_and_year() -> None:
    assert calendar_for("IE") is calendar_for("IE")
    holiday_days("IE", None, 2026)
    hits = holiday_days.cache_info().hits
    holiday_days("IE", None, 2026)
    assert holiday_days.cache_info().hits == hits + 1


def test_calendar_loads_years_on_demand_both_ways() -> None:
    calendar = calendar_for("IE", None)
    assert calendar.is_holiday(day_of(date(2031, 3, 17)))
    assert calendar.is_holiday(day_of(date(2019, 12, 25)))
    assert not calendar.is_holiday(day_of(date(2025, 3, 18)))


def test_subdivision_holidays_when_the_customer_names_one() -> None:
    """An override may bar uk calls on bank holidays; Scotland's St Andrew's Day is its own."""
    pack = load_pack(
        "uk",
        overrides={
            "override_id": "test-bank-holidays",
            "public_holiday": {"sources": ["fieldcollect_policy"], "calendar": "GB", "channels": ["call"]},
        },
    )
    zone = "Europe/London"
    st_andrews_observed = date(2026, 11, 30)  # Monday, a Scottish bank holiday
    scotland = Customer(time_zone=zone, holiday_subdivision="SCT")
    england = Customer(time_zone=zone, holiday_subdivision="ENG")
    assert (
        decide_at(pack, scotland, Channel.CALL, local(zone, st_andrews_observed, 10, 0)).rule_id
        == "uk.public_holiday"
    )
    assert decide_at(pack, england, Channel.CALL, local(zone, st_andrews_observed, 10, 0)).allowed
