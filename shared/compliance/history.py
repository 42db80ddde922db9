"""The contact history a decision counts, pre-aggregated per local day of the customer.

Regimes count different things (attempts per number, connected calls per debtor, placed
calls in 7 days, visits as contacts), always per *local* calendar day. So the history is
built for one customer's time zone and keeps, per local day, the attempts and connected
contacts per channel, and the attempts per number; plus the days of telephone
conversations and the latest attempts' outcomes. A decision then reads a handful of
integers. The caller keeps one `ContactHistory` per customer (all lenders' and agencies'
contacts about the debt, merged) and extends it with `with_contact` as contacts happen
or are scheduled; `pruned` drops what no rule looks at any more.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from shared.compliance.clock import SECONDS_PER_DAY, ZoneClock, clock_for
from shared.compliance.model import Channel, Recipient

CHANNEL_INDEX = {Channel.VISIT: 0, Channel.CALL: 1, Channel.SMS: 2}
# DayTally.counts layout: [channel * 2] attempts, [channel * 2 + 1] connected.
ATTEMPTS, CONNECTED = 0, 1
# (tally slots, None) counts the debtor's contacts; (channel indexes, number id) one number's.
SeriesKey = tuple[tuple[int, ...], str | None]
# How many latest debtor attempts are kept for "N consecutive failed attempts" rules.
RECENT_OUTCOMES = 32


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact that happened (or is firmly scheduled).

    `connected`: a call answered by the person called (a telephone conversation), a visit
    where the customer was met, an SMS delivered. `number_id` is the opaque id of the
    number dialled or texted.
    """

    channel: Channel
    at: datetime
    connected: bool = False
    number_id: str | None = None
    recipient: Recipient = Recipient.DEBTOR
    ts: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("ContactRecord.at must be timezone-aware")
        object.__setattr__(self, "ts", int(self.at.timestamp() // 1))


class DayTally:
    """What happened on one local day: debtor counts per channel, attempts per number."""

    __slots__ = ("counts", "per_number")

    def __init__(self) -> None:
        self.counts = [0] * (2 * len(CHANNEL_INDEX))
        self.per_number: dict[tuple[str, int], int] = {}

    def count(self, key: SeriesKey) -> int:
        channels_or_slots, number_id = key
        if number_id is None:
            return sum(self.counts[slot] for slot in channels_or_slots)
        return sum(self.per_number.get((number_id, channel), 0) for channel in channels_or_slots)

    def copy(self) -> DayTally:
        twin = DayTally()
        twin.counts = list(self.counts)
        twin.per_number = dict(self.per_number)
        return twin

    def add(self, record: ContactRecord) -> None:
        channel = CHANNEL_INDEX[record.channel]
        if record.number_id is not None:
            key = (record.number_id, channel)
            self.per_number[key] = self.per_number.get(key, 0) + 1
        if record.recipient is Recipient.DEBTOR:
            self.counts[channel * 2 + ATTEMPTS] += 1
            self.counts[channel * 2 + CONNECTED] += record.connected


class ContactHistory:
    """Contacts with one customer, summarised per local day of the customer's zone.

    Immutable by convention: `with_contact`, `extended` and `pruned` return new histories
    and never change this one, so one history can be shared between decisions and threads.
    """

    __slots__ = ("_clock", "_conversation_days", "_records", "_series", "days", "last_day", "recent_outcomes")

    def __init__(self, time_zone: str, records: Iterable[ContactRecord] = ()) -> None:
        self._clock: ZoneClock = clock_for(time_zone)
        self._records: tuple[ContactRecord, ...] = tuple(sorted(records, key=_by_time))
        self.days: dict[int, DayTally] = {}
        self.last_day = -(10**9)
        self._conversation_days: list[int] = []
        # (channel, connected) of the latest debtor-directed attempts, oldest first.
        self.recent_outcomes: tuple[tuple[Channel, bool], ...] = ()
        self._series: dict[SeriesKey, tuple[list[int], list[int]]] = {}
        self._summarise()

    @property
    def time_zone(self) -> str:
        return self._clock.key

    @property
    def records(self) -> tuple[ContactRecord, ...]:
        return self._records

    def __len__(self) -> int:
        return len(self._records)

    def with_contact(self, record: ContactRecord) -> ContactHistory:
        """This history plus one contact; O(days kept) when contacts arrive in time order."""
        if self._records and record.ts < self._records[-1].ts:
            return self.extended((record,))
        copy = ContactHistory.__new__(ContactHistory)
        copy._clock = self._clock
        copy._records = (*self._records, record)
        copy.days = dict(self.days)
        copy.last_day = self.last_day
        copy._conversation_days = list(self._conversation_days)
        copy.recent_outcomes = self.recent_outcomes
        copy._series = {}
        copy._add(record, copy_day=True)
        return copy

    def extended(self, records: Iterable[ContactRecord]) -> ContactHistory:
        return ContactHistory(self.time_zone, (*self._records, *records))

    def pruned(self, keep_from: datetime, keep_latest: int = RECENT_OUTCOMES) -> ContactHistory:
        """Drop records before `keep_from` except the latest `keep_latest` (for N-failed-attempt rules).

        The longest window a shipped pack counts is 7 local days; keeping 8 days before
        "now" keeps every decision the same.
        """
        cutoff = int(keep_from.timestamp() // 1)
        kept = [
            record
            for index, record in enumerate(self._records)
            if record.ts >= cutoff or index >= len(self._records) - keep_latest
        ]
        return ContactHistory(self.time_zone, kept)

    def day_of(self, ts: int) -> int:
        return self._clock.local_seconds(ts) // SECONDS_PER_DAY

    def latest_conversation_on_or_before(self, day: int) -> int | None:
        """Local day of the latest telephone conversation with the debtor on or before `day`."""
        index = bisect.bisect_right(self._conversation_days, day)
        return self._conversation_days[index - 1] if index else None

    def count_between(self, key: SeriesKey, first_day: int, last_day: int) -> int:
        """Contacts counted by `key` on local days first_day..last_day (inclusive).

        `key` is (tally slots, None) for debtor counts or (channels, number id) for one
        number's attempts. Prefix sums per key are built on first use, so multi-day
        windows cost two bisections however long the window.
        """
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._prefix_sums(key)
        days, prefix = series
        return prefix[bisect.bisect_right(days, last_day)] - prefix[bisect.bisect_left(days, first_day)]

    def _prefix_sums(self, key: SeriesKey) -> tuple[list[int], list[int]]:
        days = sorted(self.days)
        prefix = [0]
        for day in days:
            prefix.append(prefix[-1] + self.days[day].count(key))
        return days, prefix

    def _summarise(self) -> None:
        for record in self._records:
            self._add(record, copy_day=False)

    def _add(self, record: ContactRecord, *, copy_day: bool) -> None:
        """Count one record that is not earlier than any already counted."""
        day = self.day_of(record.ts)
        tally = self.days.get(day)
        if tally is None:
            tally = DayTally()
        elif copy_day:
            tally = tally.copy()  # the previous history still shares the old tally
        tally.add(record)
        self.days[day] = tally
        self.last_day = max(self.last_day, day)
        if record.recipient is Recipient.DEBTOR:
            self.recent_outcomes = (
                *self.recent_outcomes[1 - RECENT_OUTCOMES :],
                (record.channel, record.connected),
            )
            if record.channel is Channel.CALL and record.connected:
                bisect.insort(self._conversation_days, day)


def _by_time(record: ContactRecord) -> int:
    return record.ts
