"""The visits service's use cases: apply the planner's assignments, record outcomes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.visits import repository
from services.visits.models import OutcomeIn, OutcomeView
from shared.errors import Conflict, NotFound
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue

SOURCE = "/fieldcollect/visits"


async def on_visit_assigned(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.VisitAssigned)
    await repository.save_assignment(conn, event.data)


async def on_visit_cancelled(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.VisitCancelled)
    await repository.cancel_visit(conn, event.data.visit_id, event.data.reason)


async def record_outcome(
    pool: Any, agent_id: str, visit_id: UUID, body: OutcomeIn
) -> tuple[OutcomeView, bool]:
    """Exactly once per outcome id: a replay returns the first record (created=False).

    An outcome for a visit cancelled while the agent was offline is kept and flagged.
    """
    async with pool.acquire() as conn, conn.transaction():
        visit = await repository.agent_visit(conn, agent_id, visit_id)
        if visit is None:
            raise NotFound("no such visit", "visit_id")
        cancelled_before = visit["status"] == "cancelled"
        created = await repository.insert_outcome(conn, visit_id, agent_id, body, cancelled_before)
        stored = await repository.get_outcome(conn, body.outcome_id)
        if stored["visit_id"] != visit_id or stored["agent_id"] != agent_id:
            raise Conflict("outcome_id already used for another visit", "outcome_id")
        if created:
            await repository.complete_visit(conn, visit_id)
            event = p.VisitOutcomeRecorded(
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
            await enqueue(conn, Envelope(data=event, source=SOURCE))
    return OutcomeView(**{k: stored[k] for k in OutcomeView.model_fields}), created
