"""The planner's reactions to other services' facts.

Handlers keep the case's facts current, ask the contact strategy what comes next, cancel a
visit the moment it becomes pointless or unlawful, and mark the (day, region) plans that need
re-planning; the planning loop (planning.py) does the routing.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from services.planner import repository
from services.planner.strategy import CaseFacts, Strategy, load_strategy
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue

SOURCE = "/fieldcollect/planner"
STRATEGY: Strategy = load_strategy()
_SUPPRESSING = ("cease_contact", "dispute", "deceased", "bankruptcy", "care_hold")


def next_plan_date(as_of: date) -> date:
    """Visits for what core banking reported on `as_of` are planned for the following day."""
    return as_of + timedelta(days=1)


async def decide(conn: asyncpg.Connection, event: Envelope, account_id: str) -> None:
    """Re-run the strategy for a case; a visit decision asks for its day to be planned."""
    row = await repository.case_facts(conn, account_id)
    if row is None or row["status"] != "open":
        return
    flags = frozenset(k for k, v in row["flags"].items() if v)
    facts = CaseFacts(
        dpd=row["dpd"],
        overdue_amount=row["overdue_amount"],
        flags=flags,
        open_promise=row["open_promise_until"] is not None and row["open_promise_until"] >= row["as_of"],
        revisit_requested=row["revisit_requested"],
        broken_promises=row["broken_promises"],
        failed_calls_in_a_row=row["failed_calls_in_a_row"],
        sms_last_7d=int(row["last_sms_at"] is not None),
    )
    decision = STRATEGY.decide(facts)
    await repository.save_decision(
        conn, account_id, decision.action, decision.rule, decision.strategy_version, event
    )
    if decision.action == "field_visit":
        await repository.request_plan(conn, next_plan_date(row["as_of"]), row["region"], decision.rule)
    elif decision.action == "hold":
        await cancel_visit(conn, event, account_id, f"hold: {decision.rule}")


async def cancel_visit(conn: asyncpg.Connection, cause: Envelope, account_id: str, reason: str) -> None:
    cancelled = await repository.cancel_open_visit(conn, account_id)
    if cancelled is not None:
        event = p.VisitCancelled(
            account_id=account_id,
            visit_id=cancelled["visit_id"],
            agent_id=cancelled["agent_id"],
            reason=reason,
        )
        await enqueue(conn, cause.caused(event, SOURCE))


# --- collections.delinquency.v1 ------------------------------------------------------


async def on_delinquency_opened(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.DelinquencyOpened)
    await repository.upsert_case(conn, event.data)
    await decide(conn, event, event.data.account_id)


async def on_delinquency_updated(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.DelinquencyUpdated)
    await repository.update_case(
        conn, e.account_id, outstanding=e.outstanding, overdue_amount=e.overdue_amount, dpd=e.dpd,
        dpd_bucket=e.dpd_bucket, priority_score=e.priority_score, as_of=e.as_of,
    )  # fmt: skip
    if e.contact is not None or e.address is not None:
        await repository.update_whereabouts(conn, e.account_id, e.contact, e.address)
    if e.address is not None:
        # A visit planned for the old address would knock on the wrong door: re-plan it.
        await cancel_visit(conn, event, e.account_id, "address changed")
    await decide(conn, event, e.account_id)


async def on_payment_received(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.PaymentReceived)
    await repository.update_case(conn, e.account_id, overdue_amount=e.overdue_amount_after, as_of=e.as_of)
    if e.overdue_amount_after == 0:
        await cancel_visit(conn, event, e.account_id, "paid before the visit")
    else:
        await decide(conn, event, e.account_id)


async def on_delinquency_cured(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.DelinquencyCured)
    await repository.update_case(conn, e.account_id, status="cured", as_of=e.as_of)
    await cancel_visit(conn, event, e.account_id, f"cured: {e.reason}")


async def on_flags_changed(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.CustomerFlagsChanged)
    row = await repository.case_facts(conn, e.account_id)
    if row is None:
        return
    # Only what changed: intake owns most flags, follow-up owns the care hold.
    flags = {
        **row["flags"],
        **{name: getattr(e.flags, name) for name in e.changed if name in p.CustomerFlags.model_fields},
    }
    await repository.update_case(conn, e.account_id, flags=flags)
    suppressing = [f for f in _SUPPRESSING if flags.get(f)]
    if suppressing:
        await cancel_visit(conn, event, e.account_id, f"suppressed: {', '.join(suppressing)}")
    await decide(conn, event, e.account_id)


# --- collections.visit-outcomes.v1 and collections.followups.v1 ----------------------


async def on_outcome_recorded(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.VisitOutcomeRecorded)
    await repository.mark_visit_done(conn, e.visit_id)
    await repository.bump_contacts(conn, e.account_id, "revisit_requested = false")
    if isinstance(e.outcome, p.PromiseToPay):
        await repository.update_case(conn, e.account_id, open_promise_until=e.outcome.promised_date)


async def on_sms_sent(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.SmsSent)
    await repository.bump_contacts(conn, e.account_id, "last_sms_at = now()")


async def on_call_completed(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.CallCompleted)
    counter = (
        "failed_calls_in_a_row = 0"
        if e.result == "connected"
        else "failed_calls_in_a_row = failed_calls_in_a_row + 1"
    )
    await repository.bump_contacts(conn, e.account_id, counter)
    await decide(conn, event, e.account_id)


async def on_promise_kept(conn: asyncpg.Connection, event: Envelope) -> None:
    await repository.update_case(conn, event.data.account_id, open_promise_until=None)
    await decide(conn, event, event.data.account_id)


async def on_promise_broken(conn: asyncpg.Connection, event: Envelope) -> None:
    e = event.data
    assert isinstance(e, p.PromiseBroken)
    await repository.update_case(conn, e.account_id, open_promise_until=None, broken_promises=e.broken_count)
    await decide(conn, event, e.account_id)


async def on_revisit_requested(conn: asyncpg.Connection, event: Envelope) -> None:
    await repository.update_case(conn, event.data.account_id, revisit_requested=True)
    await decide(conn, event, event.data.account_id)
