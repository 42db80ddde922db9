"""Every service's /metrics (create_service_app): the outbox backlog is computed on scrape."""

import httpx
import pytest

from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue
from shared.runtime import create_service_app, runtime_of
from shared.settings import ServiceSettings

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
