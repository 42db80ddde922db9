"""The intake service in-process (real PostgreSQL and broker), and ways to look at what it did."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from shared.events import Envelope, decode
from shared.events.topics import DELINQUENCY
from shared.runtime import runtime_of
from tests.conftest import eventually


@dataclass
class Intake:
    app: FastAPI
    http: httpx.AsyncClient
    bootstrap: str
    token: Any

    def auth(self, role: str = "core_banking") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(f'test-{role}', role)}"}

    @property
    def pool(self) -> Any:
        return runtime_of(self.app).pool

    async def batch(self, snapshots: Sequence[dict[str, Any]], key: str, **body: Any) -> httpx.Response:
        return await self.http.post(
            "/v1/snapshot-batches",
            json={"snapshots": list(snapshots), **body},
            headers={**self.auth(), "Idempotency-Key": key},
        )

    async def upload(self, data: bytes, encoding: str = "utf-8", wait: bool = True) -> httpx.Response:
        return await self.http.post(
            "/v1/imports",
            params={"encoding": encoding, "wait": str(wait).lower(), "file_name": "daily.csv"},
            content=data,
            headers={**self.auth(), "Content-Type": "text/csv"},
        )

    async def drained(self) -> None:
        """Everything committed so far is on the broker (the relay deletes only acked rows)."""

        async def empty() -> bool:
            async with self.pool.acquire() as conn:
                return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox)")

        await eventually(empty, timeout_s=60, interval_s=0.05)

    async def events(self, prefix: str) -> list[Envelope]:
        """Every delinquency event of accounts starting with `prefix`, in publication order."""
        await self.drained()
        records = await topic_records(self.bootstrap, DELINQUENCY)
        return [decode(r.value, r.headers) for r in records if r.key.decode().startswith(prefix)]


async def topic_records(bootstrap: str, topic: str) -> list[Any]:
    """The whole topic up to its current end, partition by partition (per-key order kept)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


def intake_settings(import_dir: Path, **overrides: Any) -> IntakeSettings:
    return IntakeSettings(import_dir=import_dir, outbox_safety_poll_s=1.0, **overrides)


@pytest.fixture
async def intake(service_env, kafka_bootstrap, token, tmp_path) -> AsyncIterator[Intake]:
    app = create_app(intake_settings(tmp_path / "imports", import_chunk_rows=50))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as http:
            yield Intake(app, http, kafka_bootstrap, token)


def types(events: Sequence[Envelope]) -> list[str]:
    return [e.type for e in events]
