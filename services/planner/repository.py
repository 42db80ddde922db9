"""All of the planner's SQL. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.planner.models import Agent, AgentIn
from shared.events import Envelope
from shared.events import payloads as p

_AGENT_COLUMNS = (
    "agent_id, display_name, team, region, home_lat, home_lon, shift_start, shift_end, time_zone,"
    " daily_capacity, languages, hardship_trained, certified_until, active"
)


async def upsert_agent(conn: asyncpg.Connection, agent: AgentIn) -> None:
    values = agent.model_dump()
    columns = list(values)
    await conn.execute(
        f"INSERT INTO agents ({', '.join(columns)}) VALUES"
        f" ({', '.join(f'${i + 1}' for i in range(len(columns)))})"
        f" ON CONFLICT (agent_id) DO UPDATE SET"
        f" {', '.join(f'{c} = EXCLUDED.{c}' for c in columns if c != 'agent_id')}, updated_at = now()",
        *values.values(),
    )


async def list_agents(conn: asyncpg.Connection) -> list[Agent]:
    rows = await conn.fetch(f"SELECT {_AGENT_COLUMNS} FROM agents ORDER BY agent_id")
    return [Agent(**dict(r)) for r in rows]


async def upsert_case(conn: asyncpg.Connection, e: p.DelinquencyOpened) -> None:
    location = e.address.location
    await conn.execute(
        """
        INSERT INTO cases (account_id, status, currency, outstanding, overdue_amount, dpd, dpd_bucket,
                           priority_score, as_of, lat, lon, address, contact, flags, region)
        VALUES ($1, 'open', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (account_id) DO UPDATE SET
            status = 'open', currency = EXCLUDED.currency, outstanding = EXCLUDED.outstanding,
            overdue_amount = EXCLUDED.overdue_amount, dpd = EXCLUDED.dpd,
            dpd_bucket = EXCLUDED.dpd_bucket, priority_score = EXCLUDED.priority_score,
            as_of = EXCLUDED.as_of, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
            address = EXCLUDED.address, contact = EXCLUDED.contact, flags = EXCLUDED.flags,
            region = EXCLUDED.region, revisit_requested = false, updated_at = now()
        """,
        e.account_id,
        e.currency,
        e.outstanding,
        e.overdue_amount,
        e.dpd,
        e.dpd_bucket,
        e.priority_score,
        e.as_of,
        location.lat if location else None,
        location.lon if location else None,
        json.loads(e.address.model_dump_json()),
        json.loads(e.contact.model_dump_json()),
        e.flags.model_dump(),
        region_of(e.address),
    )


async def update_whereabouts(
    conn: asyncpg.Connection, account_id: str, contact: p.ContactDetails | None, address: p.Address | None
) -> None:
    """Core banking's new contact data and/or address (each null when unchanged)."""
    location = address.location if address else None
    await conn.execute(
        "UPDATE cases SET contact = COALESCE($2, contact), address = COALESCE($3, address),"
        " lat = CASE WHEN $3::jsonb IS NULL THEN lat ELSE $4 END,"
        " lon = CASE WHEN $3::jsonb IS NULL THEN lon ELSE $5 END,"
        " region = COALESCE($6, region), updated_at = now() WHERE account_id = $1",
        account_id,
        json.loads(contact.model_dump_json()) if contact else None,
        json.loads(address.model_dump_json()) if address else None,
        location.lat if location else None,
        location.lon if location else None,
        region_of(address) if address else None,
    )


def region_of(address: p.Address) -> str:
    """Cases and agents meet in a region: the address's region, else its city."""
    return (address.region or address.city).strip().lower()


async def available_agents(conn: asyncpg.Connection, plan_date: date, region: str) -> list[asyncpg.Record]:
    """Active agents of the region, certified on the plan date, not absent that day."""
    return await conn.fetch(
        f"""
        SELECT {_AGENT_COLUMNS} FROM agents a
        WHERE a.active AND a.region = $2 AND a.certified_until >= $1
          AND NOT EXISTS (SELECT 1 FROM absences b WHERE b.agent_id = a.agent_id AND b.day = $1)
        ORDER BY a.agent_id
        """,
        plan_date,
        region,
    )


_CASE_COLUMNS = (
    "c.account_id, c.lat, c.lon, c.priority_score, c.flags, c.contact, c.address, c.currency,"
    " c.overdue_amount, c.outstanding, c.dpd, c.dpd_bucket, c.prior_contacts, c.next_action_rule,"
    " c.cause_event_id, c.cause_correlation_id, c.cause_traceparent"
)


async def cases_to_visit(conn: asyncpg.Connection, region: str, limit: int) -> list[asyncpg.Record]:
    """Open cases the strategy sends to the door, without an open visit, by priority."""
    return await conn.fetch(
        f"""
        SELECT {_CASE_COLUMNS} FROM cases c
        WHERE c.status = 'open' AND c.next_action = 'field_visit' AND c.region = $1 AND c.lat IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.account_id = c.account_id AND v.status = 'planned')
        ORDER BY c.priority_score DESC, c.account_id
        LIMIT $2
        """,
        region,
        limit,
    )


async def planned_visits(conn: asyncpg.Connection, plan_date: date, region: str) -> list[asyncpg.Record]:
    """The day's open visits in the region, locked: re-planning moves them, nobody else may."""
    return await conn.fetch(
        f"""
        SELECT v.visit_id, v.agent_id, v.sequence, v.planned_start, v.planned_end, {_CASE_COLUMNS}
        FROM visits v JOIN cases c USING (account_id)
        WHERE v.plan_date = $1 AND c.region = $2 AND v.status = 'planned'
        ORDER BY v.agent_id, v.sequence
        FOR UPDATE OF v
        """,
        plan_date,
        region,
    )


async def release_slots(conn: asyncpg.Connection, visit_ids: list[UUID]) -> None:
    """Free the time slots of visits about to be re-sequenced (the overlap constraint skips NULLs)."""
    await conn.execute(
        "UPDATE visits SET planned_start = NULL, planned_end = NULL WHERE visit_id = ANY($1::uuid[])",
        visit_ids,
    )


async def schedule_visit(
    conn: asyncpg.Connection, visit_id: UUID, sequence: int, slot: tuple[datetime, datetime], plan_id: UUID
) -> None:
    await conn.execute(
        "UPDATE visits SET sequence = $2, planned_start = $3, planned_end = $4, plan_id = $5"
        " WHERE visit_id = $1",
        visit_id,
        sequence,
        *slot,
        plan_id,
    )


async def insert_visit(
    conn: asyncpg.Connection,
    visit_id: UUID,
    account_id: str,
    agent_id: str,
    plan_date: date,
    sequence: int,
    window: tuple[datetime, datetime],
    slot: tuple[datetime, datetime],
    plan_id: UUID,
) -> bool:
    """False when the database refuses it: the case already has an open visit, or the agent
    is already busy at that time (unique index and exclusion constraint, not a prior read)."""
    inserted = await conn.fetchval(
        "INSERT INTO visits (visit_id, account_id, agent_id, plan_date, sequence, window_start,"
        " window_end, planned_start, planned_end, plan_id, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'planned')"
        " ON CONFLICT DO NOTHING RETURNING true",
        visit_id,
        account_id,
        agent_id,
        plan_date,
        sequence,
        *window,
        *slot,
        plan_id,
    )
    return bool(inserted)


async def cancel_visit_by_id(conn: asyncpg.Connection, visit_id: UUID) -> None:
    await conn.execute("UPDATE visits SET status = 'cancelled' WHERE visit_id = $1", visit_id)


async def save_plan(
    conn: asyncpg.Connection,
    plan_id: UUID,
    plan_date: date,
    region: str,
    solver: str,
    summary: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO plans (plan_id, plan_date, region, solver, summary) VALUES ($1, $2, $3, $4, $5)",
        plan_id,
        plan_date,
        region,
        solver,
        summary,
    )


async def get_plan(conn: asyncpg.Connection, plan_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT plan_id, plan_date, region, solver, summary, created_at FROM plans WHERE plan_id = $1",
        plan_id,
    )


async def list_visits(conn: asyncpg.Connection, plan_date: date | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT visit_id, account_id, agent_id, plan_date, sequence, window_start, window_end,"
        " planned_start, planned_end, status FROM visits WHERE ($1::date IS NULL OR plan_date = $1)"
        " ORDER BY agent_id, plan_date, sequence",
        plan_date,
    )
    return [dict(r) for r in rows]


# --- strategy facts and decisions ----------------------------------------------------

_FACT_COLUMNS = (
    "account_id, status, dpd, overdue_amount, flags, open_promise_until, revisit_requested,"
    " broken_promises, failed_calls_in_a_row, last_sms_at, region, as_of"
)


async def case_facts(conn: asyncpg.Connection, account_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_FACT_COLUMNS} FROM cases WHERE account_id = $1 FOR UPDATE", account_id
    )


