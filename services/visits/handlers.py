"""The visits service's use cases: apply the planner's assignments; the agent's route,
check-ins, outcomes and cash; the supervisors' views. Every function works on a connection
inside the transaction its entrypoint opened."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from services.visits import proof, repository
from services.visits.idempotency import Written, check_replay
from services.visits.models import (
    CashConfirmation,
    CashConfirmationIn,
    CashConfirmationView,
    CashDayView,
    CheckInIn,
    CheckInView,
    DepositIn,
    DepositView,
    FlaggedCheckInView,
    OutcomeIn,
    OutcomeView,
    TeamVisitView,
    VisitDetail,
    VisitView,
)
from services.visits.policy import VisitFacts, VisitPolicy, facts_of
from shared.errors import Conflict, Invalid, NotFound
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue, outbox_row

SOURCE = "/fieldcollect/visits"
CASH_KINDS = ("paid_on_site", "partial_payment")
# Device clocks are wrong; an outcome dated further ahead than this is refused, not guessed at.
MAX_AHEAD = timedelta(days=1)
# A clock reset to its epoch, not a late delivery: an offline queue never holds anything older.
EARLIEST_RECORD = datetime(2000, 1, 1, tzinfo=UTC)
log = logging.getLogger(__name__)


class KnownVisits:
    """What never changes about an agent's visit, remembered per process: account, zone,
    language, country, currency and dpd. An assignment is never overwritten (save_assignment
    inserts or does nothing), so these facts cannot go stale; status is not among them. Only
    rows read with the agent's id in the WHERE enter, under (agent, visit)."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._facts: dict[tuple[str, UUID], Mapping[str, Any]] = {}

    def get(self, agent_id: str, visit_id: UUID) -> Mapping[str, Any] | None:
        return self._facts.get((agent_id, visit_id))

    def remember(self, agent_id: str, visit: Any) -> Mapping[str, Any]:
        briefing, address = visit["briefing"], visit["address"]
        facts = {
            "account_id": visit["account_id"],
            "time_zone": visit["time_zone"],
            "language": visit["language"],
            "address": {"country": address.get("country")},
            "briefing": {"currency": briefing.get("currency"), "dpd": briefing.get("dpd")},
        }
        if len(self._facts) >= self._size:
            self._facts.pop(next(iter(self._facts)))  # the oldest entry
        self._facts[(agent_id, visit["visit_id"])] = facts
        return facts


@dataclass(frozen=True, slots=True)
class Visits:
    """What the use cases need besides a connection, built once per process."""

    policy: VisitPolicy
    limits: proof.Limits
    max_promise_days: int
    max_queue_age: timedelta = timedelta(days=30)
    cash_code_ttl: timedelta = timedelta(minutes=10)
    cash_code_attempts: int = 5
    known_visits: KnownVisits = field(default_factory=KnownVisits)


