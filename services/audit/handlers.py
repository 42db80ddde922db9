"""The audit trail's use cases: append contact attempts, verify the chain, export, purge."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from services.audit import repository
from services.audit.trail import GENESIS_HASH, AuditEntry, chain_hash, entry_for
from shared.events import Envelope

EXPORT_COLUMNS = (
    "seq", "event_id", "occurred_at", "recorded_at", "account_id", "actor", "channel", "stage", "outcome",
    "decision", "event_type", "caused_by", "prev_hash", "hash",
)  # fmt: skip


async def on_contact_event(conn: asyncpg.Connection, event: Envelope) -> None:
    entry = entry_for(event)
    if entry is not None:
        await repository.append(conn, [entry])


@dataclass
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


async def verify(pool: Any) -> Verification:
    """Recompute the chain from the last retention checkpoint (or the genesis) to the head."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        mark = await repository.checkpoint(conn)
        prev = mark["last_purged_hash"] if mark else GENESIS_HASH
        expected_seq = (mark["purged_through_seq"] if mark else 0) + 1
        checked = 0
        async for row in repository.stream(conn, None, None, None):
            problem = _check_row(row, prev, expected_seq)
            if problem:
                return Verification(False, checked, row["seq"], problem)
            prev, expected_seq, checked = row["hash"], expected_seq + 1, checked + 1
        head = await conn.fetchrow("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        if checked and (head["last_seq"], head["last_hash"]) != (expected_seq - 1, prev):
            return Verification(False, checked, head["last_seq"], "head does not match the last entry")
    return Verification(True, checked)


def _check_row(row: asyncpg.Record, prev: str, expected_seq: int) -> str | None:
    if row["seq"] != expected_seq:
        return f"gap: expected seq {expected_seq}"
    if row["prev_hash"] != prev:
        return "prev_hash does not link to the previous entry"
    entry = AuditEntry(
        event_id=row["event_id"], occurred_at=row["occurred_at"], account_id=row["account_id"], actor=row["actor"],
        channel=row["channel"], stage=row["stage"], outcome=row["outcome"], decision=row["decision"],
        event_type=row["event_type"], caused_by=row["caused_by"],
    )  # fmt: skip
    if chain_hash(prev, row["seq"], entry) != row["hash"]:
        return "hash does not match the entry's content"
    return None


async def export(
    pool: Any, fmt: str, account_id: str | None, since: datetime | None, until: datetime | None
) -> AsyncIterator[bytes]:
    """Stream a range as CSV or JSON lines, one row at a time from a server-side cursor."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if fmt == "csv":
            yield _csv_line(EXPORT_COLUMNS)
        async for row in repository.stream(conn, account_id, since, until):
            values = [_plain(row[c]) for c in EXPORT_COLUMNS]
            if fmt == "csv":
                yield _csv_line(values)
            else:
                yield orjson.dumps(dict(zip(EXPORT_COLUMNS, values, strict=True))) + b"\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value if value is None or isinstance(value, int) else str(value)


def _csv_line(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode()


async def purge_expired(pool: Any, retention_days: int, now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    async with pool.acquire() as conn, conn.transaction():
        return await repository.purge_before(conn, cutoff, retention_days)
