"""Public holidays as sets of local day numbers, from the `holidays` package, cached per year.

Building a year of holidays takes milliseconds (lunar calendars, observed-day rules), so
each (country, subdivision, year) is built once per process; a calendar then answers
"is this local day a public holiday?" with one range check and one set lookup.
"""

from __future__ import annotations

import functools
import threading

import holidays

from shared.compliance.clock import date_of, day_of


@functools.lru_cache(maxsize=1024)
def holiday_days(country: str, subdivision: str | None, year: int) -> frozenset[int]:
    """Local day numbers of the public holidays of one country (and subdivision) in one year."""
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(day_of(holiday) for holiday in calendar if holiday.year == year)


class HolidayCalendar:
    """Public holidays of one country/subdivision, loaded a whole year at a time."""

    __slots__ = ("_days", "_first_loaded", "_lock", "_past_loaded", "country", "subdivision")

    def __init__(self, country: str, subdivision: str | None = None) -> None:
        self.country = country
        self.subdivision = subdivision
        self._days: set[int] = set()
        # Loaded years always form one contiguous range [_first_loaded, _past_loaded) of days.
        self._first_loaded = 0
        self._past_loaded = 0
        self._lock = threading.Lock()

    def is_holiday(self, day: int) -> bool:
        if self._first_loaded <= day < self._past_loaded:
            return day in self._days
        with self._lock:
            self._load_through(day)
        return day in self._days

    def _load_through(self, day: int) -> None:
        year = date_of(day).year
        if self._first_loaded == self._past_loaded:
            first, last = year, year
        else:
            first = min(year, date_of(self._first_loaded).year)
            last = max(year, date_of(self._past_loaded - 1).year)
        for each in range(first, last + 1):
            self._days |= holiday_days(self.country, self.subdivision, each)
        self._first_loaded = day_of(date_of(0).replace(year=first))
        self._past_loaded = day_of(date_of(0).replace(year=last + 1))


_calendars: dict[tuple[str, str | None], HolidayCalendar] = {}
_calendars_lock = threading.Lock()


def calendar_for(country: str, subdivision: str | None = None) -> HolidayCalendar:
    key = (country, subdivision)
    calendar = _calendars.get(key)
    if calendar is None:
        with _calendars_lock:
            calendar = _calendars.setdefault(key, HolidayCalendar(country, subdivision))
    return calendar