class InvalidFields(Invalid):
    """Several fields wrong at once: every one is reported, not only the first."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems[0][1], problems[0][0])
        self.problems = problems


# --- assignments (consumed from collections.assignments.v1) -----------------------------


async def on_visit_assigned(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.VisitAssigned)
    await repository.save_assignment(conn, event.data)


async def on_visit_rescheduled(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.VisitRescheduled)
    if not await repository.reschedule_visit(conn, event.data):
        log.info(
            "reschedule not applied: visit unknown, cancelled or done", extra={"event_id": str(event.id)}
        )


async def on_visit_cancelled(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.VisitCancelled)
    await repository.cancel_visit(conn, event.data.visit_id, event.data.reason)


# --- the agent's visits -------------------------------------------------------------------


async def my_visits(conn: asyncpg.Connection, agent_id: str, plan_date: date | None) -> list[VisitView]:
    return [VisitView(**row) for row in await repository.agent_visits(conn, agent_id, plan_date)]


async def route(conn: asyncpg.Connection, agent_id: str, plan_date: date, zone: str) -> bytes:
    """The day's visits in route order (cancelled ones left out), as the response's JSON bytes."""
    return (await repository.route_json(conn, agent_id, plan_date, zone)).encode()


async def visit_detail(conn: asyncpg.Connection, agent_id: str, visit_id: UUID) -> VisitDetail:
    visit = await _own_visit(conn, agent_id, visit_id)
    check_ins = await repository.visit_check_ins(conn, visit_id)
    outcomes = await repository.visit_outcomes(conn, visit_id)
    return VisitDetail(
        **dict(visit),
        check_ins=[CheckInView(**dict(r)) for r in check_ins],
        outcomes=[_outcome_view(r) for r in outcomes],
    )


async def _own_visit(conn: asyncpg.Connection, agent_id: str, visit_id: UUID) -> Any:
    visit = await repository.agent_visit(conn, agent_id, visit_id)
    if visit is None:
        raise NotFound("no such visit", "visit_id")
    return visit


def _same_request(stored: Any, agent_id: str, request_fingerprint: str, field: str) -> None:
    if stored["agent_id"] != agent_id:
        raise Conflict(f"{field} already used for a different request", field)
    check_replay(stored["fingerprint"], request_fingerprint, field)


# --- check-ins ---------------------------------------------------------------------------


async def check_in(
    conn: asyncpg.Connection,
    ctx: Visits,
    agent_id: str,
    visit_id: UUID,
    body: CheckInIn,
    device_clock: datetime,
    received_at: datetime,
    request_fingerprint: str,
) -> tuple[CheckInView, bool]:
    """Record a check-in, accepted or refused (both are kept for audit), and publish it."""
    visit = await _own_visit(conn, agent_id, visit_id)
    ctx.known_visits.remember(agent_id, visit)  # the outcome at this door follows
    stored = await repository.get_checkin(conn, body.checkin_id)
    if stored is None:
        _check_queue_age(ctx, body, device_clock)
        at, skew_s = proof.corrected_time(body.device_time, device_clock, received_at)
        distance = _distance_to_address(visit, body)
        rule, reason, pack_version = _refusal(ctx, facts_of(visit), at, distance, body.position.accuracy_m)
        row = {
            **_fix_fields(body, received_at, at, skew_s),
            "visit_id": visit_id,
            "agent_id": agent_id,
            "distance_m": distance,
            "accepted": rule is None,
            "refusal_rule": rule,
            "refusal_reason": reason,
            "pack_version": pack_version,
            "flags": [f.as_json() for f in await _suspicions(conn, ctx, agent_id, visit, body, at, skew_s)],
            "fingerprint": request_fingerprint,
        }
        if await repository.insert_checkin(conn, row):
            await enqueue(conn, Envelope(data=_checked_in_event(visit, row), source=SOURCE))
            return CheckInView(**_view_fields(row, CheckInView)), True
        stored = await repository.get_checkin(conn, body.checkin_id)  # the same id, sent twice at once
    _same_request(stored, agent_id, request_fingerprint, "checkin_id")
    return CheckInView(**_view_fields(stored, CheckInView)), False


def _check_queue_age(ctx: Visits, body: CheckInIn, device_clock: datetime) -> None:
    queued = device_clock - body.device_time
    if queued < timedelta(0):
        raise Invalid("device_time is later than the X-Device-Clock header it was sent with", "device_time")
    if queued > ctx.max_queue_age:
        raise Invalid(
            f"device_time is more than {ctx.max_queue_age.days} days before it was sent", "device_time"
        )


def _fix_fields(body: CheckInIn, received_at: datetime, at: datetime, skew_s: float) -> dict[str, Any]:
    return {
        "checkin_id": body.checkin_id,
        "device_time": body.device_time,
        "received_at": received_at,
        "checked_in_at": at,
        "clock_skew_s": skew_s,
        "lat": body.position.lat,
        "lon": body.position.lon,
        "accuracy_m": body.position.accuracy_m,
        "mock_location": body.mock_location,
    }


def _distance_to_address(visit: Any, body: CheckInIn) -> float | None:
    location = visit["address"].get("location")
    if not location:
        return None
    return round(proof.distance_m(body.position.lat, body.position.lon, location["lat"], location["lon"]), 1)


def _refusal(
    ctx: Visits, facts: VisitFacts, at: datetime, distance: float | None, accuracy_m: float
) -> tuple[str | None, str | None, str]:
    """(rule, reason, pack version): the law first (contact hours and days), then the geofence."""
    decision = ctx.policy.may_visit_at(facts, at)
    if not decision.allowed:
        return decision.rule_id, decision.reason, decision.pack_version
    too_far = proof.geofence_refusal(distance, accuracy_m, ctx.limits)
    if too_far is not None:
        return proof.GEOFENCE_RULE, too_far, decision.pack_version
    return None, None, decision.pack_version


async def _suspicions(
    conn: asyncpg.Connection,
    ctx: Visits,
    agent_id: str,
    visit: Any,
    body: CheckInIn,
    at: datetime,
    skew_s: float,
) -> list[proof.Flag]:
    position = body.position
    flags = proof.device_flags(body.mock_location, position.accuracy_m, skew_s, ctx.limits)
    neighbours = [
        proof.Fix(r["lat"], r["lon"], r["checked_in_at"])
        for r in await repository.neighbour_fixes(conn, agent_id, at)
    ]
    travel = proof.travel_flag(proof.Fix(position.lat, position.lon, at), neighbours, ctx.limits)
    if travel is not None:
        flags.append(travel)
    if await repository.fix_seen_before(conn, position.lat, position.lon, position.accuracy_m):
        flags.append(
            proof.Flag(
                proof.FlagCode.REPLAYED_COORDINATES,
                "identical position and accuracy to an earlier check-in (a replayed fix)",
            )
        )
    if not visit["address"].get("location"):
        flags.append(
            proof.Flag(
                proof.FlagCode.ADDRESS_NOT_GEOCODED, "the visit address has no coordinates: no geofence"
            )
        )
    if visit["status"] == "cancelled":
        flags.append(
            proof.Flag(proof.FlagCode.VISIT_CANCELLED, "the visit was cancelled before this check-in")
        )
    return flags


def _checked_in_event(visit: Any, row: dict[str, Any]) -> p.VisitCheckedIn:
    return p.VisitCheckedIn(
        account_id=visit["account_id"],
        visit_id=row["visit_id"],
        agent_id=row["agent_id"],
        checkin_id=row["checkin_id"],
        checked_in_at=row["checked_in_at"],
        accepted=row["accepted"],
        refusal_reason=row["refusal_reason"],
        refusal_rule=row["refusal_rule"],
        suspicion_flags=[f["code"] for f in row["flags"]],
    )


def _view_fields(row: Any, model: type[Any]) -> dict[str, Any]:
    return {name: row[name] for name in model.model_fields}


# --- outcomes and cash on site --------------------------------------------------------------


async def record_outcome_at_once(
    conn: asyncpg.Connection,
    ctx: Visits,
    agent_id: str,
    visit_id: UUID,
    body: OutcomeIn,
    request_fingerprint: str,
    key: str | None,
) -> Written | None:
    """The common case, a new valid outcome for a visit not cancelled, in one round trip (two
    for a visit this process has not seen): one statement is its transaction. None when it is
    not that case; nothing was written then, and `record_outcome` answers."""
    if body.cash_confirmation is not None and body.cash_confirmation.method == "otp":
        return None  # the code is spent in the general path's transaction
    visit = ctx.known_visits.get(agent_id, visit_id)
    if visit is None:
        row = await repository.agent_visit(conn, agent_id, visit_id)
        if row is None:
            return None
        visit = ctx.known_visits.remember(agent_id, row)
    try:
        _check_outcome(ctx, body, visit)
    except Invalid:
        return None
    view = _new_outcome_view(visit_id, body, False)
    written = Written.of(view, True)
    event = Envelope(data=_outcome_event(visit, agent_id, visit_id, body, False), source=SOURCE)
    cash = _cash_row(agent_id, visit, body) if body.outcome.kind in CASH_KINDS else None
    status = await repository.record_outcome_at_once(
        conn,
        visit_id,
        agent_id,
        body,
        view.detail,
        request_fingerprint,
        key,
        written.body,
        cash,
        outbox_row(event),
    )
    return written if status == "recorded" else None


async def record_outcome(
    conn: asyncpg.Connection,
    ctx: Visits,
    agent_id: str,
    visit_id: UUID,
    body: OutcomeIn,
    request_fingerprint: str,
) -> tuple[OutcomeView, bool]:
    """Exactly once per outcome id: a replay returns the first record (created=False).

    An outcome for a visit cancelled while the agent was offline is kept and flagged. The
    insert decides between first send and replay (its primary key serialises two sends of
    one id), so the common case reads nothing twice.
    """
    visit = await _own_visit(conn, agent_id, visit_id)
    try:
        _check_outcome(ctx, body, visit)
    except Invalid:
        # A replay is answered as first recorded, even if the rules have moved on since.
        stored = await repository.get_outcome(conn, body.outcome_id)
        if stored is None:
            raise
        return _replayed_outcome(stored, agent_id, request_fingerprint), False
    cancelled_before = visit["status"] == "cancelled"
    if not await repository.insert_outcome(
        conn, visit_id, agent_id, body, cancelled_before, request_fingerprint
    ):
        stored = await repository.get_outcome(conn, body.outcome_id)
        return _replayed_outcome(stored, agent_id, request_fingerprint), False
    if body.outcome.kind in CASH_KINDS:
        await _spend_cash_code(conn, agent_id, body)
        if not await repository.insert_cash(conn, _cash_row(agent_id, visit, body)):
            raise Conflict("this receipt number is already used by this agent", "outcome.receipt_number")
    event = _outcome_event(visit, agent_id, visit_id, body, cancelled_before)
    await enqueue(conn, Envelope(data=event, source=SOURCE))
    return _new_outcome_view(visit_id, body, cancelled_before), True


def _outcome_event(
    visit: Mapping[str, Any], agent_id: str, visit_id: UUID, body: OutcomeIn, cancelled_before: bool
) -> p.VisitOutcomeRecorded:
    return p.VisitOutcomeRecorded(
        account_id=visit["account_id"],
        visit_id=visit_id,
        agent_id=agent_id,
        outcome_id=body.outcome_id,
        recorded_at=body.recorded_at,
        outcome=body.outcome,
        currency=visit["briefing"].get("currency"),
        recording_ref=body.recording_ref,
        visit_cancelled_before=cancelled_before,
    )


def _new_outcome_view(visit_id: UUID, body: OutcomeIn, cancelled_before: bool) -> OutcomeView:
    return OutcomeView(
        outcome_id=body.outcome_id,
        visit_id=visit_id,
        kind=body.outcome.kind,
        detail=body.outcome.model_dump(mode="json"),
        recorded_at=body.recorded_at,
        visit_cancelled_before=cancelled_before,
    )


def _check_outcome(ctx: Visits, body: OutcomeIn, visit: Any) -> None:
    validate_outcome(body, visit, ctx.max_promise_days, datetime.now(UTC))
    recording = ctx.policy.outcome_record_check(facts_of(visit), body.recording_ref)
    if not recording.allowed:
        raise Invalid(f"{recording.reason} ({recording.rule_id})", "recording_ref")


def _replayed_outcome(stored: Any, agent_id: str, request_fingerprint: str) -> OutcomeView:
    _same_request(stored, agent_id, request_fingerprint, "outcome_id")
    return _outcome_view(stored)


def validate_outcome(body: OutcomeIn, visit: Any, max_promise_days: int, received_at: datetime) -> None:
    """The rules per outcome type that a schema cannot say; every broken one is reported."""
    outcome, problems = body.outcome, []
    if not EARLIEST_RECORD <= body.recorded_at <= received_at + MAX_AHEAD:
        # However late the queue delivers, an outcome is kept; a date no clock can have is not.
        raise Invalid("recorded_at is not a time the visit can have happened at", "recorded_at")
    amount = getattr(outcome, "amount", None)
    if amount is not None and amount <= 0:
        problems.append(("outcome.amount", f"{outcome.kind} needs an amount above zero"))
    if isinstance(outcome, p.PromiseToPay):
        visit_day = body.recorded_at.astimezone(ZoneInfo(visit["time_zone"])).date()
        if outcome.promised_date < visit_day:
            problems.append(("outcome.promised_date", "a promise cannot be dated before the visit"))
        elif outcome.promised_date > visit_day + timedelta(days=max_promise_days):
            problems.append(
                ("outcome.promised_date", f"a promise may be dated at most {max_promise_days} days ahead")
            )
    if outcome.kind in CASH_KINDS:
        if body.cash_confirmation is None:
            problems.append(
                (
                    "cash_confirmation",
                    "cash taken on site needs the customer's confirmation (OTP or signature)",
                )
            )
        if not visit["briefing"].get("currency"):
            problems.append(
                ("outcome", "the visit's currency is unknown: cash cannot be recorded against it")
            )
        problems += _confirmation_problems(body.cash_confirmation)
    elif body.cash_confirmation is not None:
        problems.append(
            ("cash_confirmation", "only paid_on_site and partial_payment carry a cash confirmation")
        )
    if problems:
        raise InvalidFields(problems)


def _confirmation_problems(confirmation: CashConfirmation | None) -> list[tuple[str, str]]:
    if confirmation is None or confirmation.method != "otp":
        if confirmation is not None and confirmation.code is not None:
            return [("cash_confirmation.code", "only an otp confirmation carries a code")]
        return []
    problems = []
    if confirmation.code is None:
        problems.append(
            ("cash_confirmation.code", "an otp confirmation needs the code the customer read back")
        )
    if _confirmation_id(confirmation) is None:
        problems.append(
            ("cash_confirmation.reference", "an otp confirmation names the confirmation_id of its code")
        )
    return problems


def _confirmation_id(confirmation: CashConfirmation) -> UUID | None:
    try:
        return UUID(confirmation.reference)
    except ValueError:
        return None


def _cash_row(agent_id: str, visit: Mapping[str, Any], body: OutcomeIn) -> dict[str, Any]:
    outcome, confirmation = body.outcome, body.cash_confirmation
    assert isinstance(outcome, p.PaidOnSite | p.PartialPayment)
    assert confirmation is not None
    return {
        "outcome_id": body.outcome_id,
        "agent_id": agent_id,
        "receipt_number": outcome.receipt_number,
        "amount": outcome.amount,
        "currency": visit["briefing"]["currency"],
        "collected_on": body.recorded_at.astimezone(ZoneInfo(visit["time_zone"])).date(),
        "confirmation_method": confirmation.method,
        "confirmation_ref": confirmation.reference,
    }


def _outcome_view(row: Any) -> OutcomeView:
    return OutcomeView(**_view_fields(row, OutcomeView))


# --- the customer's one-time code for cash ---------------------------------------------------


def _code_hash(confirmation_id: UUID, code: str) -> str:
    return hashlib.sha256(f"{confirmation_id}:{code}".encode()).hexdigest()


async def request_cash_confirmation(
    conn: asyncpg.Connection,
    ctx: Visits,
    agent_id: str,
    visit_id: UUID,
    body: CashConfirmationIn,
    request_fingerprint: str,
) -> tuple[CashConfirmationView, bool]:
    """Draw a code, keep its hash, and ask follow-up to text it to the customer (outbox).

    Exactly once per confirmation id: a resend answers the first record and sends nothing.
    """
    visit = await _own_visit(conn, agent_id, visit_id)
    stored = await repository.get_cash_confirmation(conn, body.confirmation_id)
    if stored is None:
        currency = visit["briefing"].get("currency")
        if not currency:
            raise Invalid("the visit's currency is unknown: cash cannot be confirmed against it", "amount")
        code = f"{secrets.randbelow(10**6):06d}"
        row = {
            **body.model_dump(),
            "visit_id": visit_id,
            "agent_id": agent_id,
            "currency": currency,
            "code_hash": _code_hash(body.confirmation_id, code),
            "expires_at": datetime.now(UTC) + ctx.cash_code_ttl,
            "fingerprint": request_fingerprint,
        }
        if await repository.insert_cash_confirmation(conn, row):
            fields = _confirmation_fields(row)
            event = p.CashConfirmationRequested(
                account_id=visit["account_id"], agent_id=agent_id, code=code, **fields
            )
            await enqueue(conn, Envelope(data=event, source=SOURCE))
            return CashConfirmationView(**fields), True
        stored = await repository.get_cash_confirmation(conn, body.confirmation_id)
    _same_request(stored, agent_id, request_fingerprint, "confirmation_id")
    return CashConfirmationView(**_confirmation_fields(stored)), False


def _confirmation_fields(row: Any) -> dict[str, Any]:
    names = ("confirmation_id", "visit_id", "amount", "currency", "receipt_number", "expires_at")
    return {name: row[name] for name in names}


async def check_cash_code(
    conn: asyncpg.Connection, ctx: Visits, agent_id: str, visit_id: UUID, body: OutcomeIn
) -> None:
    """The customer's code for an otp cash outcome, checked in its own statement before the
    outcome's transaction: a wrong guess counts even though its request fails."""
    confirmation = body.cash_confirmation
    if body.outcome.kind not in CASH_KINDS or confirmation is None or confirmation.method != "otp":
        return
    if confirmation.code is None:
        return  # validate_outcome names it
    confirmation_id = _confirmation_id(confirmation)
    if confirmation_id is None:
        return  # validate_outcome names it
    row = await repository.try_cash_code(conn, confirmation_id, agent_id, visit_id)
    if row is None:
        await _own_visit(conn, agent_id, visit_id)  # another agent's visit stays a 404
        raise Invalid(
            "no cash confirmation with this id was requested for this visit", "cash_confirmation.reference"
        )
    if row["used_by"] == body.outcome_id:
        return  # this very outcome, sent again
    outcome = body.outcome
    assert isinstance(outcome, p.PaidOnSite | p.PartialPayment)
    problem = _code_problem(ctx, row, confirmation_id, confirmation.code, outcome)
    if problem is not None:
        raise Invalid(problem[1], problem[0])


