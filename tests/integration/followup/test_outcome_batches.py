"""A consumed batch of outcomes (EventHandlers.outcome_batch: facts read ahead, promises written in
one statement) leaves exactly what the same events applied one at a time leave: promises, SMS
jobs, calls, the ledger and the events in the outbox — including an account met twice in one
batch, an unknown account, a payment learnt before the promise, and a refusal that is audited.
Real PostgreSQL, follow-up's own migrations on a schema of this test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.followup.contacts import Followup
from services.followup.gate import ContactGate
from services.followup.handlers import EventHandlers
from services.followup.main import SERVICE_DIR
from services.followup.rules import load_rules
from shared.compliance import PackCatalog
from shared.events import Envelope, decode
from shared.events import payloads as p
from tests.conftest import migrated_pool
from tests.integration.followup.conftest import opened, outcome, payment, promise, zone_at_local_hour

pytestmark = pytest.mark.integration
RULES = load_rules()
HANDLERS = EventHandlers(Followup(RULES, ContactGate(PackCatalog(), RULES.contact_hours), "Asia/Shanghai"))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Any]:
    async with migrated_pool(database_url, SERVICE_DIR, "t_fu", 3) as pool:
        yield pool


def scenario(tag: str) -> tuple[list[Envelope], list[Envelope]]:
    """(facts known beforehand, the batch of outcomes) for accounts named after `tag`."""
    day, night = zone_at_local_hour(13), zone_at_local_hour(2)
    before = [
        opened(f"{tag}-plain", "+8613900000001", day),
        opened(f"{tag}-twice", "+8613900000002", day),
        opened(f"{tag}-absent", "+8613900000003", day),
        opened(f"{tag}-night", "+8613900000004", night),
        opened(f"{tag}-paid", "+8613900000005", day),
    ]
    made = datetime.now(UTC) - timedelta(minutes=5)
    before.append(payment(f"{tag}-paid", "100.00", overdue_after="800.00"))
    batch = [
        outcome(f"{tag}-plain", promise("300.00", days=6)),
        outcome(f"{tag}-twice", promise("300.00", days=6)),
        outcome(f"{tag}-absent", p.CustomerAbsent()),
        outcome(f"{tag}-twice", promise("450.00", days=8)),
        outcome(f"{tag}-night", promise("300.00", days=6)),
        outcome(f"{tag}-unknown", promise("300.00", days=6)),
        outcome(f"{tag}-absent", promise("200.00", days=4)),
        outcome(f"{tag}-paid", promise("300.00", days=6), recorded_at=made),
    ]
    return before, batch


async def apply(conn: Any, event: Envelope) -> None:
    handler = {
        "delinquency.opened": HANDLERS.on_delinquency_opened,
        "payment.received": HANDLERS.on_payment_received,
        "visit.outcome_recorded": HANDLERS.on_outcome_recorded,
    }[event.type]
    await handler(conn, event)


async def state(conn: Any, tag: str) -> dict[str, Any]:
    """Everything follow-up wrote about the tag's accounts, with ids and run-dependent times left out."""

    def name(account_id: str) -> str:
        return account_id.removeprefix(f"{tag}-")

    like = f"{tag}-%"
    promises = await conn.fetch(
        "SELECT account_id, amount, status, paid_amount FROM promises WHERE account_id LIKE $1"
        " ORDER BY account_id, amount",
        like,
    )
    jobs = await conn.fetch(
        "SELECT s.account_id, s.action, s.status, s.closed_reason, pr.amount,"
        " CASE WHEN s.action = 'sms.promise_reminder' THEN s.due_at END AS reminder_due"
        " FROM sms_jobs s LEFT JOIN promises pr USING (promise_id) WHERE s.account_id LIKE $1"
        " ORDER BY s.account_id, pr.amount, s.action",
        like,
    )
    calls = await conn.fetch(
        "SELECT account_id, action, status, closed_reason FROM call_tasks WHERE account_id LIKE $1"
        " ORDER BY account_id, action",
        like,
    )
    ledger = await conn.fetch(
        "SELECT account_id, kind, amount FROM contact_ledger WHERE account_id LIKE $1"
        " ORDER BY account_id, kind, amount",
        like,
    )
    outbox = [
        decode(r["value"], list(zip(r["header_keys"], r["header_values"], strict=True)))
        for r in await conn.fetch(
            "SELECT value, header_keys, header_values FROM outbox WHERE key = ANY($1::bytea[]) ORDER BY id",
            [f"{tag}-{n}".encode() for n in ("plain", "twice", "absent", "night", "unknown", "paid")],
        )
    ]
    events: dict[str, list[tuple[Any, ...]]] = {}
    for e in outbox:
        detail = (e.data.action, e.data.rule, e.data.disposition) if e.type == "contact.suppressed" else ()
        events.setdefault(name(e.data.account_id), []).append((e.type, *detail))
    for account_events in events.values():
        account_events.sort()  # what one statement cancels comes back in no particular order
    return {
        "promises": [(name(r["account_id"]), *list(r.values())[1:]) for r in promises],
        "jobs": [(name(r["account_id"]), *list(r.values())[1:]) for r in jobs],
        "calls": [(name(r["account_id"]), *list(r.values())[1:]) for r in calls],
        "ledger": [(name(r["account_id"]), *list(r.values())[1:]) for r in ledger],
        "events": events,
    }


