"""Intake's use cases: validate snapshots, diff them, commit states with their events."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import TypeAdapter, ValidationError

from services.intake import masking, repository
from services.intake.lifecycle import AccountState, diff, priority_of, unchanged
from services.intake.models import AccountSnapshot
from services.intake.segmentation import Segmentation
from shared.consumer import PermanentError
from shared.errors import Conflict, NotFound
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue

SOURCE = "/fieldcollect/intake"
MAX_REPORTED_ERRORS = 1000
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


@dataclass
class _Plan:
    rows: dict[str, repository.AccountRow] = field(default_factory=dict)
    ignored: list[tuple[str, Any, Any]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)
    unchanged: int = 0


def _plan(
    snapshots: Sequence[AccountSnapshot],
    states: dict[str, AccountState],
    seg: Segmentation,
    source: str,
    cause: Envelope | None = None,
) -> _Plan:
    """The diff of every snapshot, in order: pure CPU work, run off the event loop."""
    plan = _Plan()
    for snap in snapshots:
        previous = states.get(snap.account_id)
        transition = diff(previous, snap, seg)
        if transition.out_of_order:
            plan.ignored.append((snap.account_id, snap.as_of, previous.as_of if previous else None))
            continue
        if unchanged(previous, transition):
            plan.unchanged += 1
        states[snap.account_id] = transition.state
        score = priority_of(snap, seg).score
        plan.rows[snap.account_id] = repository.AccountRow(snap, transition.state, score, seg.version)
        plan.events.extend(
            cause.caused(e, source) if cause else Envelope(data=e, source=source) for e in transition.events
        )
    return plan


async def apply_snapshots(
    conn: asyncpg.Connection,
    snapshots: Sequence[AccountSnapshot],
    seg: Segmentation,
    source: str,
    origin: str,
    cause: Envelope | None = None,
) -> ApplyResult:
    """Diff and commit in the caller's transaction. Duplicated accounts apply in order.

    With a `cause` (a consumed event), the events are caused by it (correlation, trace).
    """
    await repository.lock_apply(conn)
    states = await repository.load_states(conn, [s.account_id for s in snapshots])
    if len(snapshots) == 1:
        plan = _plan(snapshots, states, seg, source, cause)  # a thread hop costs more than one diff
    else:
        plan = await asyncio.to_thread(_plan, snapshots, states, seg, source, cause)
    await repository.save_accounts(conn, list(plan.rows.values()))
    await repository.record_ignored(conn, plan.ignored, origin)
    await enqueue(conn, *plan.events)
    return ApplyResult(
        accepted=len(snapshots),
        events_published=len(plan.events),
        ignored_out_of_order=len(plan.ignored),
        unchanged=plan.unchanged,
    )


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
    snapshots, errors = await asyncio.to_thread(validate_rows, rows)
    async with pool.acquire() as conn, conn.transaction():
        earlier = await repository.claim_batch(conn, idempotency_key, digest)
        if earlier is not None:
            if earlier["request_hash"] != digest:
                raise Conflict("Idempotency-Key was used for a different batch", "Idempotency-Key")
            return earlier["result"], True
        if errors and (all_or_nothing or not snapshots):
            applied = ApplyResult(rejected=errors)
        else:
            applied = await apply_snapshots(conn, snapshots, seg, SOURCE, f"batch:{idempotency_key}")
            applied.rejected = errors
        answer = {
            "batch_id": idempotency_key,
            "accepted": applied.accepted,
            "rejected_count": len({e.row for e in errors}),
            "rejected": [e.as_dict() for e in errors[:MAX_REPORTED_ERRORS]],
            "rejected_truncated": len(errors) > MAX_REPORTED_ERRORS,
            "events_published": applied.events_published,
            "ignored_out_of_order": applied.ignored_out_of_order,
            "unchanged": applied.unchanged,
        }
        if applied.accepted == 0:
            # Nothing accepted: don't burn the key, the caller fixes the rows and re-sends.
            raise BatchRejected(answer)
        await repository.store_batch_result(conn, idempotency_key, answer)
    return answer, False


async def apply_change(conn: asyncpg.Connection, event: Envelope, seg: Segmentation) -> None:
    """A core system's account change (CDC topic): validated and diffed as a batch row is.

    An invalid snapshot is a PermanentError naming fields and reasons (never values): the
    consumer runner sends it to intake's dead-letter topic and the partition keeps flowing.
    """
    data = event.data
    assert isinstance(data, p.AccountSnapshotChanged)
    snapshots, errors = validate_rows([data.snapshot])
    if errors:
        raise PermanentError("; ".join(f"snapshot.{e.field}: {e.reason}" for e in errors)[:1000])
    if snapshots[0].account_id != data.account_id:
        raise PermanentError("snapshot.account_id: differs from the event's account_id")
    await apply_snapshots(conn, snapshots, seg, SOURCE, f"cdc:{event.id}", cause=event)


class BatchRejected(Exception):
    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("batch rejected")
        self.answer = answer


# --- the accounts API -------------------------------------------------------------------


def account_view(row: Any, reveal_contact: bool, seg: Segmentation) -> dict[str, Any]:
    """An account as the API shows it: contact data only for roles that need it."""
    name, phone, line1, postal = (
        row["customer_name"],
        row["phone"],
        row["address_line1"],
        row["address_postal_code"],
    )
    lat, lon = row["lat"], row["lon"]
    if not reveal_contact:
        name, phone = masking.mask_name(name), masking.mask_phone(phone)
        line1, postal = masking.mask_text(line1), masking.mask_text(postal)
        lat, lon = masking.round_coordinate(lat), masking.round_coordinate(lon)
    return {
        "account_id": row["account_id"],
        "customer_id": row["customer_id"],
        "product": row["product"],
        "currency": row["currency"],
        "status": row["status"],
        "as_of": row["as_of"].isoformat(),
        "delinquent": row["delinquent"],
        "dpd": row["dpd"],
        "dpd_bucket": row["dpd_bucket"],
        "principal": _money(row["principal"]),
        "outstanding": _money(row["outstanding"]),
        "overdue_amount": _money(row["overdue_amount"]),
        "installment_amount": _money(row["installment_amount"]),
        "last_payment_date": row["last_payment_date"].isoformat() if row["last_payment_date"] else None,
        "last_payment_amount": _money(row["last_payment_amount"]),
        "priority": _priority(row, seg),
        "flags": row["flags"],
        "contact_masked": not reveal_contact,
        "customer": {
            "name": name,
            "phone": phone,
            "language": row["language"],
            "time_zone": row["time_zone"],
        },
        "address": {
            "line1": line1,
            "city": row["address_city"],
            "region": row["address_region"],
            "postal_code": postal,
            "country": row["address_country"],
            "lat": lat,
            "lon": lon,
        },
        "updated_at": row["updated_at"].isoformat(),
    }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _priority(row: Any, seg: Segmentation) -> dict[str, Any]:
    """The stored score, explained by recomputing it when it was scored with the current config."""
    answer: dict[str, Any] = {
        "score": row["priority_score"],
        "segmentation_version": row["segmentation_version"],
        "factors": None,
    }
    if row["segmentation_version"] == seg.version and row["dpd"] is not None:
        paid_on = row["last_payment_date"]
        priority = seg.explain(
            row["dpd"],
            row["overdue_amount"],
            bool(row["flags"].get("vulnerable")),
            row["installment_amount"],
            (row["as_of"] - paid_on).days if paid_on else None,
        )
        answer["factors"] = [f._asdict() for f in priority.factors]
    return answer


async def get_account(pool: Any, account_id: str, reveal_contact: bool, seg: Segmentation) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await repository.get_account(conn, account_id)
    if row is None:
        raise NotFound("no such account", "account_id")
    return account_view(row, reveal_contact, seg)


async def list_accounts(
    pool: Any,
    *,
    after: str,
    limit: int,
    dpd_bucket: str | None,
    delinquent: bool | None,
    reveal_contact: bool,
    seg: Segmentation,
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        rows = await repository.list_accounts(conn, after, limit, dpd_bucket, delinquent)
    items = [account_view(r, reveal_contact, seg) for r in rows]
    return {"accounts": items, "next_after": items[-1]["account_id"] if len(items) == limit else None}