def _code_problem(
    ctx: Visits, row: Any, confirmation_id: UUID, code: str, outcome: p.PaidOnSite | p.PartialPayment
) -> tuple[str, str] | None:
    if row["used_by"] is not None:
        return "cash_confirmation.reference", "this confirmation already confirms another outcome"
    if row["attempts"] > ctx.cash_code_attempts:
        return "cash_confirmation.code", "too many wrong codes: request a new confirmation"
    if row["expires_at"] <= datetime.now(UTC):
        return "cash_confirmation.code", "the code has expired: request a new confirmation"
    if not hmac.compare_digest(row["code_hash"], _code_hash(confirmation_id, code)):
        return "cash_confirmation.code", "the code does not match"
    if row["amount"] != outcome.amount or row["receipt_number"] != outcome.receipt_number:
        return "cash_confirmation.reference", "the code confirms another amount or receipt number"
    return None


async def _spend_cash_code(conn: asyncpg.Connection, agent_id: str, body: OutcomeIn) -> None:
    """In the outcome's transaction: a code confirms one outcome (two racing for it: one wins)."""
    confirmation = body.cash_confirmation
    if confirmation is None or confirmation.method != "otp":
        return
    confirmation_id = _confirmation_id(confirmation)
    assert confirmation_id is not None
    if not await repository.spend_cash_code(conn, confirmation_id, agent_id, body.outcome_id):
        raise Conflict("this confirmation already confirms another outcome", "cash_confirmation.reference")


