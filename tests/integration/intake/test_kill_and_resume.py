"""A file import killed half-way (SIGKILL) resumes without losing or duplicating anything."""

import asyncio
import collections
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from services.intake import repository
from services.intake.file_import import file_facts, register_import, run_import
from services.intake.main import SCHEMA, SERVICE_DIR
from services.intake.segmentation import load_segmentation
from shared.db import create_pool, migrate
from shared.errors import Conflict
from shared.events import decode
from shared.events.topics import DELINQUENCY
from shared.kafka import make_producer
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings
from tests.conftest import eventually
from tests.integration.intake.conftest import topic_records
from tests.unit.intake.files import csv_bytes, row

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
ACCOUNTS = 12_000
BAD_EVERY = 997  # some rejected rows too: the report must not double either


def write_file(path: Path, prefix: str) -> tuple[int, int]:
    rows = []
    for i in range(ACCOUNTS):
        bad = i % BAD_EVERY == 0
        rows.append(
            row(f"{prefix}-{i:06d}", customer_name=f"王秀英{i}", principal="??" if bad else "12000.00")
        )
    path.write_bytes(csv_bytes(rows))
    rejected = sum(1 for i in range(ACCOUNTS) if i % BAD_EVERY == 0)
    return ACCOUNTS - rejected, rejected


def import_command(path: Path, database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.intake",
            "import-file",
            str(path),
            "--chunk-rows",
            "100",
            "--no-progress",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def import_state(pool, sha256: str):
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT import_id, status, high_water_row, rows_accepted, rows_rejected FROM imports"
            " WHERE file_sha256 = $1",
            sha256,
        )


async def test_an_import_killed_mid_file_resumes_exactly_where_it_stopped(
    service_env, database_url, kafka_bootstrap, tmp_path
) -> None:
    prefix = f"K{uuid.uuid4().hex[:8].upper()}"
    path = tmp_path / "daily.csv"
    accepted, rejected = write_file(path, prefix)
    sha256 = file_facts(path).sha256
    pool = await create_pool(database_url, SCHEMA, 1, 4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, SERVICE_DIR)
        first = import_command(path, database_url)

        async def half_way():
            state = await import_state(pool, sha256)
            return state if state and 1_000 <= state["high_water_row"] < ACCOUNTS - 3_000 else None

        try:
            await eventually(half_way, timeout_s=120, interval_s=0.01)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        killed = await import_state(pool, sha256)
        assert killed["status"] == "running" and killed["high_water_row"] < ACCOUNTS
        assert await staged_events(pool, prefix) == killed["rows_accepted"], (
            "each committed row has its event"
        )

        second = import_command(path, database_url)
        out, err = await asyncio.to_thread(second.communicate, timeout=300)
        assert second.returncode == 0, err.decode()
        answer = orjson.loads(out)
        assert answer["status"] == "completed" and answer["replayed"] is False
        assert (answer["rows_read"], answer["rows_accepted"], answer["rows_rejected"]) == (
            ACCOUNTS,
            accepted,
            rejected,
        )
        assert "王秀英" not in err.decode() and "+86138" not in err.decode()

        async with pool.acquire() as conn:
            assert (
                await conn.fetchval("SELECT count(*) FROM accounts WHERE account_id LIKE $1", prefix + "%")
                == accepted
            )
            report = await conn.fetch(
                "SELECT row_no FROM import_rejections WHERE import_id = $1", killed["import_id"]
            )
        assert sorted(r[0] for r in report) == [i + 1 for i in range(ACCOUNTS) if i % BAD_EVERY == 0]
        assert await staged_events(pool, prefix) == accepted

        again = import_command(path, database_url)
        out, _ = await asyncio.to_thread(again.communicate, timeout=120)
        assert orjson.loads(out)["replayed"] is True

        events = await publish_and_read(pool, kafka_bootstrap, prefix, accepted)
        per_account = collections.Counter(e.subject for e in events)
        assert len(per_account) == accepted and set(per_account.values()) == {1}
        assert {e.type for e in events} == {"delinquency.opened"}
        assert len({e.id for e in events}) == accepted
    finally:
        await pool.close()


async def staged_events(pool, prefix: str) -> int:
    """Events of these accounts in the outbox: rows of their own, and lines of bundles."""
    async with pool.acquire() as conn:
        return await conn.fetchval(
            """
            SELECT coalesce(sum(CASE WHEN header_keys[1] = 'outbox-bundle'
                THEN (SELECT count(*) FROM regexp_split_to_table(convert_from(value, 'UTF8'), E'\\n') l
                      WHERE l LIKE $1)
                ELSE (convert_from(key, 'UTF8') LIKE $1)::int END), 0)
            FROM outbox
            """,
            prefix + "%",
        )


async def publish_and_read(pool, bootstrap: str, prefix: str, expected: int):
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, kafka_enable_idempotence=False)
    producer = make_producer(settings, "test-intake-resume")
    await producer.start()
    relay = OutboxRelay(pool, SCHEMA, producer, batch_size=5000, safety_poll_s=0.5)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _staged_zero(pool, prefix), timeout_s=120)
    finally:
        relay.stop()
        await task
        await producer.stop()
    records = await topic_records(bootstrap, DELINQUENCY)
    events = [decode(r.value, r.headers) for r in records if r.key.decode().startswith(prefix)]
    assert len(events) >= expected
    return events


async def _staged_zero(pool, prefix: str) -> bool:
    return await staged_events(pool, prefix) == 0


async def test_one_import_of_a_file_runs_at_a_time(service_env, database_url, tmp_path) -> None:
    prefix = f"L{uuid.uuid4().hex[:8].upper()}"
    path = tmp_path / "daily.csv"
    path.write_bytes(csv_bytes([row(f"{prefix}-1")]))
    seg = load_segmentation()
    pool = await create_pool(database_url, SCHEMA, 1, 4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, SERVICE_DIR)
        record = await register_import(pool, file_facts(path), "utf-8", seg, source="path", file_name=None)
        async with pool.acquire() as holder:
            assert await repository.try_lock_import(holder, record.import_id)
            with pytest.raises(Conflict):
                await run_import(pool, record, path, seg, 100)
            await repository.unlock_import(holder, record.import_id)
        outcome = await run_import(pool, record, path, seg, 100)
        assert outcome.record.status == "completed" and outcome.record.rows_accepted == 1
    finally:
        await pool.close()
