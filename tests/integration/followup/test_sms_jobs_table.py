"""The job table after 0006: what the hot path no longer pays for still holds.

Receipts still find a job by its provider message id through an index (now only of sent jobs),
and a job's secret parameters are still cleared when it closes (the trigger now fires only
for jobs that hold a secret).
"""

import json
import uuid

import asyncpg
import pytest

from services.followup.main import SERVICE_DIR
from tests.conftest import migrated_pool

pytestmark = pytest.mark.integration

CODE = {"code": "482913", "amount": "300.00"}


async def add_job(conn: asyncpg.Connection, status: str, secret: bool) -> uuid.UUID:
    job_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO sms_jobs (job_id, trigger_event_id, action, account_id, template_id, params, status,"
        " due_at, purpose, secret_params) VALUES ($1, $2, 'sms.cash_confirmation', 'A1', 'cash_confirmation',"
        " $3, $4, now(), 'collection', $5)",
        job_id,
        uuid.uuid4(),
        CODE,
        status,
        secret,
    )
    return job_id


async def params(conn: asyncpg.Connection, job_id: uuid.UUID) -> dict[str, str]:
    return await conn.fetchval("SELECT params FROM sms_jobs WHERE job_id = $1", job_id)


async def test_secret_params_are_cleared_when_a_secret_job_closes_and_only_then(database_url: str) -> None:
    async with migrated_pool(database_url, SERVICE_DIR, "fj", 1) as pool, pool.acquire() as conn:
        pending_secret = await add_job(conn, "pending", secret=True)
        plain = await add_job(conn, "pending", secret=False)
        closed_at_birth = await add_job(conn, "suppressed", secret=True)
        assert await params(conn, pending_secret) == CODE
        assert await params(conn, closed_at_birth) == {}
        await conn.execute(
            "UPDATE sms_jobs SET status = 'sent', provider_message_id = 'm-' || job_id WHERE job_id = ANY($1)",
            [pending_secret, plain],
        )
        assert await params(conn, pending_secret) == {}
        assert await params(conn, plain) == CODE


async def test_receipts_find_jobs_by_message_id_through_the_index_of_sent_jobs(database_url: str) -> None:
    async with migrated_pool(database_url, SERVICE_DIR, "fj", 1) as pool, pool.acquire() as conn:
        job_id = await add_job(conn, "pending", secret=False)
        await add_job(conn, "pending", secret=False)
        await conn.execute(
            "UPDATE sms_jobs SET status = 'sent', provider_message_id = 'm-1' WHERE job_id = $1", job_id
        )
        indexed = await conn.fetchval(
            "SELECT count(*) FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid"
            " WHERE x.indrelid = 'sms_jobs'::regclass AND pg_get_indexdef(i.oid) LIKE '%(provider_message_id)%'"
        )
        assert indexed == 1
        assert await conn.fetchval("SELECT count(*) FROM sms_jobs WHERE provider_message_id IS NOT NULL") == 1
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            (row,) = await conn.fetch(
                "EXPLAIN (FORMAT JSON) SELECT job_id FROM sms_jobs WHERE provider_message_id = $1 OR job_id = $2",
                "m-1",
                uuid.uuid4(),
            )
    plan = json.dumps(json.loads(row[0]) if isinstance(row[0], str) else row[0])
    assert "sms_jobs_message_sent" in plan
