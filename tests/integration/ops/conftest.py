"""Fixtures for the ops console against the real broker: an in-process console server."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy import devstack
from services.ops.main import create_app
from services.ops.settings import OpsSettings
from tests.unit.ops.spans import exported  # noqa: F401  (fixture)


@dataclass
class OpsServer:
    url: str
    settings: OpsSettings


@contextlib.asynccontextmanager
async def running_console(settings: OpsSettings) -> AsyncIterator[OpsServer]:
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.http_port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield OpsServer(f"http://127.0.0.1:{settings.http_port}", settings)
    finally:
        server.should_exit = True
        await task


def ops_settings(kafka_bootstrap: str, public_key_file: str, **overrides: object) -> OpsSettings:
    values: dict[str, object] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_enable_idempotence": False,
        "jwt_public_key_file": public_key_file,
        "http_port": devstack.free_port(),
        "ops_scrape_targets": {},
        "ops_cache_s": 0.0,
        **overrides,
    }
    return OpsSettings(**values)


@pytest.fixture
async def ops_server(kafka_bootstrap, keys) -> AsyncIterator[OpsServer]:
    async with running_console(ops_settings(kafka_bootstrap, str(keys[1]))) as server:
        yield server


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes, list]]) -> None:
    """Send (key, value, headers) records in one go (the broker sees them batched)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    """Commit an offset for a group without joining it (what a member would have done)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()
