"""Decide whether a contact may happen, and when it may instead.

`decide` is the hot path: for an ordinary customer it converts the proposed instant to a
local day and minute (integer arithmetic over a cached offset), reads one byte of the
channel's minute table, checks a weekday bitmask and a holiday set, and counts a few
tallies. Everything else (suppression, third parties, agents, vulnerability) is looked at
only when the customer or the request has something to look at.

Scheduling uses the same rules: `_allowed_spans` walks forward from an instant through
constant-UTC-offset pieces and local days, yielding the UTC spans in which every rule
allows the contact. `next_allowed`, `earliest_allowed_in_window`, `allowed_intervals` and
`allowed_windows_on_date` are built on it, so a scheduled time is allowed by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from shared.compliance.clock import SECONDS_PER_DAY, day_of, utc_datetime, weekday_of
from shared.compliance.history import ContactHistory
from shared.compliance.model import (
    Agent,
    Channel,
    ContactRequest,
    Customer,
    CustomerState,
    Decision,
    Purpose,
    Recipient,
    Suppression,
)
from shared.compliance.packs import ChannelRules, CompiledCap, Rule, RulePack

NEVER = -1  # resume day meaning "waiting alone will not make this allowed"
HORIZON_DAYS = 400  # how far next_allowed looks past the latest known resume day
_DAY = SECONDS_PER_DAY
_VISIT, _CALL = Channel.VISIT, Channel.CALL

# The rule that refused, and the local day from which the search may find an allowed time
# (NEVER: waiting alone will not help). Hours refusals give today: later today may do.
Refusal = tuple[Rule, int]


def decide(
    pack: RulePack, customer: Customer, request: ContactRequest, history: ContactHistory | None = None
) -> Decision:
    """Allowed or not, with the deciding rule, its pack and version, and the next allowed time."""
    rules = pack.channels[request.channel]
    ts = request.ts
    clock = customer.clock
    if history is not None and history.time_zone != clock.key:
        raise ValueError("the contact history was summarised in another time zone than the customer's")
    local = clock.local_seconds(ts)
    day = local // _DAY
    if customer.state or request.needs_eligibility or not rules.permitted:
        refusal = _eligibility(pack, rules, customer, request, history, day)
        if refusal is not None:
            return _refused(pack, customer, request, history, refusal)
    if customer.consent_spans is None and (rules.dpd_after is None or customer.dpd <= rules.dpd_after):
        table = rules.table
    else:
        table = rules.hours_for(customer)[0]
    if not table[(local % _DAY) // 60]:
        return _refused(pack, customer, request, history, (rules.quiet_hours, day))
    if rules.has_day_rules or (history is not None and history.days):
        refusal = _day_rules(rules, customer, request, history, day)
        if refusal is not None:
            return _refused(pack, customer, request, history, refusal)
    allowed = rules.allowed
    return Decision(True, allowed.id, allowed.reason, pack.id, pack.version, request.at)


def next_allowed(
    pack: RulePack, customer: Customer, request: ContactRequest, history: ContactHistory | None = None
) -> datetime | None:
    """Earliest instant (UTC) >= request.at at which `decide` allows this contact, else None."""
    return _first_allowed(pack, customer, request, history, None)


def earliest_allowed_in_window(
    pack: RulePack,
    customer: Customer,
    request: ContactRequest,
    window_end: datetime,
    history: ContactHistory | None = None,
) -> datetime | None:
    """Earliest allowed instant in [request.at, window_end), or None if there is none.

    Schedulers (planner for visits, followup for calls and SMS) call this to place a
    contact: whatever it returns, `decide` allows.
    """
    return _first_allowed(pack, customer, request, history, _epoch(window_end))


def allowed_intervals(
    pack: RulePack,
    customer: Customer,
    request: ContactRequest,
    until: datetime,
    history: ContactHistory | None = None,
) -> list[tuple[datetime, datetime]]:
    """Every maximal UTC interval in [request.at, until) in which `decide` allows the contact.

    The history is taken as given: placing several contacts in these intervals can reach a
    cap, so add each placed contact to the history (`with_contact`) before placing the next.
    """
    merged: list[list[int]] = []
    for start, end in _allowed_spans(pack, customer, request, history, request.ts, _epoch(until)):
        if merged and merged[-1][1] == start:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(utc_datetime(start), utc_datetime(end)) for start, end in merged]


def allowed_windows_on_date(
    pack: RulePack,
    customer: Customer,
    channel: Channel,
    local_date: date,
    *,
    history: ContactHistory | None = None,
    agent: Agent | None = None,
    purpose: Purpose = Purpose.COLLECTION,
    recipient: Recipient = Recipient.DEBTOR,
    number_id: str | None = None,
) -> list[tuple[datetime, datetime]]:
    """The allowed UTC intervals within the customer's local calendar date (planner windows)."""
    day = day_of(local_date)
    start = customer.clock.first_instant_at_or_after(day * _DAY)
    end = customer.clock.first_instant_at_or_after((day + 1) * _DAY)
    request = ContactRequest(channel, utc_datetime(start), purpose, recipient, number_id, agent)
    return allowed_intervals(pack, customer, request, utc_datetime(end), history)


