"""The CDC source: account changes streamed to a topic, through the one consumer runner."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.intake.consumers import CDC_GROUP
from services.intake.csv_format import row_to_document
from services.intake.main import create_app
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import dead_letter_topic
from shared.kafka import ensure_topics
from tests.conftest import eventually, read_topic
from tests.integration.intake.conftest import Intake, intake_settings, types
from tests.unit.intake.files import COLUMNS, row

pytestmark = pytest.mark.integration


@pytest.fixture
async def cdc(service_env, kafka_bootstrap, token, tmp_path) -> AsyncIterator[tuple[Intake, str]]:
    topic = f"corebanking.accounts.test-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(CDC_GROUP)], 3)
    app = create_app(intake_settings(tmp_path / "imports", cdc_topic=topic))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as http:
            yield Intake(app, http, kafka_bootstrap, token), topic


def change(account_id: str, **columns: str) -> Envelope:
    snapshot = row_to_document([row(account_id, **columns)[c] for c in COLUMNS])
    data = p.AccountSnapshotChanged(account_id=account_id, snapshot=snapshot)
    return Envelope(data=data, source="/core-banking/cdc")


async def publish(bootstrap: str, topic: str, *changes: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in changes:
            await producer.send_and_wait(topic, e.value(), key=e.key, headers=e.headers())
    finally:
        await producer.stop()


async def test_streamed_changes_are_diffed_published_once_and_bad_ones_dead_lettered(cdc) -> None:
    intake, topic = cdc
    account = f"CDC{uuid.uuid4().hex[:8].upper()}"
    opened = change(account, as_of="2026-11-28")
    bad = change(account, as_of="2026-11-29", customer_phone="call me maybe")
    moved = change(account, as_of="2026-11-30", address_line1="9 Other Rd")
    unchanged = change(account, as_of="2026-11-30", address_line1="9 Other Rd")
    await publish(intake.bootstrap, topic, opened, opened, bad, moved, unchanged)

    dead = await read_topic(
        intake.bootstrap,
        dead_letter_topic(CDC_GROUP),
        lambda records: any(r.key == account.encode() for r in records),
    )
    mine = [dict(r.headers) for r in dead if r.key == account.encode()]
    assert len(mine) == 1 and mine[0]["ce_id"] == str(bad.id).encode()
    reason = mine[0]["dlq_error_reason"].decode()
    assert "snapshot.customer.phone" in reason and "call me" not in reason, "field and reason, no value"

    async def applied() -> bool:  # the last change is through the consumer (its inbox row)
        async with intake.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", unchanged.id))

    await eventually(applied)
    events = await intake.events(account)
    assert types(events) == ["delinquency.opened", "delinquency.updated"], "a redelivery publishes nothing"
    first, update = events
    assert first.causation_id == str(opened.id) and first.correlation_id == str(opened.id)
    assert isinstance(update.data, p.DelinquencyUpdated) and update.data.address.line1 == "9 Other Rd"
    async with intake.pool.acquire() as conn:
        stored = await conn.fetchrow(
            "SELECT as_of::text, address_line1 FROM accounts WHERE account_id = $1", account
        )
    assert tuple(stored) == ("2026-11-30", "9 Other Rd")
