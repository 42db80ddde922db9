"""Timing a route in a given order: waiting, breaks, shift end, just-in-time departure."""

from services.planner import routing as r
from services.planner.routing.schedule import service_start, timeline

HOME = r.Location(0, 0)
LUNCH = r.Break(window=(100, 200), duration_s=30)


def job(name: str, windows: list[tuple[int, int]], service: int = 10) -> r.Job:
    return r.Job(name, HOME, service, windows)


def test_the_break_is_taken_while_waiting_for_a_window_rather_than_delaying_the_visit() -> None:
    vehicle = r.Vehicle("A", HOME, None, (0, 1000), breaks=[LUNCH])
    # Done with the first visit at 80, 10 s of travel, the next window opens at 150.
    plan = timeline(vehicle, [job("a", [(70, 80)]), job("b", [(150, 160)])], [5, 10, 5])
    assert plan is not None
    (taken,) = plan.breaks
    assert taken.start_s >= 100 and taken.start_s + 30 <= 150
    assert [s.service_start_s for s in plan.stops] == [70, 150]
    assert plan.start_s == 65  # left home just in time for the first window


def test_a_break_on_the_way_adds_its_duration_to_the_leg() -> None:
    vehicle = r.Vehicle("A", HOME, None, (0, 1000), breaks=[r.Break((0, 1000), 30)])
    plan = timeline(vehicle, [job("a", [(0, 1000)])], [50, 50])
    assert plan is not None
    assert plan.end_s == 50 + 10 + 50 + 30


def test_no_schedule_when_the_day_would_end_after_the_shift_or_the_break_window_is_missed() -> None:
    assert timeline(r.Vehicle("A", HOME, None, (0, 100)), [job("a", [(0, 100)])], [50, 50]) is None
    tight = r.Vehicle("A", HOME, None, (0, 1000), breaks=[r.Break((0, 5), 30)])
    assert timeline(tight, [job("a", [(0, 100)], service=20)], [10, 10]) is not None  # break first
    assert timeline(tight, [job("a", [(0, 9)])], [10, 10]) is None  # break and visit both due at once


def test_service_starts_in_the_first_window_still_open() -> None:
    assert service_start(50, [(10, 40), (60, 90)]) == 60
    assert service_start(20, [(10, 40), (60, 90)]) == 20
    assert service_start(95, [(10, 40), (60, 90)]) is None