def check_visit_outcome(pack: RulePack, *, recording_ref: str | None) -> Decision:
    """Whether a visit outcome may be recorded: packs that require it need a recording reference."""
    if pack.requires_visit_recording and not (recording_ref and recording_ref.strip()):
        rule = pack.rules["visit_recording"]
        return Decision(False, rule.id, rule.reason, pack.id, pack.version, None)
    rule = pack.rules["allowed"]
    return Decision(
        True, rule.id, "visit outcome meets the pack's record requirements", pack.id, pack.version, None
    )


def may_contain_debt_details(recipient: Recipient) -> bool:
    """Whether a message or briefing for this recipient may mention the debt.

    Never for a third party, under every pack (CBA 2026, NIFA, CONC 7.9.7R, Reg F §1006.10,
    SBV 18/2019): templates and visit briefings for third-party contacts call this.
    """
    return recipient is Recipient.DEBTOR


# --- eligibility: suppression, channel, third parties, agents, vulnerability ----------------


def _eligibility(
    pack: RulePack,
    rules: ChannelRules,
    customer: Customer,
    request: ContactRequest,
    history: ContactHistory | None,
    day: int,
) -> Refusal | None:
    state = customer.state
    if state & _SUPPRESSING:
        refusal = _suppression(pack, customer, request, day)
        if refusal is not None:
            return refusal
    if not rules.permitted:
        return pack.rules["channel_not_permitted"], NEVER
    if state & _OPTED_OUT and request.channel in customer.opted_out_channels:
        return pack.rules["channel_opt_out"], NEVER
    if request.recipient is Recipient.THIRD_PARTY:
        refusal = _third_party(pack, customer, request, history)
        if refusal is not None:
            return refusal
    if request.channel is _VISIT or request.agent is not None:
        refusal = _agent(pack, customer, request, day)
        if refusal is not None:
            return refusal
    if state & _VULNERABLE:
        return _vulnerable(pack, request)
    return None


# Plain ints: IntFlag arithmetic costs a microsecond per operation in the hot path.
_SUPPRESSING = int(
    CustomerState.DECEASED
    | CustomerState.BANKRUPTCY
    | CustomerState.BREATHING_SPACE
    | CustomerState.CEASE_CONTACT
    | CustomerState.DISPUTE
    | CustomerState.CARE_HOLD
)
_OPTED_OUT = int(CustomerState.OPTED_OUT)
_VULNERABLE = int(CustomerState.VULNERABLE)


def _suppression(pack: RulePack, customer: Customer, request: ContactRequest, day: int) -> Refusal | None:
    """Every active suppression must allow the request (through a documented exception)."""
    for kind, active, resume in (
        (Suppression.DECEASED, customer.deceased, NEVER),
        (Suppression.BANKRUPTCY, customer.bankruptcy, NEVER),
        (Suppression.BREATHING_SPACE, *_breathing_space(pack, customer, day)),
        (Suppression.CEASE_CONTACT, customer.cease_contact, NEVER),
        (Suppression.DISPUTE, customer.dispute, NEVER),
        (Suppression.CARE_HOLD, *_care_hold(customer, day)),
    ):
        if active and (request.purpose, request.channel) not in pack.exemptions[kind]:
            return pack.rules[kind.value], resume
    return None


