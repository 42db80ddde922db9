"""All of the visits service's SQL."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from services.visits.models import OutcomeIn
from shared.events import payloads as p

_VISIT_COLUMNS = (
    "visit_id, account_id, plan_date, sequence, window_start, window_end, status, address,"
    " time_zone, language, customer_name, briefing"
)


async def save_assignment(conn: asyncpg.Connection, e: p.VisitAssigned) -> None:
    await conn.execute(
        """
        INSERT INTO visits (visit_id, account_id, agent_id, plan_date, sequence, window_start,
                            window_end, address, time_zone, language, customer_name, briefing, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'assigned')
        ON CONFLICT (visit_id) DO NOTHING
        """,
        e.visit_id,
        e.account_id,
        e.agent_id,
        e.plan_date,
        e.sequence,
        e.window_start,
        e.window_end,
        json.loads(e.address.model_dump_json()),
        e.time_zone,
        e.language,
        e.customer_name,
        json.loads(e.briefing.model_dump_json()),
    )


async def cancel_visit(conn: asyncpg.Connection, visit_id: UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE visits SET status = 'cancelled', status_reason = $2, updated_at = now()"
        " WHERE visit_id = $1 AND status = 'assigned'",
        visit_id,
        reason,
    )


async def agent_visits(
    conn: asyncpg.Connection, agent_id: str, plan_date: date | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_VISIT_COLUMNS} FROM visits WHERE agent_id = $1"
        " AND ($2::date IS NULL OR plan_date = $2) ORDER BY plan_date, sequence",
        agent_id,
        plan_date,
    )
    return [dict(r) for r in rows]


async def agent_visit(conn: asyncpg.Connection, agent_id: str, visit_id: UUID) -> asyncpg.Record | None:
    """Only the agent's own visit: another agent's is indistinguishable from a missing one."""
    return await conn.fetchrow(
        f"SELECT {_VISIT_COLUMNS} FROM visits WHERE visit_id = $1 AND agent_id = $2 FOR UPDATE",
        visit_id,
        agent_id,
    )


async def insert_outcome(
    conn: asyncpg.Connection, visit_id: UUID, agent_id: str, body: OutcomeIn, cancelled_before: bool
) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO outcomes (outcome_id, visit_id, agent_id, kind, detail, notes, recording_ref,
                              recorded_at, visit_cancelled_before)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (outcome_id) DO NOTHING RETURNING true
        """,
        body.outcome_id,
        visit_id,
        agent_id,
        body.outcome.kind,
        json.loads(body.outcome.model_dump_json()),
        body.notes,
        body.recording_ref,
        body.recorded_at,
        cancelled_before,
    )
    return bool(inserted)


async def get_outcome(conn: asyncpg.Connection, outcome_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT outcome_id, visit_id, agent_id, kind, detail, recorded_at, visit_cancelled_before"
        " FROM outcomes WHERE outcome_id = $1",
        outcome_id,
    )


async def complete_visit(conn: asyncpg.Connection, visit_id: UUID) -> None:
    await conn.execute(
        "UPDATE visits SET status = 'completed', updated_at = now()"
        " WHERE visit_id = $1 AND status = 'assigned'",
        visit_id,
    )
