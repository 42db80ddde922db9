"""Properties over random customers, zones (DST and date-line), channels, times and histories.

1. whatever time the policy proposes (next allowed, earliest in a window, planner windows),
   `decide` allows at that time — and one second earlier it did not (earliest);
2. whenever `decide` allows, the local time is inside the pack's hours (or the consented /
   past-DPD hours where the pack allows them) and is not a rest day or public holiday —
   checked against zoneinfo and the holidays package directly, not the engine's caches.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.compliance import (
    PACK_IDS,
    Agent,
    BreathingSpace,
    Channel,
    ContactHistory,
    ContactRecord,
    ContactRequest,
    Customer,
    Decision,
    LocalWindow,
    Purpose,
    Recipient,
    RulePack,
    allowed_windows_on_date,
    decide,
    earliest_allowed_in_window,
    load_pack,
)

ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Dublin",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Pacific/Apia",
    "Pacific/Pago_Pago",
    "Pacific/Tongatapu",
    "Asia/Shanghai",
    "Asia/Jakarta",
    "Asia/Jayapura",
    "Asia/Kolkata",
    "Asia/Manila",
    "Asia/Ho_Chi_Minh",
]
FIRST = int(datetime(2011, 1, 1, tzinfo=UTC).timestamp())
LAST = int(datetime(2027, 12, 31, tzinfo=UTC).timestamp())
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY_DATES = sorted(
    {
        day
        for country in ("CN", "ID", "IE")
        for day in holidays.country_holidays(country, years=range(2011, 2028))
    }
)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rarely(times: int = 1, out_of: int = 40) -> st.SearchStrategy[bool]:
    # sampled_from rather than integers: Hypothesis favours small integers, not list positions.
    return st.sampled_from([False] * (out_of - times) + [True] * times)


def quarter_hours() -> st.SearchStrategy[time]:
    return st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@st.composite
def customers(draw: st.DrawFn, zone: str, around: date) -> Customer:
    breathing = None
    if draw(rarely()):
        start = around + timedelta(days=draw(st.integers(-90, 10)))
        crisis = draw(st.booleans())
        ended = (
            around + timedelta(days=draw(st.integers(-40, 20))) if crisis and draw(st.booleans()) else None
        )
        breathing = BreathingSpace(start=start, mental_health_crisis=crisis, treatment_ended=ended)
    care_hold = draw(rarely())
    return Customer(
        time_zone=zone,
        dpd=draw(st.integers(0, 120)),
        cease_contact=draw(rarely()),
        dispute=draw(rarely()),
        deceased=draw(rarely()),
        bankruptcy=draw(rarely()),
        care_hold=care_hold,
        care_hold_until=around + timedelta(days=draw(st.integers(-5, 20)))
        if care_hold and draw(st.booleans())
        else None,
        vulnerable=draw(rarely(4)),
        breathing_space=breathing,
        own_number_invalid=draw(rarely()),
        consented_hours=draw(st.builds(LocalWindow, quarter_hours(), quarter_hours()))
        if draw(rarely(8))
        else None,
        opted_out_channels=draw(st.frozensets(st.sampled_from(list(Channel)), max_size=1))
        if draw(rarely())
        else frozenset(),
        language=draw(st.sampled_from([None, None, "zh-CN", "en"])),
    )


@st.composite
def agents(draw: st.DrawFn, around: date) -> Agent | None:
    if draw(rarely(4)):
        return None
    valid_until = None if draw(rarely()) else around + timedelta(days=draw(st.integers(-3, 400)))
    return Agent(
        hardship_trained=draw(st.booleans()),
        certification_valid_until=valid_until,
        languages=draw(
            st.sampled_from([frozenset({"zh", "en"}), frozenset({"zh"}), frozenset({"en", "id"})])
        ),
    )


@st.composite
def histories(draw: st.DrawFn, zone: str, at: int) -> ContactHistory:
    # Sparse weeks exercise 7-day windows and pauses; dense hours exercise the daily caps.
    before, after = draw(st.sampled_from([(8 * 86_400, 86_400), (8 * 86_400, 86_400), (10 * 3600, 4 * 3600)]))
    records = draw(
        st.lists(
            st.builds(
                ContactRecord,
                channel=st.sampled_from(list(Channel)),
                at=st.integers(at - before, at + after).map(lambda ts: datetime.fromtimestamp(ts, UTC)),
                connected=st.booleans(),
                number_id=st.sampled_from(["n1", "n2", None]),
                recipient=st.sampled_from([Recipient.DEBTOR] * 5 + [Recipient.THIRD_PARTY]),
            ),
            max_size=24,
        )
    )
    return ContactHistory(zone, records)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RulePack, Customer, ContactRequest, ContactHistory]:
    pack = load_pack(draw(st.sampled_from(PACK_IDS)))
    zone = draw(st.sampled_from(ZONES))
    ts = draw(st.integers(FIRST, LAST))
    if draw(rarely(8)):
        # Aim at a public holiday of a pack that has a holiday rule (the zone may shift the local date).
        holiday = draw(st.sampled_from(HOLIDAY_DATES))
        ts = int(datetime(holiday.year, holiday.month, holiday.day, tzinfo=UTC).timestamp()) + draw(
            st.integers(0, 86_399)
        )
    around = datetime.fromtimestamp(ts, UTC).date()
    customer = draw(customers(zone, around))
    recipient = draw(st.sampled_from([Recipient.DEBTOR] * 9 + [Recipient.THIRD_PARTY]))
    usual = Purpose.COLLECTION if recipient is Recipient.DEBTOR else Purpose.LOCATE_DEBTOR
    request = ContactRequest(
        channel=draw(st.sampled_from(list(Channel))),
        at=datetime.fromtimestamp(ts, UTC),
        purpose=draw(st.sampled_from([usual] * 8 + list(Purpose))),
        recipient=recipient,
        number_id=draw(st.sampled_from(["n1", "n2", None])),
        agent=draw(agents(around)),
    )
    return pack, customer, request, draw(histories(zone, ts))


# --- the independent oracle ---------------------------------------------------------------------------


def _minutes(span: str) -> tuple[int, int]:
    start, end = span.split("-")
    return int(start[:2]) * 60 + int(start[3:]), int(end[:2]) * 60 + int(end[3:])


def _window_minutes(window: LocalWindow) -> list[tuple[int, int]]:
    start = window.start.hour * 60 + window.start.minute
    end = window.end.hour * 60 + window.end.minute
    if start == end:
        return [(0, 1440)]
    return [(start, end)] if start < end else [(start, 1440), (0, end)]


@functools.cache
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


def oracle_open(pack: RulePack, customer: Customer, channel: Channel, at: datetime) -> bool:
    """Inside the hours that apply to this customer, not a rest day, not a public holiday."""
    spec = pack.spec
    wall = at.astimezone(ZoneInfo(customer.time_zone))
    minute = wall.hour * 60 + wall.minute
    spans = [_minutes(span) for span in spec.quiet_hours.spans(channel)]
    if spec.quiet_hours.consent_extends_hours and customer.consented_hours is not None and spans:
        spans += _window_minutes(customer.consented_hours)
    if (
        spec.dpd_hours
        and channel in spec.dpd_hours.channels
        and customer.dpd > spec.dpd_hours.after_dpd
        and spans
    ):
        spans += [_minutes(span) for span in spec.dpd_hours.hours]
    if not any(start <= minute < end for start, end in spans):
        return False
    if (
        spec.rest_day
        and channel in spec.rest_day.channels
        and WEEKDAYS[wall.weekday()] in spec.rest_day.weekdays
    ):
        return False
    holiday = spec.public_holiday
    return not (
        holiday
        and channel in holiday.channels
        and wall.date() in _public_holidays(holiday.calendar, wall.year)
    )


def _at(request: ContactRequest, moment: datetime) -> ContactRequest:
    return ContactRequest(
        request.channel, moment, request.purpose, request.recipient, request.number_id, request.agent
    )


def _names_its_pack(decision: Decision, pack: RulePack) -> None:
    assert decision.pack_id == pack.id
    assert decision.pack_version == pack.version
    assert decision.rule_id.startswith(f"{pack.id}.")


# --- the properties -----------------------------------------------------------------------------------


@SETTINGS
@given(scenario=scenarios())
def test_allowed_means_inside_hours_and_not_a_rest_day(
    scenario: tuple[RulePack, Customer, ContactRequest, ContactHistory],
) -> None:
    pack, customer, request, history = scenario
    decision = decide(pack, customer, request, history)
    _names_its_pack(decision, pack)
    if decision.allowed:
        assert decision.next_allowed == request.at
        assert oracle_open(pack, customer, request.channel, request.at)


@SETTINGS
@given(scenario=scenarios())
def test_next_allowed_is_allowed_and_earliest(
    scenario: tuple[RulePack, Customer, ContactRequest, ContactHistory],
) -> None:
    pack, customer, request, history = scenario
    decision = decide(pack, customer, request, history)
    if decision.allowed or decision.next_allowed is None:
        return
    proposed = decision.next_allowed
    assert proposed > request.at
    later = decide(pack, customer, _at(request, proposed), history)
    assert later.allowed, (decision, later)
    assert oracle_open(pack, customer, request.channel, proposed)
    assert not decide(pack, customer, _at(request, proposed - timedelta(seconds=1)), history).allowed


@SETTINGS
@given(scenario=scenarios(), hours=st.integers(1, 24 * 10))
def test_earliest_in_window_is_allowed(
    scenario: tuple[RulePack, Customer, ContactRequest, ContactHistory], hours: int
) -> None:
    pack, customer, request, history = scenario
    window_end = request.at + timedelta(hours=hours)
    placed = earliest_allowed_in_window(pack, customer, request, window_end, history)
    if placed is None:
        decision = decide(pack, customer, request, history)
        assert decision.next_allowed is None or decision.next_allowed >= window_end
        return
    assert request.at <= placed < window_end
    assert decide(pack, customer, _at(request, placed), history).allowed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_planner_windows_are_allowed_throughout(
    scenario: tuple[RulePack, Customer, ContactRequest, ContactHistory],
) -> None:
    pack, customer, request, history = scenario
    local_date = request.at.astimezone(ZoneInfo(customer.time_zone)).date()
    windows = allowed_windows_on_date(
        pack,
        customer,
        request.channel,
        local_date,
        history=history,
        agent=request.agent,
        purpose=request.purpose,
        recipient=request.recipient,
        number_id=request.number_id,
    )
    for start, end in windows:
        assert start < end
        for moment in (start, start + (end - start) / 2, end - timedelta(seconds=1)):
            moment = moment.replace(microsecond=0)
            assert decide(pack, customer, _at(request, moment), history).allowed
            assert moment.astimezone(ZoneInfo(customer.time_zone)).date() == local_date
