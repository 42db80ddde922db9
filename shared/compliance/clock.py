"""Local time in the customer's IANA zone, as integers, fast enough for every hot path.

A decision needs only the customer's local calendar day and minute. Building a
`datetime` per decision costs more than the rest of the decision, so each zone keeps
its UTC offset per UTC day: a day without a transition (all but a few a year) answers
with one dict lookup; a day with a transition is searched once for the transition
instant and answered exactly from then on.

Conventions used across the package:
- `ts`: seconds since the Unix epoch (UTC), an int;
- `day`: days since 1970-01-01 of a *local* calendar date (`local_seconds // 86400`);
- `minute`: minute of the local day, 0..1439.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SECONDS_PER_DAY = 86_400
MINUTES_PER_DAY = 1_440
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# 1970-01-01 was a Thursday: (day + 3) % 7 gives Monday = 0 … Sunday = 6.
_WEEKDAY_SHIFT = 3
# A bounded cache: a long-running process touching many distinct days starts afresh.
_MAX_CACHED_DAYS = 200_000


def weekday_of(day: int) -> int:
    """Monday = 0 … Sunday = 6 for a local day number."""
    return (day + _WEEKDAY_SHIFT) % 7


def date_of(day: int) -> date:
    return date.fromordinal(day + EPOCH_ORDINAL)


def day_of(local_date: date) -> int:
    return local_date.toordinal() - EPOCH_ORDINAL


class ZoneClock:
    """UTC offsets of one IANA zone, cached per UTC day."""

    __slots__ = ("_lock", "_transitions", "_uniform", "key", "zone")

    def __init__(self, key: str) -> None:
        self.key = key
        self.zone = ZoneInfo(key)
        # utc_day -> offset (seconds) for days whose offset is constant.
        self._uniform: dict[int, int] = {}
        # utc_day -> (transition instant, offset before, offset after) for the few others.
        self._transitions: dict[int, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def exact_offset(self, ts: int) -> int:
        """The zone's offset at `ts`, straight from zoneinfo (slow path and tests)."""
        offset = datetime.fromtimestamp(ts, self.zone).utcoffset()
        assert offset is not None  # a ZoneInfo always knows its offset
        return int(offset.total_seconds())

    def offset(self, ts: int) -> int:
        """UTC offset (seconds) in force at `ts`."""
        cached = self._uniform.get(ts // SECONDS_PER_DAY)
        if cached is not None:
            return cached
        return self._offset_uncached(ts)

    def local_seconds(self, ts: int) -> int:
        """Seconds since the epoch of the local wall clock at `ts`."""
        cached = self._uniform.get(ts // SECONDS_PER_DAY)
        if cached is None:
            cached = self._offset_uncached(ts)
        return ts + cached

    def _offset_uncached(self, ts: int) -> int:
        utc_day = ts // SECONDS_PER_DAY
        transition = self._transitions.get(utc_day)
        if transition is None:
            with self._lock:
                learnt = self._learn_day(utc_day)
            if isinstance(learnt, int):
                return learnt
            transition = learnt
        instant, before, after = transition
        return before if ts < instant else after

    def _learn_day(self, utc_day: int) -> int | tuple[int, int, int]:
        """Cache and return the day's offset, or (transition instant, before, after)."""
        if len(self._uniform) + len(self._transitions) > _MAX_CACHED_DAYS:
            self._uniform.clear()
            self._transitions.clear()
        first = utc_day * SECONDS_PER_DAY
        last = first + SECONDS_PER_DAY - 1
        before, after = self.exact_offset(first), self.exact_offset(last)
        if before == after:
            # Two transitions that cancel out within one UTC day do not occur in tzdata.
            self._uniform[utc_day] = before
            return before
        transition = (self._first_instant_with(first, last, before), before, after)
        self._transitions[utc_day] = transition
        return transition

    def _first_instant_with(self, low: int, high: int, before: int) -> int:
        """First instant in (low, high] whose offset differs from `before`."""
        while high - low > 1:
            middle = (low + high) // 2
            if self.exact_offset(middle) == before:
                low = middle
            else:
                high = middle
        return high

    def piece(self, start: int, limit: int) -> tuple[int, int]:
        """(end, offset) of the constant-offset piece starting at `start`, capped at `limit`.

        A piece ends at the next UTC midnight or at the day's transition, whichever is
        first: tzdata never has two transitions within one UTC day.
        """
        utc_day = start // SECONDS_PER_DAY
        midnight = (utc_day + 1) * SECONDS_PER_DAY
        offset = self._uniform.get(utc_day)
        if offset is None:
            offset = self._offset_uncached(start)
            transition = self._transitions.get(utc_day)
            if transition is not None and start < transition[0]:
                midnight = transition[0]
        return min(limit, midnight), offset

    def first_instant_at_or_after(self, local: int) -> int:
        """Earliest UTC instant whose local wall clock reads `local` or later.

        In a fold (clocks go back) that is the first of the two instants; in a gap (clocks
        go forward, or a whole day skipped as in Apia 2011) it is the transition itself.
        """
        # Offsets are within ±1 day of any instant whose wall clock reads `local`.
        candidates = {self.offset(local + shift) for shift in (-SECONDS_PER_DAY, 0, SECONDS_PER_DAY)}
        valid = [local - offset for offset in candidates if self.offset(local - offset) == offset]
        if valid:
            return min(valid)
        instants = [local - offset for offset in candidates]
        return self._first_change(min(instants), max(instants) + 1)

    def _first_change(self, start: int, limit: int) -> int:
        """First instant in (start, limit] whose offset differs from the offset at `start`."""
        offset, instant = self.offset(start), start
        while instant < limit:
            instant = self.piece(instant, limit)[0]
            if instant < limit and self.offset(instant) != offset:
                return instant
        return limit


_clocks: dict[str, ZoneClock] = {}
_clocks_lock = threading.Lock()


def clock_for(time_zone: str) -> ZoneClock:
    """The shared clock of an IANA zone (raises ZoneInfoNotFoundError for unknown keys)."""
    clock = _clocks.get(time_zone)
    if clock is None:
        with _clocks_lock:
            clock = _clocks.get(time_zone)
            if clock is None:
                clock = ZoneClock(time_zone)
                _clocks[time_zone] = clock
    return clock


def utc_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
