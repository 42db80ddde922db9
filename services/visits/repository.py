"""All of the visits service's SQL. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.visits.models import OutcomeIn
from shared.events import payloads as p
from shared.outbox import OutboxRow

_VISIT_COLUMNS = (
    "visit_id, account_id, plan_date, sequence, window_start, window_end, status, address,"
    " time_zone, language, customer_name, briefing"
)
_CHECKIN_COLUMNS = (
    "checkin_id, visit_id, checked_in_at, received_at, accepted, refusal_rule, refusal_reason, distance_m"
)
_OUTCOME_COLUMNS = (
    "outcome_id, visit_id, agent_id, kind, detail, recorded_at, visit_cancelled_before, fingerprint"
)

# --- assignments (consumed) -------------------------------------------------------------


async def save_assignment(conn: asyncpg.Connection, e: p.VisitAssigned) -> None:
    await conn.execute(
        """
        INSERT INTO visits (visit_id, account_id, agent_id, plan_date, sequence, window_start,
                            window_end, address, time_zone, language, customer_name, briefing,
                            team, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'assigned')
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
        e.team,
    )


async def reschedule_visit(conn: asyncpg.Connection, e: p.VisitRescheduled) -> bool:
    """Move a visit that is still to be made; a cancelled or completed one stays as it is."""
    moved = await conn.fetchval(
        """
        UPDATE visits SET plan_date = $2, sequence = $3, window_start = $4, window_end = $5, updated_at = now()
        WHERE visit_id = $1 AND status = 'assigned' RETURNING true
        """,
        e.visit_id,
        e.plan_date,
        e.sequence,
        e.window_start,
        e.window_end,
    )
    return bool(moved)


async def cancel_visit(conn: asyncpg.Connection, visit_id: UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE visits SET status = 'cancelled', status_reason = $2, updated_at = now()"
        " WHERE visit_id = $1 AND status = 'assigned'",
        visit_id,
        reason,
    )


# --- visits as the agent sees them ------------------------------------------------------


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


async def route_json(conn: asyncpg.Connection, agent_id: str, plan_date: date, zone: str) -> str:
    """The day's visits in route order as the API's JSON document, built by PostgreSQL.

    One text value instead of rows of JSON to decode and encode again: the route is the
    agents' most frequent request, and its ETag is a hash of exactly these bytes.
    """
    document: str = await conn.fetchval(
        """
        SELECT json_build_object(
            'plan_date', $2::date,
            'time_zone', $3::text,
            'visits', coalesce(json_agg(json_build_object(
                'visit_id', visit_id, 'account_id', account_id, 'plan_date', plan_date,
                'sequence', sequence, 'window_start', window_start, 'window_end', window_end,
                'status', status, 'address', address, 'time_zone', time_zone, 'language', language,
                'customer_name', customer_name, 'briefing', briefing
            ) ORDER BY sequence, window_start), '[]'::json)
        )::text
        FROM visits WHERE agent_id = $1 AND plan_date = $2 AND status <> 'cancelled'
        """,
        agent_id,
        plan_date,
        zone,
    )
    return document


async def agent_visit(conn: asyncpg.Connection, agent_id: str, visit_id: UUID) -> asyncpg.Record | None:
    """Only the agent's own visit: another agent's is indistinguishable from a missing one."""
    return await conn.fetchrow(
        f"SELECT {_VISIT_COLUMNS} FROM visits WHERE visit_id = $1 AND agent_id = $2", visit_id, agent_id
    )


async def visit_check_ins(conn: asyncpg.Connection, visit_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_CHECKIN_COLUMNS} FROM checkins WHERE visit_id = $1 ORDER BY checked_in_at", visit_id
    )


async def visit_outcomes(conn: asyncpg.Connection, visit_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE visit_id = $1 ORDER BY recorded_at", visit_id
    )


# --- check-ins ----------------------------------------------------------------------------


