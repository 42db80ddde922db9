"""All of intake's SQL. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.intake.lifecycle import AccountState
from shared.events.payloads import CustomerFlags


async def lock_accounts(conn: asyncpg.Connection, account_ids: Sequence[str]) -> None:
    """Serialise concurrent snapshots of the same accounts (sorted: no deadlocks)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(id, 42)) FROM unnest($1::text[]) AS id ORDER BY id",
        sorted(set(account_ids)),
    )


async def load_states(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, AccountState]:
    rows = await conn.fetch(
        "SELECT account_id, as_of, delinquent, dpd_bucket, outstanding, overdue_amount,"
        " last_payment_date, flags FROM accounts WHERE account_id = ANY($1::text[])",
        list(account_ids),
    )
    return {r["account_id"]: _state(r) for r in rows}


def _state(row: asyncpg.Record) -> AccountState:
    return AccountState(
        account_id=row["account_id"],
        as_of=row["as_of"],
        delinquent=row["delinquent"],
        dpd_bucket=row["dpd_bucket"],
        outstanding=row["outstanding"],
        overdue_amount=row["overdue_amount"],
        last_payment_date=row["last_payment_date"],
        flags=CustomerFlags(**row["flags"]),
    )


async def save_states(conn: asyncpg.Connection, states: Sequence[tuple[str, AccountState]]) -> None:
    """Upsert (customer_id, state) pairs in one round trip."""
    if not states:
        return
    await conn.execute(
        """
        INSERT INTO accounts (account_id, customer_id, as_of, delinquent, dpd_bucket,
                              outstanding, overdue_amount, last_payment_date, flags)
        SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bool[], $5::text[],
                             $6::numeric[], $7::numeric[], $8::date[], $9::jsonb[])
        ON CONFLICT (account_id) DO UPDATE SET
            customer_id = EXCLUDED.customer_id, as_of = EXCLUDED.as_of,
            delinquent = EXCLUDED.delinquent, dpd_bucket = EXCLUDED.dpd_bucket,
            outstanding = EXCLUDED.outstanding, overdue_amount = EXCLUDED.overdue_amount,
            last_payment_date = EXCLUDED.last_payment_date, flags = EXCLUDED.flags,
            updated_at = now()
        """,
        [s.account_id for _, s in states],
        [c for c, _ in states],
        [s.as_of for _, s in states],
        [s.delinquent for _, s in states],
        [s.dpd_bucket for _, s in states],
        [s.outstanding for _, s in states],
        [s.overdue_amount for _, s in states],
        [s.last_payment_date for _, s in states],
        [s.flags.model_dump() for _, s in states],
    )


async def record_ignored(conn: asyncpg.Connection, rows: Sequence[tuple[str, Any, Any]], source: str) -> None:
    await conn.executemany(
        "INSERT INTO ignored_snapshots (account_id, snapshot_as_of, known_as_of, source, reason)"
        " VALUES ($1, $2, $3, $4, 'older than the last known snapshot')",
        [(*row, source) for row in rows],
    )


async def claim_batch(conn: asyncpg.Connection, key: str, request_hash: str) -> dict[str, Any] | None:
    """Reserve an idempotency key; returns the earlier answer when the key was used."""
    inserted = await conn.fetchval(
        "INSERT INTO batches (idempotency_key, request_hash, result) VALUES ($1, $2, '{}')"
        " ON CONFLICT DO NOTHING RETURNING true",
        key,
        request_hash,
    )
    if inserted:
        return None
    row = await conn.fetchrow("SELECT request_hash, result FROM batches WHERE idempotency_key = $1", key)
    return {"request_hash": row["request_hash"], "result": row["result"]}


async def store_batch_result(conn: asyncpg.Connection, key: str, result: dict[str, Any]) -> None:
    await conn.execute("UPDATE batches SET result = $2 WHERE idempotency_key = $1", key, result)
