"""All of follow-up's SQL. Every function takes the caller's connection; none commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.followup.models import AccountFacts, LedgerEntry, Trigger
from shared.events import payloads as p

# The trigger's trace kept with every row that publishes events later (migration 0003).
_TRIGGER_COLUMNS = "trigger_event_id, trigger_traceparent, trigger_correlation_id"


# --- contacts: how to reach a customer and what the policy needs ------------------------


async def upsert_contact(conn: asyncpg.Connection, opened: p.DelinquencyOpened) -> None:
    await conn.execute(
        "INSERT INTO contacts (account_id, phone, language, time_zone, customer_id, country, product, dpd,"
        " flags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (account_id) DO UPDATE SET phone = EXCLUDED.phone, language = EXCLUDED.language,"
        " time_zone = EXCLUDED.time_zone, customer_id = EXCLUDED.customer_id, country = EXCLUDED.country,"
        " product = EXCLUDED.product, dpd = EXCLUDED.dpd, flags = EXCLUDED.flags, updated_at = now()",
        opened.account_id,
        opened.contact.phone,
        opened.contact.language,
        opened.contact.time_zone,
        opened.customer_id,
        opened.address.country,
        opened.product,
        opened.dpd,
        opened.flags.model_dump(),
    )


async def update_dpd(conn: asyncpg.Connection, account_id: str, dpd: int) -> None:
    await conn.execute(
        "UPDATE contacts SET dpd = $2, updated_at = now() WHERE account_id = $1", account_id, dpd
    )


async def update_contact(
    conn: asyncpg.Connection, account_id: str, contact: p.ContactDetails | None, country: str | None
) -> None:
    """Core banking's new contact data (and the address's country, which picks the pack).

    Only what changed is sent (null: unchanged); opt-outs stay, whatever the number.
    """
    await conn.execute(
        "UPDATE contacts SET phone = CASE WHEN $2 THEN $3 ELSE phone END,"
        " language = COALESCE($4, language), time_zone = COALESCE($5, time_zone),"
        " country = COALESCE($6, country), updated_at = now() WHERE account_id = $1",
        account_id,
        contact is not None,
        contact.phone if contact else None,
        contact.language if contact else None,
        contact.time_zone if contact else None,
        country,
    )


async def merge_flags(conn: asyncpg.Connection, account_id: str, changed: Mapping[str, bool]) -> None:
    """Take over only the flags that changed (core banking's flags; holds are our own tables)."""
    await conn.execute(
        "UPDATE contacts SET flags = flags || $2::jsonb, updated_at = now() WHERE account_id = $1",
        account_id,
        dict(changed),
    )


async def bank_flags(conn: asyncpg.Connection, account_id: str) -> dict[str, bool]:
    """The flags core banking reported (our own holds are not among them)."""
    flags = await conn.fetchval("SELECT flags FROM contacts WHERE account_id = $1", account_id)
    return {k: bool(v) for k, v in (flags or {}).items()}


async def opt_out_sms_by_phone(conn: asyncpg.Connection, spellings: Sequence[str]) -> list[str]:
    """Opt every account with this number (in any of its spellings) out of SMS."""
    rows = await conn.fetch(
        "UPDATE contacts SET sms_opt_out = true, updated_at = now() WHERE phone = ANY($1::text[])"
        " RETURNING account_id",
        list(spellings),
    )
    return [r["account_id"] for r in rows]


async def opt_out_calls(conn: asyncpg.Connection, account_id: str) -> None:
    await conn.execute(
        "UPDATE contacts SET call_opt_out = true, updated_at = now() WHERE account_id = $1", account_id
    )


# The holds are LATERAL ... LIMIT 1 probes by account: as EXISTS in the select list, PostgreSQL may
# hash the whole table's open rows once per query (every open promise, ~30,000 in the follow-up
# bench), which made each batch's read grow with the size of the book.
_FACTS = """
SELECT c.account_id, c.phone, c.language, c.time_zone, c.customer_id, c.country, c.product, c.dpd,
       c.flags, c.sms_opt_out, c.call_opt_out,
       care.held IS NOT NULL AS care_hold, dispute.held IS NOT NULL AS disputed,
       promise.held IS NOT NULL AS open_promise,
       ARRAY(SELECT s.action FROM sms_jobs s WHERE s.account_id = c.account_id AND s.status = 'pending'
             UNION SELECT t.action FROM call_tasks t
             WHERE t.account_id = c.account_id AND t.status = 'pending') AS pending,
       ARRAY(SELECT ROW(l.source_id, l.kind, l.occurred_at, l.recorded_at, l.connected, l.number_id,
                        l.amount, l.detail)
             FROM contact_ledger l
             WHERE l.account_id = c.account_id AND (l.recorded_at > $2 OR l.occurred_at > $2)
             ORDER BY l.occurred_at) AS ledger
FROM contacts c
LEFT JOIN LATERAL (SELECT true AS held FROM care_referrals r
                   WHERE r.account_id = c.account_id AND r.status <> 'closed' LIMIT 1) care ON true
LEFT JOIN LATERAL (SELECT true AS held FROM disputes d
                   WHERE d.account_id = c.account_id AND d.status = 'open' LIMIT 1) dispute ON true
LEFT JOIN LATERAL (SELECT true AS held FROM promises pr
                   WHERE pr.account_id = c.account_id AND pr.status = 'open' LIMIT 1) promise ON true
WHERE c.account_id = ANY($1::text[])
"""


async def load_facts(
    conn: asyncpg.Connection, account_ids: Sequence[str], ledger_since: datetime
) -> dict[str, AccountFacts]:
    """Facts per account (those we have a contact for), with the ledger since `ledger_since`.

    Holds follow-up owns (an open care referral, an open dispute) are read from their
    tables, so they can never disagree with the referrals and disputes themselves.
    """
    rows = await conn.fetch(_FACTS, list(account_ids), ledger_since)
    return {r["account_id"]: _facts(r) for r in rows}


def _facts(row: asyncpg.Record) -> AccountFacts:
    flags = {k: bool(v) for k, v in (row["flags"] or {}).items()}
    flags["care_hold"] = flags.get("care_hold", False) or row["care_hold"]
    flags["dispute"] = flags.get("dispute", False) or row["disputed"]
    return AccountFacts(
        account_id=row["account_id"],
        time_zone=row["time_zone"],
        language=row["language"],
        phone=row["phone"],
        customer_id=row["customer_id"],
        country=row["country"],
        product=row["product"],
        dpd=row["dpd"],
        flags=flags,
        sms_opt_out=row["sms_opt_out"],
        call_opt_out=row["call_opt_out"],
        ledger=tuple(LedgerEntry(*entry) for entry in row["ledger"]),
        pending=frozenset(row["pending"]),
        open_promise=row["open_promise"],
    )


# --- the contact ledger -------------------------------------------------------------------


async def add_to_ledger(conn: asyncpg.Connection, account_id: str, entries: Iterable[LedgerEntry]) -> None:
    await conn.executemany(
        "INSERT INTO contact_ledger (account_id, source_id, kind, occurred_at, connected, number_id, amount,"
        " detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source_id, kind) DO NOTHING",
        [
            (account_id, e.source_id, e.kind, e.occurred_at, e.connected, e.number_id, e.amount, e.detail)
            for e in entries
        ],
    )


async def mark_ledger_connected(conn: asyncpg.Connection, source_id: uuid.UUID, kind: str) -> None:
    await conn.execute(
        "UPDATE contact_ledger SET connected = true WHERE source_id = $1 AND kind = $2", source_id, kind
    )


# --- promises ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewPromise:
    account_id: str
    outcome_event_id: uuid.UUID
    amount: Decimal
    currency: str | None
    promised_date: Any
    made_at: datetime
    due_check_at: datetime
    # The outcome's trace: promise.broken (published by the clock, days later) continues it.
    trigger_traceparent: str | None = None
    trigger_correlation_id: str | None = None


async def insert_promise(conn: asyncpg.Connection, promise: NewPromise) -> uuid.UUID | None:
    """The new promise's id, or None when this outcome's promise exists already."""
    promise_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO promises (promise_id, account_id, outcome_event_id, amount, currency, promised_date,"
        " status, made_at, due_check_at) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8)"
        " ON CONFLICT (outcome_event_id) DO NOTHING RETURNING promise_id",
        uuid.uuid4(),
        promise.account_id,
        promise.outcome_event_id,
        promise.amount,
        promise.currency,
        promise.promised_date,
        promise.made_at,
        promise.due_check_at,
    )
    return promise_id


# The batch arrives as three JSON documents (promises, ledger lines, jobs): one parameter each
# instead of 28 arrays, which asyncpg encodes element by element (~40 µs of Python per outcome).
_RECORD_PROMISES = """
WITH promise AS (
    INSERT INTO promises (promise_id, account_id, outcome_event_id, amount, currency, promised_date, status,
                          made_at, due_check_at, trigger_traceparent, trigger_correlation_id)
    SELECT gen_random_uuid(), p.account_id, p.outcome_event_id, p.amount, p.currency, p.promised_date, 'open',
           p.made_at, p.due_check_at, p.trigger_traceparent, p.trigger_correlation_id
    FROM json_to_recordset($1::text::json) AS p(account_id text, outcome_event_id uuid, amount numeric,
         currency text, promised_date date, made_at timestamptz, due_check_at timestamptz,
         trigger_traceparent text, trigger_correlation_id text)
    ON CONFLICT (outcome_event_id) DO NOTHING
    RETURNING promise_id, outcome_event_id, trigger_traceparent, trigger_correlation_id
), ledger AS (
    INSERT INTO contact_ledger (account_id, source_id, kind, occurred_at, connected, number_id, amount, detail)
    SELECT l.account_id, l.source_id, l.kind, l.occurred_at, l.connected, l.number_id, l.amount, l.detail
    FROM json_to_recordset($2::text::json) AS l(account_id text, source_id uuid, kind text,
         occurred_at timestamptz, connected boolean, number_id text, amount numeric, detail text)
    ON CONFLICT (source_id, kind) DO NOTHING
), jobs AS (
    INSERT INTO sms_jobs (job_id, trigger_event_id, action, account_id, template_id, params, status, due_at,
                          purpose, not_after, closed_reason, promise_id, trigger_traceparent,
                          trigger_correlation_id)
    SELECT gen_random_uuid(), j.trigger_event_id, j.action, j.account_id, j.template_id, j.params, j.status,
           j.due_at, j.purpose, j.not_after, j.closed_reason, promise.promise_id, promise.trigger_traceparent,
           promise.trigger_correlation_id
    FROM json_to_recordset($3::text::json) AS j(trigger_event_id uuid, action text, account_id text,
         template_id text, params jsonb, status text, due_at timestamptz, purpose text, not_after timestamptz,
         closed_reason text)
    JOIN promise ON promise.outcome_event_id = j.trigger_event_id
    ON CONFLICT (trigger_event_id, action) DO NOTHING
    RETURNING trigger_event_id, action
)
SELECT ARRAY(SELECT ROW(outcome_event_id, promise_id) FROM promise) AS promises,
       ARRAY(SELECT ROW(trigger_event_id, action) FROM jobs) AS created
"""


@dataclass(frozen=True, slots=True)
class PromiseWrite:
    """A new promise with the ledger lines of its visit and its SMS jobs (all of one outcome)."""

    promise: NewPromise
    entries: Sequence[LedgerEntry]
    jobs: Sequence[NewSmsJob]


async def record_promises(
    conn: asyncpg.Connection, writes: Sequence[PromiseWrite]
) -> dict[uuid.UUID, tuple[uuid.UUID, frozenset[str]]]:
    """Promises with their ledger lines and SMS jobs, however many, in one round trip (the hot path).

    Returns, per outcome whose promise is new, (promise id, actions of the jobs created); an
    outcome whose promise exists already is left out, and its jobs are not written. Jobs keep
    their promise's trigger (the outcome) and its trace.
    """
    ledger = [
        {
            "account_id": w.promise.account_id,
            "source_id": e.source_id,
            "kind": e.kind,
            "occurred_at": e.occurred_at,
            "connected": e.connected,
            "number_id": e.number_id,
            "amount": e.amount,
            "detail": e.detail,
        }
        for w in writes
        for e in w.entries
    ]
    row = await conn.fetchrow(
        _RECORD_PROMISES,
        _json([w.promise for w in writes]),
        _json(ledger),
        _json([j for w in writes for j in w.jobs]),
    )
    assert row is not None  # a SELECT without FROM always answers one row
    created: dict[uuid.UUID, set[str]] = {}
    for trigger_id, action in row["created"]:
        created.setdefault(trigger_id, set()).add(action)
    return {
        outcome_id: (promise_id, frozenset(created.get(outcome_id, ())))
        for outcome_id, promise_id in row["promises"]
    }


def _json(rows: Sequence[Any]) -> str:
    """Rows (dataclasses or dicts) as a JSON array for json_to_recordset; amounts as exact text,
    naive datetimes as UTC (as asyncpg binds them)."""
    return orjson.dumps(rows, default=_exact, option=orjson.OPT_NAIVE_UTC).decode()


def _exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


async def record_promise(
    conn: asyncpg.Connection, promise: NewPromise, entries: Sequence[LedgerEntry], jobs: Sequence[NewSmsJob]
) -> tuple[uuid.UUID | None, frozenset[str]]:
    """One promise (record_promises): (its id, actions of the jobs created), or (None, empty) when
    this outcome's promise exists already: then neither it nor its jobs are written."""
    written = await record_promises(conn, [PromiseWrite(promise, entries, jobs)])
    return written.get(promise.outcome_event_id, (None, frozenset()))


async def supersede_promises(
    conn: asyncpg.Connection, account_id: str, keep_outcome: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Settle the account's open promises (but the one made at `keep_outcome`): a new promise,
    a hold or a closed account replaces them."""
    rows = await conn.fetch(
        "UPDATE promises SET status = 'superseded', settled_at = now() WHERE account_id = $1"
        " AND status = 'open' AND outcome_event_id IS DISTINCT FROM $2 RETURNING promise_id",
        account_id,
        keep_outcome,
    )
    return [r["promise_id"] for r in rows]


async def apply_payment(
    conn: asyncpg.Connection, account_id: str, amount: Decimal, cleared: bool
) -> list[asyncpg.Record]:
    """Add a payment to the account's open promises; those now covered (or cleared) are kept.

    Returns (promise_id, status) of every open promise it touched.
    """
    return list(
        await conn.fetch(
            "UPDATE promises SET paid_amount = paid_amount + $2,"
            " status = CASE WHEN $3 OR paid_amount + $2 >= amount THEN 'kept' ELSE status END,"
            " settled_at = CASE WHEN $3 OR paid_amount + $2 >= amount THEN now() ELSE settled_at END"
            " WHERE account_id = $1 AND status = 'open' RETURNING promise_id, status",
            account_id,
            amount,
            cleared,
        )
    )


async def promise_status(conn: asyncpg.Connection, promise_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await conn.fetch(
        "SELECT promise_id, status FROM promises WHERE promise_id = ANY($1::uuid[])", list(promise_ids)
    )
    return {r["promise_id"]: r["status"] for r in rows}


async def claim_due_promises(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Open promises past their date and grace, locked for the caller's transaction."""
    return list(
        await conn.fetch(
            "SELECT promise_id, account_id, outcome_event_id, amount, currency, promised_date,"
            " trigger_traceparent, trigger_correlation_id FROM promises"
            " WHERE status = 'open' AND due_check_at <= now() ORDER BY due_check_at LIMIT $1"
            " FOR UPDATE SKIP LOCKED",
            limit,
        )
    )


async def mark_broken(
    conn: asyncpg.Connection, promise_id: uuid.UUID, event_id: uuid.UUID, over_days: int
) -> int:
    """Break a promise; returns how many promises of the account broke within `over_days`."""
    count: int = await conn.fetchval(
        "WITH broken AS (UPDATE promises SET status = 'broken', broken_event_id = $2, settled_at = now()"
        "   WHERE promise_id = $1 RETURNING account_id)"
        " SELECT 1 + count(*) FROM promises p, broken b WHERE p.account_id = b.account_id"
        "   AND p.status = 'broken' AND p.settled_at > now() - make_interval(days => $3)",
        promise_id,
        event_id,
        over_days,
    )
    await conn.execute("UPDATE promises SET broken_count = $2 WHERE promise_id = $1", promise_id, count)
    return count


async def list_promises(conn: asyncpg.Connection, account_id: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT promise_id, account_id, amount, currency, promised_date, status, paid_amount, broken_count,"
        " made_at, due_check_at, settled_at FROM promises WHERE ($1::text IS NULL OR account_id = $1)"
        " ORDER BY created_at DESC LIMIT 1000",
        account_id,
    )
    return [dict(r) for r in rows]


# --- SMS jobs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSmsJob:
    trigger_event_id: uuid.UUID
    action: str
    account_id: str
    template_id: str
    params: dict[str, str]
    purpose: str
    status: str
    due_at: datetime
    not_after: datetime | None = None
    promise_id: uuid.UUID | None = None
    closed_reason: str | None = None
    basis_event_id: uuid.UUID | None = None
    trigger_traceparent: str | None = None
    trigger_correlation_id: str | None = None
    recipient: str = "debtor"
    # The params hold a secret (a one-time code): cleared once the job is closed (0005 migration).
    secret_params: bool = False


async def insert_sms_job(conn: asyncpg.Connection, job: NewSmsJob) -> uuid.UUID | None:
    """The job id, or None when this trigger already has this job: the unique key decides."""
    job_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO sms_jobs (job_id, trigger_event_id, action, account_id, template_id, params, status,"
        " due_at, purpose, not_after, promise_id, closed_reason, basis_event_id, trigger_traceparent,"
        " trigger_correlation_id, recipient, secret_params)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        " ON CONFLICT (trigger_event_id, action) DO NOTHING RETURNING job_id",
        uuid.uuid4(),
        job.trigger_event_id,
        job.action,
        job.account_id,
        job.template_id,
        job.params,
        job.status,
        job.due_at,
        job.purpose,
        job.not_after,
        job.promise_id,
        job.closed_reason,
        job.basis_event_id,
        job.trigger_traceparent,
        job.trigger_correlation_id,
        job.recipient,
        job.secret_params,
    )
    return job_id


async def claim_due_sms(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Lock due jobs for the caller's transaction; other workers skip them."""
    return list(
        await conn.fetch(
            "SELECT job_id, trigger_event_id, basis_event_id, action, account_id, template_id, params, purpose,"
            " attempts, not_after, promise_id, created_at, trigger_traceparent, trigger_correlation_id,"
            " recipient FROM sms_jobs"
            " WHERE status = 'pending' AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
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


async def defer_sms(conn: asyncpg.Connection, job_id: uuid.UUID, due_at: datetime, rule: str) -> None:
    await conn.execute(
        "UPDATE sms_jobs SET due_at = $2, last_error = $3 WHERE job_id = $1", job_id, due_at, rule
    )


async def close_sms(conn: asyncpg.Connection, job_id: uuid.UUID, status: str, reason: str) -> None:
    await conn.execute(
        "UPDATE sms_jobs SET status = $2, closed_reason = $3 WHERE job_id = $1", job_id, status, reason
    )


async def cancel_pending_sms(
    conn: asyncpg.Connection, account_id: str, actions: Sequence[str] | None, reason: str
) -> list[asyncpg.Record]:
    """Cancel an account's pending SMS of these actions (None: every collection SMS)."""
    return list(
        await conn.fetch(
            "UPDATE sms_jobs SET status = 'cancelled', closed_reason = $3"
            " WHERE account_id = $1 AND status = 'pending'"
            " AND CASE WHEN $2::text[] IS NULL THEN purpose = 'collection' ELSE action = ANY($2::text[]) END"
            " RETURNING job_id, action",
            account_id,
            None if actions is None else list(actions),
            reason,
        )
    )


async def cancel_promise_sms(
    conn: asyncpg.Connection, promise_ids: Sequence[uuid.UUID], reason: str
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "UPDATE sms_jobs SET status = 'cancelled', closed_reason = $2"
            " WHERE promise_id = ANY($1::uuid[]) AND status = 'pending' RETURNING job_id, account_id, action",
            list(promise_ids),
            reason,
        )
    )


async def sms_job_for_receipt(
    conn: asyncpg.Connection, provider_message_id: str, job_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT job_id, account_id, status, provider_message_id, trigger_event_id, trigger_traceparent,"
        " trigger_correlation_id FROM sms_jobs"
        " WHERE provider_message_id = $1 OR job_id = $2 LIMIT 1 FOR UPDATE",
        provider_message_id,
        job_id,
    )


async def record_receipt(conn: asyncpg.Connection, provider_message_id: str, status: str) -> bool:
    """False when this receipt was applied already (gateways retry their webhooks)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO sms_receipts (provider_message_id, status) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            provider_message_id,
            status,
        )
    )


async def set_delivery(conn: asyncpg.Connection, job_id: uuid.UUID, status: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE sms_jobs SET delivery_status = $2,"
        " delivered_at = CASE WHEN $2 = 'delivered' THEN $3 ELSE delivered_at END WHERE job_id = $1",
        job_id,
        status,
        at,
    )


async def record_inbound(
    conn: asyncpg.Connection, provider_message_id: str, kind: str, accounts: int
) -> bool:
    return bool(
        await conn.fetchval(
            "INSERT INTO inbound_sms (provider_message_id, kind, accounts) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            provider_message_id,
            kind,
            accounts,
        )
    )


async def inbound_seen(conn: asyncpg.Connection, provider_message_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM inbound_sms WHERE provider_message_id = $1", provider_message_id
        )
    )


async def list_jobs(conn: asyncpg.Connection, account_id: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT job_id, trigger_event_id, action, account_id, template_id, purpose, status, due_at,"
        " not_after, attempts, last_error, closed_reason, provider_message_id, sent_at, delivery_status,"
        " delivered_at FROM sms_jobs WHERE ($1::text IS NULL OR account_id = $1) ORDER BY created_at LIMIT 1000",
        account_id,
    )
    return [dict(r) for r in rows]


# --- call tasks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewCallTask:
    trigger_event_id: uuid.UUID
    action: str
    account_id: str
    reason: str
    purpose: str
    status: str
    due_at: datetime
    not_after: datetime | None
    needs_trained_agent: bool
    closed_reason: str | None = None
    basis_event_id: uuid.UUID | None = None
    trigger_traceparent: str | None = None
    trigger_correlation_id: str | None = None


async def insert_call_task(conn: asyncpg.Connection, task: NewCallTask) -> uuid.UUID | None:
    task_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO call_tasks (task_id, trigger_event_id, action, account_id, reason, purpose, status,"
        " due_at, not_after, needs_trained_agent, closed_reason, basis_event_id, trigger_traceparent,"
        " trigger_correlation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (trigger_event_id, action) DO NOTHING RETURNING task_id",
        uuid.uuid4(),
        task.trigger_event_id,
        task.action,
        task.account_id,
        task.reason,
        task.purpose,
        task.status,
        task.due_at,
        task.not_after,
        task.needs_trained_agent,
        task.closed_reason,
        task.basis_event_id,
        task.trigger_traceparent,
        task.trigger_correlation_id,
    )
    return task_id


async def claim_due_calls(conn: asyncpg.Connection, limit: int, trained: bool) -> list[asyncpg.Record]:
    """Due tasks (and tasks whose lease ran out), locked; untrained agents skip vulnerable customers."""
    return list(
        await conn.fetch(
            "SELECT task_id, trigger_event_id, basis_event_id, action, account_id, reason, purpose, due_at,"
            " not_after, created_at, trigger_traceparent, trigger_correlation_id FROM call_tasks"
            " WHERE ((status = 'pending' AND due_at <= now()) OR (status = 'claimed' AND lease_until < now()))"
            " AND (NOT needs_trained_agent OR $2) ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
            trained,
        )
    )


async def lease_call(conn: asyncpg.Connection, task_id: uuid.UUID, agent_id: str, seconds: float) -> datetime:
    lease_until: datetime = await conn.fetchval(
        "UPDATE call_tasks SET status = 'claimed', claimed_by = $2, attempts = attempts + 1,"
        " lease_until = now() + make_interval(secs => $3) WHERE task_id = $1 RETURNING lease_until",
        task_id,
        agent_id,
        seconds,
    )
    return lease_until


async def defer_call(conn: asyncpg.Connection, task_id: uuid.UUID, due_at: datetime) -> None:
    await conn.execute(
        "UPDATE call_tasks SET status = 'pending', due_at = $2, claimed_by = NULL, lease_until = NULL"
        " WHERE task_id = $1",
        task_id,
        due_at,
    )


async def close_call(conn: asyncpg.Connection, task_id: uuid.UUID, status: str, reason: str) -> None:
    await conn.execute(
        "UPDATE call_tasks SET status = $2, closed_reason = $3, lease_until = NULL WHERE task_id = $1",
        task_id,
        status,
        reason,
    )


async def call_task_for_update(conn: asyncpg.Connection, task_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT task_id, account_id, status, claimed_by, result, completed_at, trigger_event_id,"
        " trigger_traceparent, trigger_correlation_id FROM call_tasks"
        " WHERE task_id = $1 FOR UPDATE",
        task_id,
    )


async def complete_call(conn: asyncpg.Connection, task_id: uuid.UUID, result: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE call_tasks SET status = 'completed', result = $2, completed_at = $3, lease_until = NULL"
        " WHERE task_id = $1",
        task_id,
        result,
        at,
    )


async def cancel_pending_calls(
    conn: asyncpg.Connection, account_id: str, actions: Sequence[str] | None, reason: str
) -> list[asyncpg.Record]:
    """Cancel an account's pending calls of these actions (None: every collection call)."""
    return list(
        await conn.fetch(
            "UPDATE call_tasks SET status = 'cancelled', closed_reason = $3"
            " WHERE account_id = $1 AND status = 'pending'"
            " AND CASE WHEN $2::text[] IS NULL THEN purpose = 'collection' ELSE action = ANY($2::text[]) END"
            " RETURNING task_id, action",
            account_id,
            None if actions is None else list(actions),
            reason,
        )
    )


_CALL_COLUMNS = (
    "task_id, account_id, action, reason, purpose, status, due_at, claimed_by, lease_until, result,"
    " completed_at, closed_reason"
)


async def list_call_tasks(
    conn: asyncpg.Connection, account_id: str | None, status: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_CALL_COLUMNS} FROM call_tasks"
        " WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR status = $2)"
        " ORDER BY due_at LIMIT 1000",
        account_id,
        status,
    )
    return [dict(r) for r in rows]


async def call_task_view(conn: asyncpg.Connection, task_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(f"SELECT {_CALL_COLUMNS} FROM call_tasks WHERE task_id = $1", task_id)
    assert row is not None  # the caller holds the task's row lock
    return dict(row)


# --- care referrals and disputes -------------------------------------------------------------


async def insert_referral(
    conn: asyncpg.Connection,
    trigger: Trigger,
    account_id: str,
    program: str,
    rule: str,
    category: str,
) -> uuid.UUID | None:
    referral_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO care_referrals (referral_id, trigger_event_id, action, account_id, program, rule, category,"
        " status, trigger_traceparent, trigger_correlation_id)"
        " VALUES ($1, $2, 'care.referral', $3, $4, $5, $6, 'open', $7, $8)"
        " ON CONFLICT (trigger_event_id, action) DO NOTHING RETURNING referral_id",
        uuid.uuid4(),
        trigger.event_id,
        account_id,
        program,
        rule,
        category,
        trigger.traceparent,
        trigger.correlation_id,
    )
    return referral_id


_REFERRAL_COLUMNS = (
    "referral_id, account_id, program, rule, category, status, accepted_by, accepted_at, closed_by,"
    " closed_at, resolution, created_at"
)


async def list_referrals(conn: asyncpg.Connection, status: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_REFERRAL_COLUMNS} FROM care_referrals WHERE ($1::text IS NULL OR status = $1)"
        " ORDER BY created_at LIMIT 1000",
        status,
    )
    return [dict(r) for r in rows]


async def referral_for_update(conn: asyncpg.Connection, referral_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_REFERRAL_COLUMNS}, {_TRIGGER_COLUMNS} FROM care_referrals WHERE referral_id = $1 FOR UPDATE",
        referral_id,
    )


async def accept_referral(conn: asyncpg.Connection, referral_id: uuid.UUID, by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE care_referrals SET status = 'accepted', accepted_by = $2, accepted_at = now()"
        f" WHERE referral_id = $1 RETURNING {_REFERRAL_COLUMNS}",
        referral_id,
        by,
    )
    assert row is not None  # the caller locked the row first
    return row


async def close_referral(
    conn: asyncpg.Connection, referral_id: uuid.UUID, by: str, resolution: str
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE care_referrals SET status = 'closed', closed_by = $2, closed_at = now(), resolution = $3"
        f" WHERE referral_id = $1 RETURNING {_REFERRAL_COLUMNS}",
        referral_id,
        by,
        resolution,
    )
    assert row is not None  # the caller locked the row first
    return row


async def open_referrals(conn: asyncpg.Connection, account_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM care_referrals WHERE account_id = $1 AND status <> 'closed'", account_id
        )
    )


async def insert_dispute(conn: asyncpg.Connection, trigger: Trigger, account_id: str) -> uuid.UUID | None:
    dispute_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO disputes (dispute_id, trigger_event_id, account_id, status, trigger_traceparent,"
        " trigger_correlation_id) VALUES ($1, $2, $3, 'open', $4, $5)"
        " ON CONFLICT (trigger_event_id) DO NOTHING RETURNING dispute_id",
        uuid.uuid4(),
        trigger.event_id,
        account_id,
        trigger.traceparent,
        trigger.correlation_id,
    )
    return dispute_id


_DISPUTE_COLUMNS = "dispute_id, account_id, status, resolution, resolved_by, resolved_at, created_at"


async def list_disputes(conn: asyncpg.Connection, status: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_DISPUTE_COLUMNS} FROM disputes WHERE ($1::text IS NULL OR status = $1)"
        " ORDER BY created_at LIMIT 1000",
        status,
    )
    return [dict(r) for r in rows]


async def dispute_for_update(conn: asyncpg.Connection, dispute_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_DISPUTE_COLUMNS}, {_TRIGGER_COLUMNS} FROM disputes WHERE dispute_id = $1 FOR UPDATE",
        dispute_id,
    )


async def resolve_dispute(
    conn: asyncpg.Connection, dispute_id: uuid.UUID, by: str, resolution: str
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE disputes SET status = 'resolved', resolved_by = $2, resolved_at = now(), resolution = $3"
        f" WHERE dispute_id = $1 RETURNING {_DISPUTE_COLUMNS}",
        dispute_id,
        by,
        resolution,
    )
    assert row is not None  # the caller locked the row first
    return row


async def open_disputes(conn: asyncpg.Connection, account_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM disputes WHERE account_id = $1 AND status = 'open'", account_id
        )
    )
