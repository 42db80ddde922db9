"""/healthz and /readyz of a real service app: ready only while database and broker answer."""

import httpx
import pytest

from deploy import devstack
from services.followup.sms_sandbox.app import SandboxSettings
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


async def test_ready_while_both_answer_and_not_when_the_broker_is_cut(service_env, tmp_path) -> None:
    proxy = TcpProxy(devstack.free_port(), devstack.free_port())
    broker = devstack.start_dev_broker(proxy.target_port, tmp_path, advertised_port=proxy.listen_port)
    await proxy.start()
    settings = IntakeSettings(kafka_bootstrap_servers=broker.bootstrap, kafka_enable_idempotence=False)
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
        ):
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
            await proxy.cut()
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["broker"].startswith("unreachable")
            assert (await client.get("/healthz")).status_code == 200, "alive, just not ready"
            await proxy.start()
    finally:
        await proxy.cut()
        broker.stop()


def test_settings_refuse_a_missing_secret(monkeypatch) -> None:
    monkeypatch.delenv("SMS_SANDBOX_API_KEY", raising=False)
    with pytest.raises(ValueError, match="sms_sandbox_api_key"):
        SandboxSettings()
