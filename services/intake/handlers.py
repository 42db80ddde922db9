"""Intake's use cases: validate snapshots, diff them, commit states with their events."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from pydantic import TypeAdapter, ValidationError

from services.intake import repository
from services.intake.lifecycle import diff, unchanged
from services.intake.models import AccountSnapshot
from services.intake.segmentation import Segmentation
from shared.errors import Conflict
from shared.events import Envelope
from shared.outbox import enqueue

SOURCE = "/fieldcollect/intake"
_snapshot = TypeAdapter(AccountSnapshot)


@dataclass
class RowError:
    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass
class ApplyResult:
    accepted: int = 0
    events_published: int = 0
    ignored_out_of_order: int = 0
    unchanged: int = 0
    rejected: list[RowError] = field(default_factory=list)


def validate_rows(rows: Sequence[Any], first_row: int = 0) -> tuple[list[AccountSnapshot], list[RowError]]:
    """Each row on its own: one bad row never hides the good ones. Errors name no values."""
    valid: list[AccountSnapshot] = []
    errors: list[RowError] = []
    for i, row in enumerate(rows, start=first_row):
        try:
            valid.append(_snapshot.validate_python(row))
        except ValidationError as exc:
            errors.extend(
                RowError(i, ".".join(str(p) for p in err["loc"]) or "(row)", err["msg"])
                for err in exc.errors()
            )
    return valid, errors


async def apply_snapshots(
    conn: asyncpg.Connection, snapshots: Sequence[AccountSnapshot], seg: Segmentation, source: str
) -> ApplyResult:
    """Diff and commit in the caller's transaction. Duplicated accounts apply in order."""
    result = ApplyResult(accepted=len(snapshots))
    ids = [s.account_id for s in snapshots]
    await repository.lock_accounts(conn, ids)
    states = await repository.load_states(conn, ids)
    to_save: dict[str, tuple[str, Any]] = {}
    ignored: list[tuple[str, Any, Any]] = []
    events: list[Envelope] = []
    for snap in snapshots:
        previous = states.get(snap.account_id)
        transition = diff(previous, snap, seg)
        if transition.out_of_order:
            ignored.append((snap.account_id, snap.as_of, previous.as_of if previous else None))
            continue
        if unchanged(previous, transition):
            result.unchanged += 1
        states[snap.account_id] = transition.state
        to_save[snap.account_id] = (snap.customer_id, transition.state)
        events.extend(Envelope(data=e, source=source) for e in transition.events)
    await repository.save_states(conn, list(to_save.values()))
    await repository.record_ignored(conn, ignored, source)
    await enqueue(conn, *events)
    result.events_published = len(events)
    result.ignored_out_of_order = len(ignored)
    return result


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def ingest_batch(
    pool: Any,
    idempotency_key: str,
    body: bytes,
    rows: Sequence[Any],
    all_or_nothing: bool,
    seg: Segmentation,
) -> tuple[dict[str, Any], bool]:
    """Returns (answer, replayed). A re-sent batch gets its first answer and publishes nothing."""
    digest = request_hash(body)
    snapshots, errors = validate_rows(rows)
    async with pool.acquire() as conn, conn.transaction():
        earlier = await repository.claim_batch(conn, idempotency_key, digest)
        if earlier is not None:
            if earlier["request_hash"] != digest:
                raise Conflict("Idempotency-Key was used for a different batch", "Idempotency-Key")
            return earlier["result"], True
        if errors and (all_or_nothing or not snapshots):
            applied = ApplyResult(rejected=errors)
        else:
            applied = await apply_snapshots(conn, snapshots, seg, SOURCE)
            applied.rejected = errors
        answer = {
            "batch_id": idempotency_key,
            "accepted": applied.accepted,
            "rejected_count": len({e.row for e in errors}),
            "rejected": [e.as_dict() for e in errors[:1000]],
            "events_published": applied.events_published,
            "ignored_out_of_order": applied.ignored_out_of_order,
            "unchanged": applied.unchanged,
        }
        if applied.accepted == 0:
            # Nothing accepted: don't burn the key, the caller fixes the rows and re-sends.
            raise BatchRejected(answer)
        await repository.store_batch_result(conn, idempotency_key, answer)
    return answer, False


class BatchRejected(Exception):
    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("batch rejected")
        self.answer = answer


def parse_json(body: bytes) -> Any:
    return orjson.loads(body)
