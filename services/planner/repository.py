"""All of the planner's SQL. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.planner.models import Agent, AgentIn
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
                           priority_score, as_of, lat, lon, address, contact, flags)
        VALUES ($1, 'open', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (account_id) DO UPDATE SET
            status = 'open', currency = EXCLUDED.currency, outstanding = EXCLUDED.outstanding,
            overdue_amount = EXCLUDED.overdue_amount, dpd = EXCLUDED.dpd,
            dpd_bucket = EXCLUDED.dpd_bucket, priority_score = EXCLUDED.priority_score,
            as_of = EXCLUDED.as_of, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
            address = EXCLUDED.address, contact = EXCLUDED.contact, flags = EXCLUDED.flags,
            updated_at = now()
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
    )


async def nearest_available_agent(
    conn: asyncpg.Connection, lat: float, lon: float, plan_date: date, language: str, hardship_needed: bool
) -> asyncpg.Record | None:
    """The nearest certified agent with capacity left that day; locks the agent's row so
    two concurrent assignments cannot both take the last slot."""
    return await conn.fetchrow(
        f"""
        SELECT {_AGENT_COLUMNS} FROM agents a
        WHERE a.active AND a.certified_until >= $3
          AND $4 = ANY (a.languages)
          AND (NOT $5 OR a.hardship_trained)
          AND a.daily_capacity > (SELECT count(*) FROM visits v
                                  WHERE v.agent_id = a.agent_id AND v.plan_date = $3
                                    AND v.status = 'planned')
        ORDER BY (a.home_lat - $1) ^ 2 + ((a.home_lon - $2) * cos(radians($1))) ^ 2, a.agent_id
        LIMIT 1
        FOR UPDATE OF a
        """,
        lat,
        lon,
        plan_date,
        language,
        hardship_needed,
    )


async def next_sequence(conn: asyncpg.Connection, agent_id: str, plan_date: date) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM visits WHERE agent_id = $1 AND plan_date = $2 AND status = 'planned'",
            agent_id,
            plan_date,
        )
    )


async def insert_visit(
    conn: asyncpg.Connection,
    visit_id: UUID,
    account_id: str,
    agent_id: str,
    plan_date: date,
    sequence: int,
    window: tuple[datetime, datetime],
) -> bool:
    """False when the case already has an open visit (the unique index decides)."""
    inserted = await conn.fetchval(
        "INSERT INTO visits (visit_id, account_id, agent_id, plan_date, sequence, window_start,"
        " window_end, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'planned')"
        " ON CONFLICT (account_id) WHERE status = 'planned' DO NOTHING RETURNING true",
        visit_id,
        account_id,
        agent_id,
        plan_date,
        sequence,
        *window,
    )
    return bool(inserted)


async def list_visits(conn: asyncpg.Connection, plan_date: date | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT visit_id, account_id, agent_id, plan_date, sequence, window_start, window_end, status"
        " FROM visits WHERE ($1::date IS NULL OR plan_date = $1) ORDER BY agent_id, plan_date, sequence",
        plan_date,
    )
    return [dict(r) for r in rows]
