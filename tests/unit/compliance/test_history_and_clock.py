"""The history summary and the cached zone clock agree with the slow, obvious computations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.compliance import Channel, ContactHistory, ContactRecord, Recipient
from shared.compliance.clock import SECONDS_PER_DAY, ZoneClock, clock_for, weekday_of
from shared.compliance.history import CHANNEL_INDEX

TRICKY_ZONES = [
    "America/New_York",
    "Europe/Dublin",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Pacific/Apia",
    "Pacific/Pago_Pago",
    "Pacific/Tongatapu",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/Santiago",
]
INSTANTS = st.integers(
    min_value=int(datetime(2005, 1, 1, tzinfo=UTC).timestamp()),
    max_value=int(datetime(2030, 1, 1, tzinfo=UTC).timestamp()),
)


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(TRICKY_ZONES), ts=INSTANTS)
def test_cached_offset_matches_zoneinfo(zone: str, ts: int) -> None:
    clock = clock_for(zone)
    expected = datetime.fromtimestamp(ts, ZoneInfo(zone)).utcoffset()
    assert expected is not None
    assert clock.offset(ts) == int(expected.total_seconds())
    # And again from the cache, now that the day is learnt.
    assert clock.offset(ts) == int(expected.total_seconds())


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(TRICKY_ZONES), ts=INSTANTS)
def test_first_instant_at_or_after_a_local_time(zone: str, ts: int) -> None:
    clock = clock_for(zone)
    local = ts - ts % 900  # quarter hours hit every transition of these zones
    instant = clock.first_instant_at_or_after(local)
    assert clock.local_seconds(instant) >= local
    # Earliest: one second before, the wall clock still read less (in folds and gaps alike).
    assert clock.local_seconds(instant - 1) < local


def test_weekday_of_local_days() -> None:
    for offset in range(14):
        moment = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=offset)
        assert weekday_of(int(moment.timestamp()) // SECONDS_PER_DAY) == moment.weekday()


def test_spring_forward_gap_maps_to_the_transition() -> None:
    clock = ZoneClock("America/New_York")
    gap_local = int(datetime(2026, 3, 8, 2, 30, tzinfo=UTC).timestamp())  # 02:30 wall clock never happens
    instant = clock.first_instant_at_or_after(gap_local)
    assert instant == int(datetime(2026, 3, 8, 7, 0, tzinfo=UTC).timestamp())  # 03:00 EDT


def test_fall_back_fold_takes_the_first_instant() -> None:
    clock = ZoneClock("Europe/Dublin")
    fold_local = int(datetime(2026, 10, 25, 1, 30, tzinfo=UTC).timestamp())  # 01:30 happens twice
    instant = clock.first_instant_at_or_after(fold_local)
    assert instant == int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp())  # 01:30 IST


def _record(hours: int, channel: Channel = Channel.CALL, connected: bool = False) -> ContactRecord:
    return ContactRecord(
        channel,
        datetime(2026, 3, 10, tzinfo=UTC) + timedelta(hours=hours),
        connected=connected,
        number_id="n1",
    )


RECORDS = st.lists(
    st.builds(_record, st.integers(0, 24 * 10), st.sampled_from(list(Channel)), st.booleans()), max_size=25
)


@settings(max_examples=100, deadline=None)
@given(records=RECORDS, zone=st.sampled_from(TRICKY_ZONES))
def test_incremental_history_equals_rebuilt(records: list[ContactRecord], zone: str) -> None:
    built = ContactHistory(zone, records)
    grown = ContactHistory(zone)
    for record in records:
        grown = grown.with_contact(record)
    assert {day: tally.counts for day, tally in built.days.items()} == {
        day: tally.counts for day, tally in grown.days.items()
    }
    assert built.recent_outcomes == grown.recent_outcomes
    assert built.last_day == grown.last_day


@settings(max_examples=100, deadline=None)
@given(records=RECORDS, zone=st.sampled_from(TRICKY_ZONES))
def test_day_tallies_use_the_customers_local_day(records: list[ContactRecord], zone: str) -> None:
    history = ContactHistory(zone, records)
    for day, tally in history.days.items():
        on_day = [
            record
            for record in records
            if (record.at.astimezone(ZoneInfo(zone)).date() - datetime(1970, 1, 1).date()).days == day
        ]
        calls = [record for record in on_day if record.channel is Channel.CALL]
        assert tally.counts[CHANNEL_INDEX[Channel.CALL] * 2] == len(calls)
        assert tally.counts[CHANNEL_INDEX[Channel.CALL] * 2 + 1] == sum(record.connected for record in calls)


def test_with_contact_leaves_the_original_untouched() -> None:
    history = ContactHistory("Asia/Shanghai", [_record(1)])
    grown = history.with_contact(_record(2))
    assert len(history) == 1
    assert len(grown) == 2
    assert sum(tally.counts[2] for tally in history.days.values()) == 1


def test_pruned_keeps_what_rules_look_at() -> None:
    records = [_record(hours) for hours in range(0, 24 * 20, 12)]
    history = ContactHistory("Asia/Shanghai", records)
    pruned = history.pruned(keep_from=datetime(2026, 3, 25, tzinfo=UTC), keep_latest=2)
    assert all(record.at >= datetime(2026, 3, 25, tzinfo=UTC) for record in pruned.records[2:])
    assert len(pruned) < len(history)


def test_third_party_records_do_not_count_for_the_debtor() -> None:
    record = ContactRecord(
        Channel.CALL,
        datetime(2026, 3, 10, 3, tzinfo=UTC),
        connected=True,
        recipient=Recipient.THIRD_PARTY,
        number_id="ref",
    )
    history = ContactHistory("Asia/Shanghai", [record])
    (tally,) = history.days.values()
    assert tally.counts == [0] * 6
    assert tally.per_number == {("ref", CHANNEL_INDEX[Channel.CALL]): 1}
    assert history.recent_outcomes == ()


def test_naive_record_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ContactRecord(Channel.CALL, datetime(2026, 3, 10, 9, 0))
