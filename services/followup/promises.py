"""The promise clock: a promise not kept by its date plus grace is broken, and followed up.

Runs on every replica: due promises are claimed with FOR UPDATE SKIP LOCKED and broken in
the claiming transaction together with the events and the call task it causes, so each
promise breaks once, whoever runs the step.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.followup import repository
from services.followup.contacts import SOURCE, CallSpec, Followup, now_utc, request_revisit, schedule_call
from services.followup.handlers import cancel_promise_messages
from services.followup.ledger import HISTORY_DAYS
from services.followup.models import AccountFacts, Trigger
from shared.events import payloads as p
from shared.outbox import enqueue

BATCH = 100


class PromiseClock:
    def __init__(self, pool: Any, ctx: Followup, batch: int = BATCH) -> None:
        self._pool = pool
        self._ctx = ctx
        self._batch = batch
        self.broken = 0

    async def step(self) -> bool:
        """Break the promises that are due; True when there may be more."""
        async with self._pool.acquire() as conn, conn.transaction():
            due = await repository.claim_due_promises(conn, self._batch)
            if not due:
                return False
            since = now_utc() - timedelta(days=HISTORY_DAYS)
            facts = await repository.load_facts(conn, sorted({r["account_id"] for r in due}), since)
            for row in due:
                await break_promise(conn, self._ctx, row, facts.get(row["account_id"]))
        self.broken += len(due)
        return len(due) == self._batch


async def break_promise(
    conn: asyncpg.Connection, ctx: Followup, promise: asyncpg.Record, facts: AccountFacts | None
) -> None:
    """promise.broken, then a call, or a revisit once promises keep breaking."""
    rules = ctx.rules.promise.on_broken
    account_id, outcome_id = promise["account_id"], promise["outcome_event_id"]
    # Days after the visit, still in the visit outcome's trace and correlation.
    outcome = Trigger(
        outcome_id, promise["trigger_traceparent"], promise["trigger_correlation_id"] or str(outcome_id)
    )
    event_id = uuid.uuid4()
    count = await repository.mark_broken(conn, promise["promise_id"], event_id, rules.count_breaks_over_days)
    data = p.PromiseBroken(account_id=account_id, promise_id=promise["promise_id"], broken_count=count)
    broken = replace(outcome.caused(data, SOURCE), id=event_id)
    await enqueue(conn, broken)
    await cancel_promise_messages(conn, ctx, broken, [promise["promise_id"]], "pointless.promise_broken")
    now = now_utc()
    if count >= rules.revisit_after_breaks:
        zone = facts.time_zone if facts else ctx.default_time_zone
        not_before = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=rules.revisit_not_before_days)
        await request_revisit(conn, broken, account_id, f"promise broken {count} times", not_before)
        return
    earliest = now + timedelta(hours=rules.call_delay_hours)
    latest = earliest + timedelta(days=rules.call_within_days)
    # The visit where the promise was made is what the call is about: it never makes it pointless.
    basis = promise["outcome_event_id"]
    spec = CallSpec("call.promise_broken", "promise_broken", "collection", earliest, latest, basis)
    await schedule_call(conn, ctx, broken, account_id, facts, spec)