async def save_decision(
    conn: asyncpg.Connection, account_id: str, action: str, rule: str, version: str, cause: Envelope
) -> None:
    await conn.execute(
        "UPDATE cases SET next_action = $2, next_action_rule = $3, strategy_version = $4, cause_event_id = $5,"
        " cause_correlation_id = $6, cause_traceparent = $7, updated_at = now() WHERE account_id = $1",
        account_id,
        action,
        rule,
        version,
        cause.id,
        cause.correlation_id or str(cause.id),
        cause.traceparent,
    )


async def update_case(conn: asyncpg.Connection, account_id: str, **columns: Any) -> None:
    """Set the given case columns (names come from our code, never from input)."""
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
    await conn.execute(
        f"UPDATE cases SET {assignments}, updated_at = now() WHERE account_id = $1",
        account_id,
        *columns.values(),
    )


async def bump_contacts(conn: asyncpg.Connection, account_id: str, expression: str) -> None:
    """Count one more contact, with a fixed SQL expression for the channel's own counters."""
    await conn.execute(
        f"UPDATE cases SET prior_contacts = prior_contacts + 1, {expression}, updated_at = now()"
        " WHERE account_id = $1",
        account_id,
    )


async def cancel_open_visit(conn: asyncpg.Connection, account_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE visits SET status = 'cancelled' WHERE account_id = $1 AND status = 'planned'"
        " RETURNING visit_id, agent_id",
        account_id,
    )