async def test_a_batch_leaves_what_one_event_at_a_time_leaves(pool) -> None:
    one_by_one, batched = scenario("seq"), scenario("bat")
    async with pool.acquire() as conn:
        for event in one_by_one[0] + batched[0]:
            async with conn.transaction():
                await apply(conn, event)
        async with conn.transaction():
            for event in one_by_one[1]:
                await apply(conn, event)
        async with conn.transaction(), HANDLERS.outcome_batch(conn, batched[1]):
            for event in batched[1]:
                await apply(conn, event)
        expected, got = await state(conn, "seq"), await state(conn, "bat")

    assert got == expected
    # The scenario reaches every path: staged, superseded, refused and audited, paid before, unknown.
    assert {(j[0], j[2], j[3], j[4]) for j in got["jobs"] if j[0] == "twice"} == {
        ("twice", "cancelled", "followup.pointless.promise_superseded", 300),
        ("twice", "pending", None, 450),
    }
    assert ("contact.suppressed", "sms.promise_confirmation", "cn.quiet_hours", "deferred") in got["events"][
        "night"
    ]
    assert ("paid", 300, "open", 100) in got["promises"]
    assert got["calls"] == [("absent", "call.customer_absent", "cancelled", "followup.pointless.promise")]
    assert {j[0] for j in got["jobs"]} == {"plain", "twice", "absent", "night", "unknown", "paid"}


async def test_a_redelivered_batch_writes_nothing_twice(pool) -> None:
    before, batch = scenario("again")
    async with pool.acquire() as conn:
        for event in before:
            async with conn.transaction():
                await apply(conn, event)
        for _ in range(2):
            async with conn.transaction(), HANDLERS.outcome_batch(conn, batch):
                for event in batch:
                    await apply(conn, event)
        jobs = await conn.fetch(
            "SELECT trigger_event_id, action, count(*) AS n FROM sms_jobs WHERE account_id LIKE 'again-%'"
            " GROUP BY 1, 2"
        )
        promises = await conn.fetchval("SELECT count(*) FROM promises WHERE account_id LIKE 'again-%'")
    assert jobs and all(j["n"] == 1 for j in jobs)
    assert promises == sum(1 for e in batch if isinstance(e.data.outcome, p.PromiseToPay))


async def test_jobs_keep_the_trace_of_the_outcome_that_caused_them(pool) -> None:
    before, batch = scenario("trace")
    async with pool.acquire() as conn:
        for event in before:
            async with conn.transaction():
                await apply(conn, event)
        async with conn.transaction(), HANDLERS.outcome_batch(conn, batch):
            for event in batch:
                await apply(conn, event)
        rows = await conn.fetch(
            "SELECT trigger_event_id, trigger_traceparent, trigger_correlation_id FROM sms_jobs"
            " WHERE account_id LIKE 'trace-%' UNION ALL"
            " SELECT trigger_event_id, trigger_traceparent, trigger_correlation_id FROM call_tasks"
            " WHERE account_id LIKE 'trace-%' UNION ALL"
            " SELECT outcome_event_id, trigger_traceparent, trigger_correlation_id FROM promises"
            " WHERE account_id LIKE 'trace-%'"
        )
    by_id = {e.id: e for e in batch}
    assert len(rows) > len(batch)
    for row in rows:
        cause = by_id[row["trigger_event_id"]]
        assert row["trigger_traceparent"] == cause.traceparent
        assert row["trigger_correlation_id"] == (cause.correlation_id or str(cause.id))
