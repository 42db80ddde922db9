"""Scheduling helpers place contacts only where `decide` allows them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from shared.compliance import (
    Channel,
    ContactHistory,
    ContactRecord,
    Customer,
    LocalWindow,
    allowed_intervals,
    allowed_windows_on_date,
    decide,
    earliest_allowed_in_window,
    load_pack,
    next_allowed,
)
from tests.unit.compliance.support import CERTIFIED, TUESDAY, local, request

SHANGHAI, NEW_YORK = "Asia/Shanghai", "America/New_York"


def test_earliest_allowed_in_window() -> None:
    pack = load_pack("cn")
    customer = Customer(time_zone=SHANGHAI)
    start = request(Channel.CALL, local(SHANGHAI, TUESDAY, 6, 0))
    assert earliest_allowed_in_window(pack, customer, start, local(SHANGHAI, TUESDAY, 9, 0)) == local(
        SHANGHAI, TUESDAY, 8, 0
    )
    assert earliest_allowed_in_window(pack, customer, start, local(SHANGHAI, TUESDAY, 8, 0)) is None


def test_next_allowed_is_the_request_time_when_allowed() -> None:
    pack = load_pack("cn")
    at = local(SHANGHAI, TUESDAY, 9, 0, 30)
    assert next_allowed(pack, Customer(time_zone=SHANGHAI), request(Channel.CALL, at)) == at


def test_planner_windows_for_a_local_date() -> None:
    pack = load_pack("cn")
    windows = allowed_windows_on_date(
        pack, Customer(time_zone=SHANGHAI), Channel.VISIT, TUESDAY, agent=CERTIFIED
    )
    assert windows == [(local(SHANGHAI, TUESDAY, 8, 0), local(SHANGHAI, TUESDAY, 22, 0))]


def test_planner_windows_are_empty_on_a_refused_day() -> None:
    pack = load_pack("cn")
    national_day = date(2025, 10, 1)
    assert (
        allowed_windows_on_date(
            pack, Customer(time_zone=SHANGHAI), Channel.VISIT, national_day, agent=CERTIFIED
        )
        == []
    )


def test_planner_windows_with_consent_crossing_midnight() -> None:
    customer = Customer(time_zone=SHANGHAI, consented_hours=LocalWindow(time(22, 0), time(1, 0)))
    windows = allowed_windows_on_date(load_pack("cn"), customer, Channel.CALL, TUESDAY)
    assert windows == [
        (local(SHANGHAI, TUESDAY, 0, 0), local(SHANGHAI, TUESDAY, 1, 0)),
        (local(SHANGHAI, TUESDAY, 8, 0), local(SHANGHAI, TUESDAY + timedelta(days=1), 0, 0)),
    ]


def test_windows_on_a_dst_day_are_in_true_utc() -> None:
    pack = load_pack("us")
    customer = Customer(time_zone=NEW_YORK)
    windows = allowed_windows_on_date(pack, customer, Channel.CALL, date(2026, 3, 8))
    assert windows == [(datetime(2026, 3, 8, 12, 0, tzinfo=UTC), datetime(2026, 3, 9, 1, 0, tzinfo=UTC))]


def test_a_skipped_local_day_has_no_windows() -> None:
    """Samoa skipped 30 December 2011 when it crossed the date line."""
    pack = load_pack("cn")
    customer = Customer(time_zone="Pacific/Apia")
    assert allowed_windows_on_date(pack, customer, Channel.CALL, date(2011, 12, 30)) == []
    assert allowed_windows_on_date(pack, customer, Channel.CALL, date(2011, 12, 31))


def test_allowed_intervals_merge_and_follow_days() -> None:
    pack = load_pack("ie")
    customer = Customer(time_zone="Europe/Dublin")
    saturday = date(2026, 3, 14)
    start = request(Channel.CALL, local("Europe/Dublin", saturday, 0, 0))
    intervals = allowed_intervals(
        pack, customer, start, local("Europe/Dublin", saturday + timedelta(days=3), 0, 0)
    )
    assert [(start.date(), start.hour, end.hour) for start, end in intervals] == [
        (saturday, 9, 21),
        (date(2026, 3, 16), 9, 21),  # Sunday skipped; Tuesday 17 March is St Patrick's Day
    ]


def test_placing_contacts_one_by_one_respects_the_cap() -> None:
    """A dialer that adds each placed call to the history never exceeds the daily cap."""
    pack = load_pack("cn")
    customer = Customer(time_zone=SHANGHAI)
    history = ContactHistory(SHANGHAI)
    placed: list[datetime] = []
    cursor = local(SHANGHAI, TUESDAY, 0, 0)
    for _ in range(8):
        when = earliest_allowed_in_window(
            pack, customer, request(Channel.CALL, cursor), cursor + timedelta(days=3), history
        )
        assert when is not None
        assert decide(pack, customer, request(Channel.CALL, when), history).allowed
        placed.append(when)
        history = history.with_contact(ContactRecord(Channel.CALL, when, number_id="n1"))
        cursor = when + timedelta(minutes=30)
    per_day = [
        sum(1 for when in placed if when.astimezone(cursor.tzinfo).date() == day)
        for day in (TUESDAY, TUESDAY + timedelta(days=1))
    ]
    assert per_day == [6, 2]