def _breathing_space(pack: RulePack, customer: Customer, day: int) -> tuple[bool, int]:
    """(in force on `day`, first local day it no longer is, or NEVER while treatment lasts)."""
    space = customer.breathing_space
    if space is None:
        return False, NEVER
    spec = pack.spec.suppression.breathing_space
    start = day_of(space.start)
    if space.mental_health_crisis:
        if space.treatment_ended is None:
            return day >= start, NEVER
        end = day_of(space.treatment_ended) + spec.mental_health_days_after_treatment
    else:
        end = start + spec.days
    return start <= day < end, end


def _care_hold(customer: Customer, day: int) -> tuple[bool, int]:
    if not customer.care_hold:
        return False, NEVER
    if customer.care_hold_until is None:
        return True, NEVER
    resume = day_of(customer.care_hold_until) + 1  # the hold covers its last day
    return day < resume, resume


def _third_party(
    pack: RulePack, customer: Customer, request: ContactRequest, history: ContactHistory | None
) -> Refusal | None:
    spec = pack.spec.third_party
    if not spec.allowed:
        return pack.rules["third_party"], NEVER
    if request.purpose not in spec.purposes:
        return pack.rules["third_party_purpose"], NEVER
    if spec.invalid_number_suffices and customer.own_number_invalid:
        return None
    if _trailing_failed_attempts(history, spec.counted_channels) >= spec.failed_attempts:
        return None
    # Only new failed attempts to the debtor can change this, not the passing of time.
    return pack.rules["third_party_unreachable"], NEVER


def _trailing_failed_attempts(history: ContactHistory | None, channels: list[Channel]) -> int:
    """Consecutive failed attempts to the debtor, counting back from the latest one."""
    failed = 0
    for channel, connected in reversed(history.recent_outcomes if history is not None else ()):
        if channel not in channels:
            continue
        if connected:
            break
        failed += 1
    return failed


def _agent(pack: RulePack, customer: Customer, request: ContactRequest, day: int) -> Refusal | None:
    agent = request.agent
    if agent is None:
        return pack.rules["agent_required"], NEVER
    spec = pack.spec.agents
    if spec.certification_required and agent.certified_through_day < day:
        return pack.rules["agent_certification"], NEVER
    if (
        request.channel is _VISIT
        and spec.require_customer_language
        and customer.language
        and not agent.speaks(customer.language)
    ):
        return pack.rules["agent_language"], NEVER
    return None


def _vulnerable(pack: RulePack, request: ContactRequest) -> Refusal | None:
    spec = pack.spec.vulnerable
    hardship_trained = request.agent is not None and request.agent.hardship_trained
    if request.channel is _VISIT:
        if spec.visit == "refuse":
            return pack.rules["vulnerable_visit"], NEVER
        if not hardship_trained:
            return pack.rules["vulnerable_agent"], NEVER
    elif request.channel is _CALL and spec.call == "hardship_trained_agent" and not hardship_trained:
        return pack.rules["vulnerable_agent"], NEVER
    return None


# --- day rules: rest days, holidays, caps, pauses ----------------------------------------------


def _day_rules(
    rules: ChannelRules,
    customer: Customer,
    request: ContactRequest,
    history: ContactHistory | None,
    day: int,
) -> Refusal | None:
    if rules.closed_weekdays >> weekday_of(day) & 1:
        assert rules.rest_day_rule is not None
        return rules.rest_day_rule, day + 1
    if rules.holidays is not None:
        calendar = rules.holidays if customer.holiday_subdivision is None else rules.holidays_for(customer)
        if calendar is not None and calendar.is_holiday(day):
            assert rules.holiday_rule is not None
            return rules.holiday_rule, day + 1
    if history is None or not history.days:
        return None
    for cap in rules.caps:
        if _cap_reached(cap, history, day, request.number_id):
            return cap.rule, day + 1
    for pause in rules.pauses:
        conversation = history.latest_conversation_on_or_before(day)
        if conversation is not None and day - conversation < pause.days:
            return pause.rule, conversation + pause.days
    return None