async def record_deposit(
    conn: asyncpg.Connection, agent_id: str, body: DepositIn, request_fingerprint: str
) -> tuple[DepositView, bool]:
    stored = await repository.get_deposit(conn, body.deposit_id)
    if stored is None:
        if body.deposited_on > datetime.now(UTC).date() + MAX_AHEAD:
            raise Invalid("deposited_on is in the future", "deposited_on")
        row = {**body.model_dump(), "agent_id": agent_id, "fingerprint": request_fingerprint}
        created = await repository.insert_deposit(conn, row)
        if created is not None:
            return DepositView(**dict(created)), True
        stored = await repository.get_deposit(conn, body.deposit_id)
        if stored is None:
            raise Conflict("this bank slip is already recorded by this agent", "bank_reference")
    _same_request(stored, agent_id, request_fingerprint, "deposit_id")
    return DepositView(**_view_fields(stored, DepositView)), False


# --- supervisors ------------------------------------------------------------------------------


async def team_visits(conn: asyncpg.Connection, team: str, plan_date: date) -> list[TeamVisitView]:
    return [TeamVisitView(**dict(r)) for r in await repository.team_visits(conn, team, plan_date)]


async def team_flags(
    conn: asyncpg.Connection, team: str, since: datetime, until: datetime, limit: int
) -> list[FlaggedCheckInView]:
    if since >= until:
        raise Invalid("since must be before until", "since")
    rows = await repository.team_flagged_checkins(conn, team, since, until, limit)
    return [FlaggedCheckInView(**dict(r)) for r in rows]


MAX_CASH_DAYS = 92


async def team_cash(
    conn: asyncpg.Connection, team: str, first_day: date, last_day: date
) -> list[CashDayView]:
    if first_day > last_day:
        raise Invalid("from_day must not be after to_day", "from_day")
    if (last_day - first_day).days >= MAX_CASH_DAYS:
        raise Invalid(f"at most {MAX_CASH_DAYS} days at a time", "to_day")
    return [CashDayView(**dict(r)) for r in await repository.team_cash_days(conn, team, first_day, last_day)]