async def get_checkin(conn: asyncpg.Connection, checkin_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_CHECKIN_COLUMNS}, agent_id, fingerprint FROM checkins WHERE checkin_id = $1", checkin_id
    )


async def neighbour_fixes(conn: asyncpg.Connection, agent_id: str, at: datetime) -> list[asyncpg.Record]:
    """The agent's check-ins just before and just after `at` (offline sends arrive out of order)."""
    return await conn.fetch(
        """
        (SELECT lat, lon, checked_in_at FROM checkins
          WHERE agent_id = $1 AND checked_in_at <= $2 ORDER BY checked_in_at DESC LIMIT 1)
        UNION ALL
        (SELECT lat, lon, checked_in_at FROM checkins
          WHERE agent_id = $1 AND checked_in_at > $2 ORDER BY checked_in_at LIMIT 1)
        """,
        agent_id,
        at,
    )


async def fix_seen_before(conn: asyncpg.Connection, lat: float, lon: float, accuracy_m: float) -> bool:
    """Whether any check-in, any agent's, reported exactly this fix (a replayed position)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM checkins WHERE lat = $1 AND lon = $2 AND accuracy_m = $3)",
            lat,
            lon,
            accuracy_m,
        )
    )


async def insert_checkin(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO checkins (checkin_id, visit_id, agent_id, device_time, received_at, checked_in_at,
                              clock_skew_s, lat, lon, accuracy_m, mock_location, distance_m, accepted,
                              refusal_rule, refusal_reason, pack_version, flags, fingerprint)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
        ON CONFLICT (checkin_id) DO NOTHING RETURNING true
        """,
        row["checkin_id"],
        row["visit_id"],
        row["agent_id"],
        row["device_time"],
        row["received_at"],
        row["checked_in_at"],
        row["clock_skew_s"],
        row["lat"],
        row["lon"],
        row["accuracy_m"],
        row["mock_location"],
        row["distance_m"],
        row["accepted"],
        row["refusal_rule"],
        row["refusal_reason"],
        row["pack_version"],
        row["flags"],
        row["fingerprint"],
    )
    return bool(inserted)


# --- outcomes and cash ------------------------------------------------------------------------


async def insert_outcome(
    conn: asyncpg.Connection,
    visit_id: UUID,
    agent_id: str,
    body: OutcomeIn,
    cancelled_before: bool,
    request_fingerprint: str,
) -> bool:
    """Record the outcome and complete the visit (a cancelled one stays cancelled), in one
    statement; False when the outcome id exists already."""
    inserted = await conn.fetchval(
        """
        WITH recorded AS (
            INSERT INTO outcomes (outcome_id, visit_id, agent_id, kind, detail, notes, recording_ref,
                                  recorded_at, visit_cancelled_before, observation, fingerprint)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (outcome_id) DO NOTHING RETURNING visit_id
        ), completed AS (
            UPDATE visits SET status = 'completed', updated_at = now()
            WHERE visit_id IN (SELECT visit_id FROM recorded) AND status = 'assigned'
        )
        SELECT count(*) > 0 FROM recorded
        """,
        body.outcome_id,
        visit_id,
        agent_id,
        body.outcome.kind,
        body.outcome.model_dump(mode="json"),
        body.notes,
        body.recording_ref,
        body.recorded_at,
        cancelled_before,
        body.observation.model_dump(mode="json") if body.observation else None,
        request_fingerprint,
    )
    return bool(inserted)


