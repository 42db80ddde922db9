"""The audit log on the real PostgreSQL: append-only, hash-chained, purged by retention only,
exported in a stream; and fed by the real broker through the audit service's consumer."""

import asyncio
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.audit import handlers, repository
from services.audit.main import SERVICE_DIR, create_app
from services.audit.trail import AuditEntry
from shared.events import Envelope
from shared.events import payloads as p
from shared.kafka import make_producer
from shared.settings import ServiceSettings
from tests.conftest import eventually, migrated_pool

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_pool(database_url):
    async with migrated_pool(database_url, SERVICE_DIR, "audit") as pool:
        yield pool


def _entry(n: int, at: datetime | None = None, account: str = "ACC-1") -> AuditEntry:
    return AuditEntry(
        event_id=uuid.uuid4(), occurred_at=at or datetime.now(UTC), account_id=account, actor="agent:AG-1",
        channel="visit", stage="performed", outcome=f"outcome-{n}", decision={"n": n}, event_type="visit.checked_in",
        caused_by=None,
    )  # fmt: skip


async def _append(pool, entries) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await repository.append(conn, entries)


async def test_updates_deletes_and_truncates_are_refused_by_the_database(audit_pool) -> None:
    await _append(audit_pool, [_entry(1)])
    async with audit_pool.acquire() as conn:
        for statement in (
            "UPDATE audit_log SET outcome = 'edited'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT outcome FROM audit_log") == "outcome-1"


async def test_the_chain_verifies_and_a_tampered_entry_is_found(audit_pool) -> None:
    await _append(audit_pool, [_entry(n) for n in range(5)])
    await _append(audit_pool, [_entry(n) for n in range(5, 8)])
    assert (await handlers.verify(audit_pool)).__dict__ == {"ok": True, "checked": 8, "first_bad_seq": None,
                                                            "problem": None}  # fmt: skip
    async with audit_pool.acquire() as conn:  # a superuser bypassing the trigger, as an attacker would
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        await conn.execute("UPDATE audit_log SET outcome = 'paid_on_site' WHERE seq = 4")
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    result = await handlers.verify(audit_pool)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "hash" in result.problem


async def test_a_redelivered_event_is_audited_once(audit_pool) -> None:
    entry = _entry(1)
    await _append(audit_pool, [entry])
    await _append(audit_pool, [entry])
    async with audit_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_retention_purges_only_the_expired_prefix_and_the_rest_still_verifies(audit_pool) -> None:
    old = datetime.now(UTC) - timedelta(days=2000)
    await _append(audit_pool, [_entry(n, at=old) for n in range(3)] + [_entry(n) for n in range(3, 6)])
    assert await handlers.purge_expired(audit_pool, retention_days=5 * 366) == 3
    async with audit_pool.acquire() as conn:
        assert await conn.fetchval("SELECT min(seq) FROM audit_log") == 4
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log WHERE seq = 4")
    assert (await handlers.verify(audit_pool)).ok
    await _append(audit_pool, [_entry(9)])
    assert (await handlers.verify(audit_pool)).checked == 4


async def test_a_large_export_streams_without_loading_the_range(audit_pool) -> None:
    rows = 20_000
    async with audit_pool.acquire() as conn, conn.transaction():
        await repository.append(conn, [_entry(n) for n in range(rows)])
    tracemalloc.start()
    lines, size = 0, 0
    async for chunk in handlers.export(audit_pool, "csv", "ACC-1", None, None):
        lines += 1
        size += len(chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == rows + 1
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte export: it was not streamed"


async def test_the_audit_service_records_contacts_from_the_topics(
    service_env, kafka_bootstrap, token
) -> None:
    app = create_app()
    account = f"AUD-{uuid.uuid4().hex[:6]}"
    auditor = {"Authorization": f"Bearer {token('auditor-1', 'auditor')}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        await app.state.runtime.consumers[0].wait_for_assignment()
        producer = make_producer(ServiceSettings(), "audit-test")
        await producer.start()
        try:
            for data in (
                p.ContactSuppressed(
                    account_id=account, channel="call", rule="cn.daily_attempts", pack="cn@2026.1"
                ),
                p.PromiseKept(account_id=account, promise_id=uuid.uuid4()),
            ):
                event = Envelope(data=data, source="/test")
                await producer.send_and_wait(
                    event.topic, event.value(), key=event.key, headers=event.headers()
                )
        finally:
            await producer.stop()

        async def entries():
            r = await client.get("/v1/audit/entries", params={"account_id": account}, headers=auditor)
            return r.json() if r.status_code == 200 and r.json() else None

        found = await eventually(entries, timeout_s=60)
        assert [(e["stage"], e["channel"], e["decision"]["rule"]) for e in found] == [
            ("refused", "call", "cn.daily_attempts")
        ]
        csv_export = await client.get("/v1/audit/export", params={"account_id": account}, headers=auditor)
        assert csv_export.status_code == 200
        assert csv_export.text.splitlines()[0].startswith("seq,event_id,occurred_at")
        assert len(csv_export.text.splitlines()) == 2
        other = {"Authorization": f"Bearer {token('AG-1', 'agent')}"}
        assert (await client.get("/v1/audit/entries", headers=other)).status_code == 403
        assert (await client.get("/v1/audit/verify", headers=auditor)).json()["ok"] is True
        await asyncio.sleep(0)
