"""The planner's reactions to delinquency events, and its supervisor use cases."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from services.planner import repository
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue

SOURCE = "/fieldcollect/planner"
log = logging.getLogger(__name__)


async def on_delinquency_opened(conn: asyncpg.Connection, event: Envelope) -> None:
    opened = event.data
    assert isinstance(opened, p.DelinquencyOpened)
    await repository.upsert_case(conn, opened)
    if _no_visit_allowed(opened.flags) or opened.address.location is None:
        return
    await assign_nearest_agent(conn, event, opened)


def _no_visit_allowed(flags: p.CustomerFlags) -> bool:
    return flags.cease_contact or flags.dispute or flags.deceased or flags.bankruptcy or flags.care_hold


async def assign_nearest_agent(conn: asyncpg.Connection, event: Envelope, case: p.DelinquencyOpened) -> None:
    """Walking-skeleton assignment: the nearest certified agent with capacity the next day."""
    location = case.address.location
    assert location is not None
    plan_date = case.as_of + timedelta(days=1)
    agent = await repository.nearest_available_agent(
        conn, location.lat, location.lon, plan_date, case.contact.language, case.flags.vulnerable
    )
    if agent is None:
        log.info("no agent available", extra={"account_id": case.account_id, "plan_date": str(plan_date)})
        return
    window = _visit_window(plan_date, agent["shift_start"], agent["shift_end"], case.contact.time_zone)
    visit_id = uuid.uuid4()
    sequence = await repository.next_sequence(conn, agent["agent_id"], plan_date)
    inserted = await repository.insert_visit(
        conn, visit_id, case.account_id, agent["agent_id"], plan_date, sequence, window
    )
    if not inserted:
        return
    assigned = p.VisitAssigned(
        account_id=case.account_id,
        visit_id=visit_id,
        agent_id=agent["agent_id"],
        plan_date=plan_date,
        sequence=sequence,
        window_start=window[0],
        window_end=window[1],
        address=case.address,
        time_zone=case.contact.time_zone,
        language=case.contact.language,
        customer_name=case.contact.name,
        briefing=p.Briefing(
            currency=case.currency,
            overdue_amount=case.overdue_amount,
            outstanding=case.outstanding,
            dpd=case.dpd,
            dpd_bucket=case.dpd_bucket,
        ),
    )
    await enqueue(conn, event.caused(assigned, SOURCE))


def _visit_window(plan_date: date, start: time, end: time, time_zone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(time_zone)
    return (datetime.combine(plan_date, start, zone), datetime.combine(plan_date, end, zone))