async def mark_visit_done(conn: asyncpg.Connection, visit_id: UUID) -> None:
    await conn.execute(
        "UPDATE visits SET status = 'done' WHERE visit_id = $1 AND status = 'planned'", visit_id
    )


async def request_plan(conn: asyncpg.Connection, plan_date: date, region: str, reason: str) -> None:
    await conn.execute(
        "INSERT INTO plan_requests (plan_date, region, reason) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        plan_date,
        region,
        reason,
    )


async def take_plan_request(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "DELETE FROM plan_requests WHERE (plan_date, region) = ("
        " SELECT plan_date, region FROM plan_requests ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING plan_date, region, reason"
    )


async def add_absence(conn: asyncpg.Connection, agent_id: str, day: date, reason: str) -> None:
    await conn.execute(
        "INSERT INTO absences (agent_id, day, reason) VALUES ($1, $2, $3)"
        " ON CONFLICT (agent_id, day) DO UPDATE SET reason = EXCLUDED.reason",
        agent_id,
        day,
        reason,
    )


async def agent_region(conn: asyncpg.Connection, agent_id: str) -> str | None:
    region: str | None = await conn.fetchval("SELECT region FROM agents WHERE agent_id = $1", agent_id)
    return region


async def case_view(conn: asyncpg.Connection, account_id: str) -> asyncpg.Record | None:
    """The decision and the facts behind it; no contact details (supervisors don't need them here)."""
    return await conn.fetchrow(
        "SELECT account_id, status, region, dpd, dpd_bucket, overdue_amount, priority_score, next_action,"
        " next_action_rule, strategy_version, open_promise_until, broken_promises, failed_calls_in_a_row,"
        " revisit_requested, prior_contacts FROM cases WHERE account_id = $1",
        account_id,
    )