async def record_outcome_at_once(
    conn: asyncpg.Connection,
    visit_id: UUID,
    agent_id: str,
    body: OutcomeIn,
    detail: dict[str, Any],
    request_fingerprint: str,
    key: str | None,
    response: bytes,
    cash: dict[str, Any] | None,
    event: OutboxRow,
) -> str:
    """The whole write of a new outcome in one call (migration 0003): 'recorded', or why not
    ('not_found', 'cancelled', 'key_used', 'conflict'), in which case nothing was written."""
    cash = cash or {}
    try:
        status: str = await conn.fetchval(
            "SELECT record_outcome($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
            " $17, $18, $19, $20, $21, $22, $23)",
            body.outcome_id,
            visit_id,
            agent_id,
            body.outcome.kind,
            detail,
            body.notes,
            body.recording_ref,
            body.recorded_at,
            body.observation.model_dump(mode="json") if body.observation else None,
            request_fingerprint,
            key,
            response,
            cash.get("receipt_number"),
            cash.get("amount"),
            cash.get("currency"),
            cash.get("collected_on"),
            cash.get("confirmation_method"),
            cash.get("confirmation_ref"),
            *event,
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != _USED_ALREADY:
            raise
        return "conflict"
    return status


_USED_ALREADY = "VF409"  # raised by record_outcome: an outcome id or receipt number already used


async def get_outcome(conn: asyncpg.Connection, outcome_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE outcome_id = $1", outcome_id)


async def insert_cash(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    """False when the agent has used this receipt number already (the constraint decides)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO cash_collections (outcome_id, agent_id, receipt_number, amount, currency,
                                      collected_on, confirmation_method, confirmation_ref)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT ON CONSTRAINT cash_receipt_unique_per_agent DO NOTHING RETURNING true
        """,
        row["outcome_id"],
        row["agent_id"],
        row["receipt_number"],
        row["amount"],
        row["currency"],
        row["collected_on"],
        row["confirmation_method"],
        row["confirmation_ref"],
    )
    return bool(inserted)


_CONFIRMATION_COLUMNS = "confirmation_id, visit_id, amount, currency, receipt_number, expires_at"


async def get_cash_confirmation(conn: asyncpg.Connection, confirmation_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_CONFIRMATION_COLUMNS}, agent_id, fingerprint FROM cash_confirmations"
        " WHERE confirmation_id = $1",
        confirmation_id,
    )


async def insert_cash_confirmation(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO cash_confirmations (confirmation_id, visit_id, agent_id, amount, currency, receipt_number,
                                        code_hash, expires_at, fingerprint)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (confirmation_id) DO NOTHING RETURNING true
        """,
        row["confirmation_id"],
        row["visit_id"],
        row["agent_id"],
        row["amount"],
        row["currency"],
        row["receipt_number"],
        row["code_hash"],
        row["expires_at"],
        row["fingerprint"],
    )
    return bool(inserted)


async def try_cash_code(
    conn: asyncpg.Connection, confirmation_id: UUID, agent_id: str, visit_id: UUID
) -> asyncpg.Record | None:
    """Count one attempt at the code (not once it is spent) and return what to check it against."""
    return await conn.fetchrow(
        """
        UPDATE cash_confirmations SET attempts = attempts + CASE WHEN used_by IS NULL THEN 1 ELSE 0 END
        WHERE confirmation_id = $1 AND agent_id = $2 AND visit_id = $3
        RETURNING code_hash, amount, receipt_number, expires_at, attempts, used_by
        """,
        confirmation_id,
        agent_id,
        visit_id,
    )


async def spend_cash_code(
    conn: asyncpg.Connection, confirmation_id: UUID, agent_id: str, outcome_id: UUID
) -> bool:
    spent = await conn.fetchval(
        "UPDATE cash_confirmations SET used_by = $3 WHERE confirmation_id = $1 AND agent_id = $2"
        " AND used_by IS NULL RETURNING true",
        confirmation_id,
        agent_id,
        outcome_id,
    )
    return bool(spent)


_DEPOSIT_COLUMNS = "deposit_id, amount, currency, deposited_on, bank_reference, recorded_at"


async def get_deposit(conn: asyncpg.Connection, deposit_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_DEPOSIT_COLUMNS}, agent_id, fingerprint FROM cash_deposits WHERE deposit_id = $1",
        deposit_id,
    )


async def insert_deposit(conn: asyncpg.Connection, row: dict[str, Any]) -> asyncpg.Record | None:
    """The new row, or None when the agent has recorded this bank slip already."""
    return await conn.fetchrow(
        f"""
        INSERT INTO cash_deposits (deposit_id, agent_id, amount, currency, deposited_on, bank_reference,
                                   fingerprint)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT DO NOTHING RETURNING {_DEPOSIT_COLUMNS}
        """,
        row["deposit_id"],
        row["agent_id"],
        row["amount"],
        row["currency"],
        row["deposited_on"],
        row["bank_reference"],
        row["fingerprint"],
    )


# --- supervisors' views -----------------------------------------------------------------------


async def team_visits(conn: asyncpg.Connection, team: str, plan_date: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_VISIT_COLUMNS}, agent_id, team FROM visits WHERE team = $1 AND plan_date = $2"
        " ORDER BY agent_id, sequence",
        team,
        plan_date,
    )


async def team_flagged_checkins(
    conn: asyncpg.Connection, team: str, since: datetime, until: datetime, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT c.checkin_id, c.visit_id, c.agent_id, v.account_id, c.checked_in_at, c.received_at,
               c.accepted, c.refusal_rule, c.refusal_reason, c.flags
        FROM checkins c JOIN visits v USING (visit_id)
        WHERE v.team = $1 AND c.flags <> '[]'::jsonb AND c.checked_in_at >= $2 AND c.checked_in_at < $3
        ORDER BY c.checked_in_at DESC LIMIT $4
        """,
        team,
        since,
        until,
        limit,
    )


async def team_cash_days(
    conn: asyncpg.Connection, team: str, first_day: date, last_day: date
) -> list[asyncpg.Record]:
    """Per agent of the team, day and currency: collected, deposited, and the running balance.

    The balance runs over every day up to `last_day` (cash still in hand from before the
    period counts); only the period's days are returned.
    """
    return await conn.fetch(
        """
        WITH team_agents AS (SELECT DISTINCT agent_id FROM visits WHERE team = $1),
        moves AS (
            SELECT agent_id, collected_on AS day, currency, amount AS collected, 1 AS receipts,
                   0.00::numeric(18, 2) AS deposited
            FROM cash_collections WHERE agent_id IN (SELECT agent_id FROM team_agents) AND collected_on <= $3
            UNION ALL
            SELECT agent_id, deposited_on, currency, 0.00, 0, amount
            FROM cash_deposits WHERE agent_id IN (SELECT agent_id FROM team_agents) AND deposited_on <= $3
        ),
        days AS (
            SELECT agent_id, day, currency, sum(collected) AS collected, sum(receipts)::int AS receipts,
                   sum(deposited) AS deposited
            FROM moves GROUP BY agent_id, day, currency
        )
        SELECT * FROM (
            SELECT agent_id, day, currency, collected, receipts, deposited,
                   sum(collected - deposited) OVER (PARTITION BY agent_id, currency ORDER BY day) AS undeposited
            FROM days
        ) running
        WHERE day >= $2
        ORDER BY agent_id, currency, day
        """,
        team,
        first_day,
        last_day,
    )


# --- Idempotency-Key ---------------------------------------------------------------------------


async def claim_idempotency_key(conn: asyncpg.Connection, agent_id: str, key: str, fingerprint: str) -> bool:
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (agent_id, key, fingerprint) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        agent_id,
        key,
        fingerprint,
    )
    return bool(claimed)


async def idempotency_record(conn: asyncpg.Connection, agent_id: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT fingerprint, status_code, response FROM idempotency_keys WHERE agent_id = $1 AND key = $2",
        agent_id,
        key,
    )


async def store_idempotent_response(
    conn: asyncpg.Connection, agent_id: str, key: str, status_code: int, response: bytes
) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE agent_id = $1 AND key = $2",
        agent_id,
        key,
        status_code,
        response,
    )


async def forget_idempotency_keys(conn: asyncpg.Connection, older_than_days: int) -> int:
    deleted = await conn.fetchval(
        "WITH gone AS (DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(days => $1)"
        " RETURNING 1) SELECT count(*) FROM gone",
        older_than_days,
    )
    return int(deleted)
