"""All of follow-up's SQL."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from shared.events import payloads as p


async def upsert_contact(conn: asyncpg.Connection, account_id: str, contact: p.ContactDetails) -> None:
    await conn.execute(
        "INSERT INTO contacts (account_id, phone, language, time_zone) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (account_id) DO UPDATE SET phone = EXCLUDED.phone, language = EXCLUDED.language,"
        " time_zone = EXCLUDED.time_zone, updated_at = now()",
        account_id,
        contact.phone,
        contact.language,
        contact.time_zone,
    )


async def get_contact(conn: asyncpg.Connection, account_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT phone, language, time_zone FROM contacts WHERE account_id = $1", account_id
    )


async def insert_promise(
    conn: asyncpg.Connection,
    account_id: str,
    outcome_event_id: uuid.UUID,
    amount: Decimal,
    currency: str | None,
    promised_date: date,
) -> uuid.UUID | None:
    promise_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO promises (promise_id, account_id, outcome_event_id, amount, currency, promised_date,"
        " status) VALUES ($1, $2, $3, $4, $5, $6, 'open') ON CONFLICT (outcome_event_id) DO NOTHING"
        " RETURNING promise_id",
        uuid.uuid4(),
        account_id,
        outcome_event_id,
        amount,
        currency,
        promised_date,
    )
    return promise_id


async def create_sms_job(
    conn: asyncpg.Connection,
    trigger_event_id: uuid.UUID,
    action: str,
    account_id: str,
    template_id: str,
    params: dict[str, str],
    due_at: datetime,
) -> bool:
    """False when this trigger already has this job: the unique key, not a prior read, decides."""
    created = await conn.fetchval(
        "INSERT INTO sms_jobs (job_id, trigger_event_id, action, account_id, template_id, params,"
        " status, due_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)"
        " ON CONFLICT (trigger_event_id, action) DO NOTHING RETURNING true",
        uuid.uuid4(),
        trigger_event_id,
        action,
        account_id,
        template_id,
        params,
        due_at,
    )
    return bool(created)


async def claim_due_job(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """Lock one due job for the caller's transaction; other workers skip it."""
    return await conn.fetchrow(
        "SELECT job_id, trigger_event_id, account_id, template_id, params, attempts FROM sms_jobs"
        " WHERE status = 'pending' AND due_at <= now() ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    )


async def mark_sent(conn: asyncpg.Connection, job_id: uuid.UUID, provider_message_id: str) -> datetime:
    sent_at: datetime = await conn.fetchval(
        "UPDATE sms_jobs SET status = 'sent', provider_message_id = $2, sent_at = now(),"
        " attempts = attempts + 1 WHERE job_id = $1 RETURNING sent_at",
        job_id,
        provider_message_id,
    )
    return sent_at


async def mark_failed(conn: asyncpg.Connection, job_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE sms_jobs SET status = 'failed', last_error = $2, attempts = attempts + 1 WHERE job_id = $1",
        job_id,
        reason,
    )


async def postpone(conn: asyncpg.Connection, job_id: uuid.UUID, reason: str, seconds: float) -> None:
    await conn.execute(
        "UPDATE sms_jobs SET attempts = attempts + 1, last_error = $2,"
        " due_at = now() + make_interval(secs => $3) WHERE job_id = $1",
        job_id,
        reason,
        seconds,
    )


async def list_jobs(conn: asyncpg.Connection, account_id: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT job_id, trigger_event_id, action, account_id, template_id, status, due_at, attempts,"
        " last_error, provider_message_id, sent_at FROM sms_jobs"
        " WHERE ($1::text IS NULL OR account_id = $1) ORDER BY created_at LIMIT 1000",
        account_id,
    )
    return [dict(r) for r in rows]
