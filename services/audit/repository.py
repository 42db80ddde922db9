"""All of the audit trail's SQL: append to the chain, read it back, verify it, purge it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg

from services.audit.trail import AuditEntry, chain_hash

_COLUMNS = (
    "seq, event_id, occurred_at, recorded_at, account_id, actor, channel, stage, outcome, decision,"
    " event_type, caused_by, prev_hash, hash"
)


async def append(conn: asyncpg.Connection, entries: list[AuditEntry]) -> int:
    """Append in the caller's transaction; the head row lock keeps one chain across replicas.
    An event already audited (redelivery) is skipped: the unique event id decides."""
    head = await conn.fetchrow("SELECT last_seq, last_hash FROM audit_head WHERE id = 1 FOR UPDATE")
    assert head is not None, "migration 0001 seeds the head row"
    seq, prev = head["last_seq"], head["last_hash"]
    appended = 0
    for entry in entries:
        if await conn.fetchval("SELECT 1 FROM audit_log WHERE event_id = $1", entry.event_id):
            continue
        seq += 1
        digest = chain_hash(prev, seq, entry)
        await conn.execute(
            "INSERT INTO audit_log (seq, event_id, occurred_at, account_id, actor, channel, stage, outcome,"
            " decision, event_type, caused_by, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            seq, entry.event_id, entry.occurred_at, entry.account_id, entry.actor, entry.channel, entry.stage,
            entry.outcome, entry.decision, entry.event_type, entry.caused_by, prev, digest,
        )  # fmt: skip
        prev = digest
        appended += 1
    await conn.execute("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1", seq, prev)
    return appended


def _filters(account_id: str | None, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    return (
        " WHERE ($1::text IS NULL OR account_id = $1) AND ($2::timestamptz IS NULL OR occurred_at >= $2)"
        " AND ($3::timestamptz IS NULL OR occurred_at < $3)",
        [account_id, since, until],
    )


async def stream(
    conn: asyncpg.Connection, account_id: str | None, since: datetime | None, until: datetime | None
) -> AsyncIterator[asyncpg.Record]:
    """A server-side cursor: a range of any size, never loaded whole. Needs a transaction."""
    where, args = _filters(account_id, since, until)
    async for row in conn.cursor(
        f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY seq", *args, prefetch=500
    ):
        yield row


async def page(
    conn: asyncpg.Connection,
    account_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    where, args = _filters(account_id, since, until)
    return await conn.fetch(f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY seq LIMIT {int(limit)}", *args)


async def checkpoint(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT purged_through_seq, last_purged_hash FROM audit_checkpoints ORDER BY purged_through_seq DESC LIMIT 1"
    )


async def purge_before(conn: asyncpg.Connection, cutoff: datetime, retention_days: int) -> int:
    """Delete the chain's expired prefix (the trigger allows only that) and leave a checkpoint."""
    last = await conn.fetchrow(
        "SELECT seq, hash FROM audit_log WHERE seq < coalesce("
        " (SELECT min(seq) FROM audit_log WHERE occurred_at >= $1), 9223372036854775807)"
        " ORDER BY seq DESC LIMIT 1",
        cutoff,
    )
    if last is None:
        return 0
    await conn.execute("SELECT set_config('audit.purge_before', $1, true)", cutoff.isoformat())
    deleted = await conn.execute("DELETE FROM audit_log WHERE seq <= $1", last["seq"])
    await conn.execute("SELECT set_config('audit.purge_before', '', true)")
    await conn.execute(
        "INSERT INTO audit_checkpoints (purged_through_seq, last_purged_hash, retention_days) VALUES ($1, $2, $3)",
        last["seq"],
        last["hash"],
        retention_days,
    )
    return int(deleted.split()[-1])
