"""Migrations: applied once, in order, safely from concurrent starts, never silently edited."""

import asyncio
import uuid

import asyncpg
import pytest

from shared.db import migrate, pending_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
def service_dir(tmp_path):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "migrations" / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    return tmp_path


async def test_migrate_is_idempotent_and_ordered(database_url, service_dir) -> None:
    schema = f"m_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        assert await pending_migrations(conn, schema, service_dir) == [
            "0000_outbox_inbox.sql", "0001_things.sql", "0002_more.sql"
        ]  # fmt: skip
        first = await migrate(conn, schema, service_dir)
        assert first == ["0000_outbox_inbox.sql", "0001_things.sql", "0002_more.sql"]
        assert await migrate(conn, schema, service_dir) == []
        assert await pending_migrations(conn, schema, service_dir) == []
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'things'",
            schema,
        )
        assert {c["column_name"] for c in columns} == {"id", "name"}
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_concurrent_starts_apply_each_migration_once(database_url, service_dir) -> None:
    schema = f"m_{uuid.uuid4().hex[:8]}"
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, schema, service_dir) for c in conns))
        applied = [name for result in results for name in result]
        assert sorted(applied) == ["0000_outbox_inbox.sql", "0001_things.sql", "0002_more.sql"]
    finally:
        await conns[0].execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for c in conns:
            await c.close()


async def test_an_edited_migration_is_refused(database_url, service_dir) -> None:
    schema = f"m_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema, service_dir)
        (service_dir / "migrations" / "0001_things.sql").write_text("CREATE TABLE things (id bigint);")
        with pytest.raises(RuntimeError, match="0001_things.sql changed"):
            await migrate(conn, schema, service_dir)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(database_url, service_dir) -> None:
    schema = f"m_{uuid.uuid4().hex[:8]}"
    (service_dir / "migrations" / "0003_broken.sql").write_text("ALTER TABLE nope ADD COLUMN x int;")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await migrate(conn, schema, service_dir)
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.things") is None
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