def _cap_reached(cap: CompiledCap, history: ContactHistory, day: int, number_id: str | None) -> bool:
    # Without a number id a per-number cap counts every number: never fewer than the truth.
    key = (cap.number_channels, number_id) if cap.per_number and number_id is not None else cap.debtor_key
    if cap.window_days == 1:
        tally = history.days.get(day)
        return tally is not None and tally.count(key) >= cap.limit
    width = cap.window_days
    if history.last_day <= day:
        # Later windows that contain `day` hold no other contact: the one ending today decides.
        return history.count_between(key, day - width + 1, day) >= cap.limit
    return any(
        history.count_between(key, first, first + width - 1) >= cap.limit
        for first in range(day - width + 1, day + 1)
    )


# --- refusals and the search for the next allowed time -------------------------------------


def _refused(
    pack: RulePack,
    customer: Customer,
    request: ContactRequest,
    history: ContactHistory | None,
    refusal: Refusal,
) -> Decision:
    rule, resume = refusal
    when = None if resume == NEVER else next_allowed(pack, customer, request, history)
    return Decision(False, rule.id, rule.reason, pack.id, pack.version, when)


def _first_allowed(
    pack: RulePack,
    customer: Customer,
    request: ContactRequest,
    history: ContactHistory | None,
    end: int | None,
) -> datetime | None:
    span = next(_allowed_spans(pack, customer, request, history, request.ts, end), None)
    if span is None:
        return None
    # Allowed right away: hand back the caller's own datetime (sub-second part included).
    return request.at if span[0] == request.ts else utc_datetime(span[0])


def _day_verdict(
    pack: RulePack,
    rules: ChannelRules,
    customer: Customer,
    request: ContactRequest,
    history: ContactHistory | None,
    day: int,
) -> int | None:
    """None when the whole local day passes every non-hour rule, else the day to resume (or NEVER)."""
    refusal = None
    if customer.state or request.needs_eligibility or not rules.permitted:
        refusal = _eligibility(pack, rules, customer, request, history, day)
    if refusal is None:
        refusal = _day_rules(rules, customer, request, history, day)
    if refusal is None:
        return None
    resume = refusal[1]
    return NEVER if resume == NEVER else max(resume, day + 1)


def _allowed_spans(
    pack: RulePack,
    customer: Customer,
    request: ContactRequest,
    history: ContactHistory | None,
    start: int,
    end: int | None,
) -> Iterator[tuple[int, int]]:
    """UTC [start, end) spans, in order, in which every rule allows the contact.

    Walks constant-offset pieces of the customer's zone (at most a UTC day each, split at
    DST transitions), so that within a piece local time = UTC + offset exactly; for each
    local day in a piece, the day's verdict is taken once and its allowed minute runs are
    mapped back to UTC. `end=None` searches HORIZON_DAYS past the latest resume day.
    """
    rules = pack.channels[request.channel]
    clock = customer.clock
    runs = rules.hours_for(customer)[1]
    if history is not None and history.time_zone != clock.key:
        raise ValueError("the contact history was summarised in another time zone than the customer's")
    limit = start + HORIZON_DAYS * _DAY if end is None else end
    verdicts: dict[int, int | None] = {}
    instant = start
    while instant < limit:
        piece_end, offset = clock.piece(instant, limit)
        last_day = (piece_end - 1 + offset) // _DAY
        jump_to: int | None = None
        for day in range((instant + offset) // _DAY, last_day + 1):
            if day not in verdicts:
                verdicts[day] = _day_verdict(pack, rules, customer, request, history, day)
            resume = verdicts[day]
            if resume == NEVER:
                return
            if resume is None:
                yield from _runs_in_utc(runs, day * _DAY - offset, instant, piece_end)
            elif resume > last_day + 1:
                jump_to = resume  # skip straight to it (a breathing space's end, say)
                break
        instant = piece_end
        if jump_to is not None:
            instant = max(instant, clock.first_instant_at_or_after(jump_to * _DAY))
            if end is None:
                limit = max(limit, instant + HORIZON_DAYS * _DAY)


def _runs_in_utc(
    runs: tuple[tuple[int, int], ...], midnight: int, low: int, high: int
) -> Iterator[tuple[int, int]]:
    """A day's allowed minute runs as UTC spans, clipped to [low, high) (one offset throughout)."""
    for first, last in runs:
        span_start = max(low, midnight + first * 60)
        span_end = min(high, midnight + last * 60)
        if span_start < span_end:
            yield span_start, span_end


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return int(moment.timestamp() // 1)
