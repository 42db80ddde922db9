"""Fixtures shared by every layer: the real PostgreSQL, the real broker, tokens.

A database per test session (dropped at the end), a broker per session (the development
broker unless KAFKA_BOOTSTRAP_SERVERS names one), a consumer group and account ids per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy import devstack
from shared.auth import generate_keypair, issue_token
from shared.db import create_pool, migrate
from shared.events.topics import ALL_TOPICS
from shared.kafka import ensure_topics

TEST_PARTITIONS = 3


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    return devstack.admin_dsn()


@pytest.fixture(scope="session")
def database_url(admin_dsn: str) -> Iterator[str]:
    name = f"fc_test_{os.getpid()}"
    url = asyncio.run(devstack.create_database(admin_dsn, name, drop_first=True))
    yield url
    asyncio.run(devstack.drop_database(admin_dsn, name))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    broker = devstack.broker()
    asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS, TEST_PARTITIONS))
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    private, public = generate_keypair(tmp_path_factory.mktemp("keys"))
    return private.read_text(), public


@pytest.fixture(scope="session")
def token(keys: tuple[str, Path]) -> Any:
    def make(subject: str, role: str, team: str | None = None) -> str:
        return issue_token(keys[0], subject, role, "fieldcollect", "fieldcollect-dev", team)

    return make


@pytest.fixture(scope="session")
def service_env(database_url: str, kafka_bootstrap: str, keys: tuple[str, Path]) -> Iterator[dict[str, str]]:
    """Environment for in-process service apps (settings read it)."""
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "false"),
        "JWT_PUBLIC_KEY_FILE": str(keys[1]),
        "SMS_PROVIDER_API_KEY": devstack.SANDBOX_KEY,
        "SMS_SANDBOX_API_KEY": devstack.SANDBOX_KEY,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class SchemaPool:
    pool: Any
    schema: str


@contextlib.asynccontextmanager
async def migrated_pool(
    database_url: str, service_dir: Path, prefix: str, max_size: int = 4, **pool_options: Any
) -> AsyncIterator[Any]:
    """A pool on a throwaway schema with a service's migrations applied; dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    pool = await create_pool(database_url, schema, 1, max_size, **pool_options)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, service_dir)
        yield pool
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


@pytest.fixture
async def schema_pool(database_url: str) -> AsyncIterator[SchemaPool]:
    """A pool on a throwaway schema with the plumbing tables (outbox, inbox)."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    pool = await create_pool(database_url, schema, 1, 5)
    async with pool.acquire() as conn:
        await migrate(conn, schema, Path("/nonexistent"))
    yield SchemaPool(pool, schema)
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


async def read_topic(bootstrap: str, topic: str, until: Any, timeout_s: float = 30.0) -> list[Any]:
    """Read a topic from the beginning, without a group, until `until(records)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"topic {topic} has no partitions")
            await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        while not until(records):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{topic}: condition not met with {len(records)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def eventually(probe: Any, timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    """Await `probe()` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met; last result {result!r}")
        await asyncio.sleep(interval_s)
