"""Every service's /metrics (create_service_app): the outbox backlog and the service's own
consumer lag are computed on scrape."""

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.events import Envelope
from shared.events import payloads as p
from shared.kafka import ensure_topics
from shared.outbox import enqueue
from shared.runtime import ConsumerSpec, create_service_app, runtime_of
from shared.settings import ServiceSettings
from tests.conftest import eventually
from tests.integration.ops.conftest import produce

pytestmark = pytest.mark.integration


async def test_a_services_metrics_show_its_outbox_backlog_and_http_traffic(
    database_url, kafka_bootstrap, keys, uid, tmp_path
) -> None:
    schema = f"t_metrics_{uid}"
    settings = ServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_enable_idempotence=False,
        jwt_public_key_file=keys[1],
        run_consumers=False,  # no relay: the rows stay in the outbox
    )
    app = create_service_app(title="t", settings=settings, schema=schema, service_dir=tmp_path, routers=[])
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        pool = runtime_of(app).pool
        try:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(
                    conn, *[Envelope(data=p.RevisitRequested(account_id="A", reason="r"), source="/t")] * 2
                )
            assert (await http.get("/healthz")).status_code == 200
            text = (await http.get("/metrics")).text
            assert f'fieldcollect_outbox_backlog_messages{{schema="{schema}"}} 2.0' in text
            assert f'fieldcollect_outbox_relay_leader{{schema="{schema}"}} 0.0' in text
            assert 'fieldcollect_http_requests_total{method="GET",route="/healthz",status="200"}' in text
        finally:
            async with pool.acquire() as conn:
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _lag(text: str, group: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "fieldcollect_consumer_lag_messages"
        for sample in family.samples
        if sample.labels["group"] == group
    }


async def test_a_services_metrics_show_its_own_consumer_lag_per_partition(
    database_url, kafka_bootstrap, keys, uid, tmp_path
) -> None:
    schema, topic, group = f"t_lag_{uid}", f"test.own-lag.{uid}", f"test-own-lag-{uid}"
    await ensure_topics(kafka_bootstrap, [topic], 2)
    gate = asyncio.Event()

    async def held(conn, event: Envelope) -> None:
        await gate.wait()

    settings = ServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_enable_idempotence=False,
        jwt_public_key_file=keys[1],
    )
    app = create_service_app(
        title="t",
        settings=settings,
        schema=schema,
        service_dir=tmp_path,
        routers=[],
        consumers=[ConsumerSpec(group, [topic], {"revisit.requested": held})],
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        try:
            events = [
                Envelope(data=p.RevisitRequested(account_id=f"A-{n}", reason="r"), source="/t")
                for n in range(6)
            ]
            await produce(kafka_bootstrap, topic, [(e.key, e.value(), e.headers()) for e in events])

            async def lag() -> dict[tuple[str, str], float]:
                return _lag((await http.get("/metrics")).text, group)

            # The handler holds the first batch: fetched, nothing committed.
            behind = await eventually(lambda: _when(lag(), lambda by: sum(by.values()) == 6))
            assert set(behind) == {(topic, "0"), (topic, "1")}
            gate.set()
            caught_up = await eventually(
                lambda: _when(lag(), lambda by: len(by) == 2 and not any(by.values()))
            )
            assert caught_up == {(topic, "0"): 0.0, (topic, "1"): 0.0}
        finally:
            gate.set()
            async with runtime_of(app).pool.acquire() as conn:
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert _lag(generate_latest(REGISTRY).decode(), group) == {}, "a stopped member drops its series"


async def _when(probe, condition):
    value = await probe
    return value if condition(value) else None
