"""The whole flow with every service as its own process, driven through their HTTP APIs:
core banking batch → delinquency.opened → visit.assigned → the agent's outcome →
one SMS through the sandbox gateway → sms.sent."""

import asyncio
import signal
import uuid
from datetime import date, timedelta

import httpx
import pytest

from deploy import devstack
from deploy.demo import snapshots
from shared.events import decode, topics
from tests.conftest import eventually, read_topic
from tests.e2e.field_app import my_visits, promise_outcome

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(admin_dsn, kafka_bootstrap, tmp_path_factory):
    import asyncio as aio

    name = f"fc_e2e_{uuid.uuid4().hex[:8]}"
    database_url = aio.run(devstack.create_database(admin_dsn, name, drop_first=True))
    ports = {n: devstack.free_port() for n in [*devstack.SERVICES, "sms_sandbox"]}
    log_dir = tmp_path_factory.mktemp("logs")
    stack = devstack.start_stack(database_url, kafka_bootstrap, log_dir, ports)
    stack.log_dir = log_dir
    try:
        devstack.wait_ready(stack, timeout_s=120)
        yield stack
    finally:
        stack.stop()
        aio.run(devstack.drop_database(admin_dsn, name))


async def test_batch_to_sms_through_every_service(stack, kafka_bootstrap) -> None:
    run = uuid.uuid4().hex[:6].upper()
    agent_id = f"AG-{run}"
    rows = snapshots(count=2, prefix=f"E2E{run}")
    for row in rows:  # late and material: the contact strategy sends these to the door
        row.update(days_past_due=75, outstanding="9000.00", overdue_amount="2500.00")
        row["flags"] = {}
    accounts = [r["account_id"] for r in rows]
    phone = rows[0]["customer"]["phone"]
    supervisor = {"Authorization": f"Bearer {stack.token('sup-e2e', 'supervisor')}"}
    core = {"Authorization": f"Bearer {stack.token('core', 'core_banking')}"}
    agent = {"Authorization": f"Bearer {stack.token(agent_id, 'agent')}"}
    sandbox = {"Authorization": f"Bearer {devstack.SANDBOX_KEY}"}

    async with httpx.AsyncClient(timeout=30) as http:
        await _put_agent(http, stack, agent_id, supervisor)
        batch = await http.post(
            f"{stack.url('intake')}/v1/snapshot-batches",
            json={"snapshots": rows},
            headers={**core, "Idempotency-Key": f"e2e-{run}"},
        )
        assert batch.status_code == 200, batch.text
        assert batch.json()["events_published"] == 2

        visits = await my_visits(http, stack.url("visits"), agent, count=2, timeout_s=60)
        assert {v["account_id"] for v in visits} == set(accounts)
        visit = next(v for v in visits if v["account_id"] == accounts[0])
        outcome = promise_outcome("rec-e2e")
        url = f"{stack.url('visits')}/v1/me/visits/{visit['visit_id']}/outcomes"
        assert (await http.post(url, json=outcome, headers=agent)).status_code == 201
        assert (await http.post(url, json=outcome, headers=agent)).status_code == 200, "offline replay"

        async def sms():
            r = await http.get(
                f"{stack.url('sms_sandbox')}/v1/messages", params={"to": phone}, headers=sandbox
            )
            return r.json() or None

        messages = await eventually(sms, timeout_s=60)
        await asyncio.sleep(2)
        messages = (
            await http.get(f"{stack.url('sms_sandbox')}/v1/messages", params={"to": phone}, headers=sandbox)
        ).json()
        assert len(messages) == 1
        assert messages[0]["template_id"] == "promise_confirmation"
        assert "300.00" in messages[0]["text"]

    events = await _events_of(kafka_bootstrap, set(accounts))
    assert sorted(events[topics.DELINQUENCY]) == ["delinquency.opened", "delinquency.opened"]
    assert sorted(events[topics.ASSIGNMENTS]) == ["visit.assigned", "visit.assigned"]
    assert events[topics.VISIT_OUTCOMES] == ["visit.outcome_recorded"]
    assert events[topics.FOLLOWUPS].count("sms.sent") == 1

    logs = "".join(p.read_text(errors="replace") for p in stack.log_dir.glob("*.log"))
    for row in rows:
        assert row["customer"]["phone"] not in logs, "phone numbers never reach the logs"
        assert row["customer"]["name"] not in logs, "names never reach the logs"


async def test_trace_context_follows_the_account_across_services(stack, kafka_bootstrap) -> None:
    """visit.assigned continues delinquency.opened's trace (traceparent crosses Kafka)."""
    opened = await read_topic(kafka_bootstrap, topics.DELINQUENCY, lambda r: len(r) > 0)
    assigned = await read_topic(kafka_bootstrap, topics.ASSIGNMENTS, lambda r: len(r) > 0)
    by_account = {r.key: decode(r.value, r.headers) for r in opened}
    matched = 0
    for record in assigned:
        effect = decode(record.value, record.headers)
        cause = by_account.get(record.key)
        if cause and effect.causation_id == str(cause.id):
            assert effect.traceparent.split("-")[1] == cause.traceparent.split("-")[1]
            matched += 1
    assert matched >= 2


def test_services_stop_cleanly_on_sigterm(stack) -> None:
    """SIGTERM: consumers finish their batch and commit, the relay stops, pools close.
    (uvicorn re-raises the signal after its graceful shutdown, hence -15 and not 0.)"""
    stack.stop(timeout=40)
    codes = {name: p.returncode for name, p in stack.processes.items()}
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), codes
    for name in stack.processes:
        log = (stack.log_dir / f"{name}.log").read_text()
        assert "Application shutdown complete" in log, name
        assert "background task failed" not in log, name


async def _put_agent(http, stack, agent_id, headers) -> None:
    agent = {
        "agent_id": agent_id,
        "display_name": "E2E agent",
        "region": "shenzhen",
        "home_lat": 22.54,
        "home_lon": 114.06,
        "daily_capacity": 10,
        "certified_until": (date.today() + timedelta(days=30)).isoformat(),
        "languages": ["zh-CN", "en"],
        "hardship_trained": True,
    }
    r = await http.put(f"{stack.url('planner')}/v1/agents/{agent_id}", json=agent, headers=headers)
    assert r.status_code == 200, r.text


async def _events_of(bootstrap: str, accounts: set[str]) -> dict[str, list[str]]:
    wanted = {topics.DELINQUENCY: 2, topics.ASSIGNMENTS: 2, topics.VISIT_OUTCOMES: 1, topics.FOLLOWUPS: 1}
    found: dict[str, list[str]] = {}
    for topic, count in wanted.items():

        def mine(records):
            return [r for r in records if r.key.decode() in accounts]

        records = await read_topic(bootstrap, topic, lambda r: len(mine(r)) >= count)  # noqa: B023
        found[topic] = [decode(r.value, r.headers).type for r in mine(records)]
    return found
