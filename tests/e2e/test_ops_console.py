"""The ops console in a real browser (headless Chromium over the DevTools protocol) against
the whole stack, each service its own process: live events appear as the flow runs, a dead
letter is inspected and replayed, a screenshot is saved. And one account is followed from
intake to the SMS by its trace id, in the events and in every service's span logs."""

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from aiokafka import AIOKafkaProducer

from deploy import devstack
from deploy.demo import snapshots
from shared.events import Envelope, decode, topics
from shared.events import payloads as p
from shared.events.topics import ALL_TOPICS
from shared.kafka import ensure_topics
from tests.conftest import read_topic
from tests.e2e.field_app import my_visits, promise_outcome

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# --- a browser, driven through the Chrome DevTools Protocol --------------------------------


class Browser:
    """Just enough CDP: navigate, evaluate JavaScript, wait for a condition, screenshot."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}

    async def start(self, width: int = 1600, height: int = 1200) -> None:
        self.profile = tempfile.mkdtemp(prefix="ops-console-chromium-")
        self.process = subprocess.Popen(
            [
                self.binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = int(marker.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await websockets.connect(page["webSocketDebuggerUrl"], max_size=None)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def send(self, method: str, **params):
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self.ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        message = await asyncio.wait_for(future, 30)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message["result"]

    async def js(self, expression: str):
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:100]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            await asyncio.sleep(0.25)

    async def open(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def click(self, selector: str) -> None:
        await self.wait_for(f"!!document.querySelector({json.dumps(selector)})")
        await self.js(f"document.querySelector({json.dumps(selector)}).click()")

    async def screenshot(self, path: Path) -> None:
        size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser binary; installed from Debian packages when missing (root + apt only)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium", "chromium-driver"],
            check=True,
            env=env,
            capture_output=True,
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("headless Chromium is required: apt-get install -y chromium chromium-driver")
    return found


# --- the stack and one account's flow -------------------------------------------------------


@pytest.fixture(scope="module")
def bootstrap():
    """A broker of this module's own (unless KAFKA_BOOTSTRAP_SERVERS names one): the test
    writes a poison message, which other modules reading whole topics must not meet."""
    broker = devstack.broker()
    asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS, 3))
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="module")
def stack(admin_dsn, bootstrap, tmp_path_factory):
    name = f"fc_ops_e2e_{uuid.uuid4().hex[:8]}"
    database_url = asyncio.run(devstack.create_database(admin_dsn, name, drop_first=True))
    ports = {n: devstack.free_port() for n in [*devstack.SERVICES, *devstack.CONSOLE, "sms_sandbox"]}
    log_dir = tmp_path_factory.mktemp("ops-logs")
    stack = devstack.start_stack(database_url, bootstrap, log_dir, ports)
    stack.log_dir = log_dir
    try:
        devstack.wait_ready(stack, timeout_s=120)
        yield stack
    finally:
        stack.stop()
        asyncio.run(devstack.drop_database(admin_dsn, name))


async def _put_agent(http: httpx.AsyncClient, stack, agent_id: str) -> None:
    agent = {
        "agent_id": agent_id,
        "display_name": "Ops e2e agent",
        "region": "shenzhen",
        "home_lat": 22.54,
        "home_lon": 114.06,
        "daily_capacity": 10,
        "certified_until": (date.today() + timedelta(days=30)).isoformat(),
        "languages": ["zh-CN", "en"],
        "hardship_trained": True,
    }
    supervisor = {"Authorization": f"Bearer {stack.token('sup-ops-e2e', 'supervisor')}"}
    response = await http.put(f"{stack.url('planner')}/v1/agents/{agent_id}", json=agent, headers=supervisor)
    assert response.status_code == 200, response.text


async def _send_batch(http: httpx.AsyncClient, stack, rows: list[dict], key: str) -> None:
    core = {"Authorization": f"Bearer {stack.token('core', 'core_banking')}", "Idempotency-Key": key}
    response = await http.post(
        f"{stack.url('intake')}/v1/snapshot-batches", json={"snapshots": rows}, headers=core
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
async def flow(stack):
    """Two overdue accounts through intake → planner → visits, and an outcome for the first
    (follow-up then sends an SMS; the tests that need it wait for it)."""
    run = uuid.uuid4().hex[:6].upper()
    agent_id = f"AG-OPS-{run}"
    rows = snapshots(count=2, prefix=f"OPS{run}")
    for row in rows:  # late and material: the contact strategy sends these to the door
        row.update(days_past_due=75, outstanding="9000.00", overdue_amount="2500.00")
        row["flags"] = {}
    agent = {"Authorization": f"Bearer {stack.token(agent_id, 'agent')}"}
    async with httpx.AsyncClient(timeout=30) as http:
        await _put_agent(http, stack, agent_id)
        await _send_batch(http, stack, rows, f"ops-e2e-{run}")

        visits = await my_visits(http, stack.url("visits"), agent, count=2, timeout_s=90)
        visit = next(v for v in visits if v["account_id"] == rows[0]["account_id"])
        outcome = promise_outcome("rec-ops-e2e")
        url = f"{stack.url('visits')}/v1/me/visits/{visit['visit_id']}/outcomes"
        assert (await http.post(url, json=outcome, headers=agent)).status_code == 201
    return {"run": run, "agent_id": agent_id, "rows": rows, "account": rows[0]["account_id"]}


async def _events(stack, topic: str, account: str, event_type: str, timeout_s: float = 60) -> list[Envelope]:
    """The account's events of one type on a topic, once there is at least one."""

    def mine(records):
        return [
            r
            for r in records
            if r.key == account.encode() and dict(r.headers)["ce_type"] == event_type.encode()
        ]

    records = await read_topic(stack.bootstrap, topic, lambda r: len(mine(r)) >= 1, timeout_s=timeout_s)
    return [decode(r.value, r.headers) for r in mine(records)]


# --- the console in the browser --------------------------------------------------------------


async def test_the_console_shows_live_events_and_replays_a_dead_letter(stack, flow, chromium) -> None:
    browser = Browser(chromium)
    await browser.start()
    try:
        await browser.open(stack.url("ops") + "/")
        assert await browser.js("document.querySelector('#console').hidden") is True, "nothing before sign-in"
        await browser.js(
            f"document.querySelector('#token').value = {json.dumps(stack.token('ops-e2e', 'ops'))}"
        )
        await browser.click("#signin")
        await browser.wait_for("document.querySelector('#stream-state').textContent === 'live'")
        assert await browser.js("document.querySelector('#who').textContent") == "ops-e2e (ops)"

        # Live: accounts that enter intake now appear on the page as their events flow.
        fresh = snapshots(count=2, prefix=f"OPSLIVE{flow['run']}")
        async with httpx.AsyncClient(timeout=30) as http:
            await _send_batch(http, stack, fresh, f"ops-live-{flow['run']}")
        for row in fresh:
            selector = f'#events tr[data-account="{row["account_id"]}"][data-type="delinquency.opened"]'
            await browser.wait_for(f"!!document.querySelector({json.dumps(selector)})", timeout_s=60)
        for kind in ("delinquency.opened", "visit.assigned", "visit.outcome_recorded"):
            selector = f'#events tr[data-account="{flow["account"]}"][data-type="{kind}"]'
            await browser.wait_for(f"!!document.querySelector({json.dumps(selector)})", timeout_s=60)

        # Filter by account; an event's details are shown without the customer's contact data.
        await browser.js(
            f"const f = document.querySelector('#f-account'); f.value = {json.dumps(flow['account'])};"
            " f.dispatchEvent(new Event('change'))"
        )
        await browser.wait_for(
            "(() => { const rows = [...document.querySelectorAll('#events tbody tr')];"
            f" return rows.length >= 3 && rows.every(r => r.dataset.account === {json.dumps(flow['account'])}); }})()"
        )
        await browser.click(f'#events tr[data-type="delinquency.opened"][data-account="{flow["account"]}"]')
        detail = await browser.wait_for("document.querySelector('#event-detail').textContent")
        assert '"type": "delinquency.opened"' in detail and "‹redacted›" in detail
        page_text = await browser.js("document.body.innerText")
        for row in flow["rows"]:
            assert row["customer"]["phone"] not in page_text and row["customer"]["name"] not in page_text

        # Charts: rates, funnel, routes of the agent, lag of the groups, every service's backlog.
        await browser.wait_for("document.querySelectorAll('#rates .rate').length === 4")
        await browser.wait_for("document.querySelectorAll('#funnel rect[data-stage]').length === 5")
        funnel = await browser.js("document.querySelector('#funnel').textContent")
        assert "delinquent" in funnel and "follow-ups" in funnel
        await browser.wait_for(
            f"!!document.querySelector('#routes-plot polyline[data-agent=\"{flow['agent_id']}\"]')"
        )
        await browser.wait_for("!!document.querySelector('#lag tr[data-group=\"visits.assignments\"]')")
        await browser.wait_for(
            f"document.querySelectorAll('#services circle').length === {len(devstack.SERVICES)}"
        )
        assert "down" not in await browser.js("document.querySelector('#services').textContent")

        # A poison message: visits dead-letters it; the console inspects and replays it.
        poison_key = f"POISON-{flow['run']}"
        await _send_poison(stack.bootstrap, poison_key)
        await browser.click('#dlq-groups button[data-group="visits.assignments"]')
        poisoned = f"[...document.querySelectorAll('#dlq-messages tbody tr')].filter(r => r.textContent.includes({json.dumps(poison_key)}))"
        await browser.wait_for(f"{poisoned}.length >= 1", timeout_s=60)
        await browser.js(f"{poisoned}[0].click()")
        inspected = await browser.wait_for(
            "!document.querySelector('#dlq-inspect').hidden && document.querySelector('#dlq-detail').textContent"
        )
        assert "EventDecodeError" in inspected and "dlq_original_topic" in inspected
        await browser.click("#replay-one")
        await browser.click("#replay-confirm")
        result = await browser.wait_for("document.querySelector('#replay-result').textContent")
        assert result.startswith("Replayed 1:"), result

        records = await read_topic(
            stack.bootstrap,
            topics.ASSIGNMENTS,
            lambda r: len([x for x in r if x.key == poison_key.encode()]) >= 2,
        )
        original, replayed = [r for r in records if r.key == poison_key.encode()][:2]
        assert replayed.value == original.value
        assert list(replayed.headers) == list(original.headers), "original headers, without dlq_*"
        # Still undecodable, so visits dead-letters it again: the DLQ shows both.
        await browser.wait_for(f"{poisoned}.length === 2", timeout_s=60)
        badge = '#dlq-groups button[data-group="visits.assignments"] .badge'
        await browser.wait_for(
            f"document.querySelector({json.dumps(badge)}).textContent === '2'", timeout_s=30
        )

        await browser.js("document.querySelector('#f-clear').click()")
        await browser.wait_for("document.querySelectorAll('#events tbody tr').length >= 6")
        await asyncio.sleep(2)  # one more round of the panels' refreshes before the picture
        shot = ARTIFACTS / "ops-console.png"
        await browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    finally:
        await browser.close()


async def _send_poison(bootstrap: str, key: str) -> None:
    """A record with valid CloudEvents headers and a body that is not a visit.assigned."""
    envelope = Envelope(data=p.RevisitRequested(account_id=key, reason="poison"), source="/ops-e2e")
    headers = [(k, b"visit.assigned" if k == "ce_type" else v) for k, v in envelope.headers()]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.ASSIGNMENTS, b'{"not": "a visit"}', key=key.encode(), headers=headers
        )
    finally:
        await producer.stop()


# --- one account, followed by trace id -------------------------------------------------------


def _spans(stack, service: str) -> list[dict]:
    lines = (stack.log_dir / f"{service}.log").read_text(errors="replace").splitlines()
    entries = [orjson.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("logger") == "fieldcollect.trace"]


def _trace(event: Envelope) -> str:
    return event.traceparent.split("-")[1]


def _span_id(event: Envelope) -> str:
    return event.traceparent.split("-")[2]


async def test_one_account_is_followed_from_intake_to_the_sms_by_trace_id(stack, flow) -> None:
    account = flow["account"]
    (opened,) = await _events(stack, topics.DELINQUENCY, account, "delinquency.opened")
    (assigned,) = await _events(stack, topics.ASSIGNMENTS, account, "visit.assigned")
    (outcome,) = await _events(stack, topics.VISIT_OUTCOMES, account, "visit.outcome_recorded")
    (sms,) = await _events(stack, topics.FOLLOWUPS, account, "sms.sent", timeout_s=90)

    # Kafka hop: the planner's visit.assigned continues delinquency.opened's trace.
    assert _trace(assigned) == _trace(opened)
    assert assigned.causation_id == str(opened.id) and assigned.correlation_id == str(opened.id)

    # Every consumer logged a span in the event's trace, parented on the event's span.
    def consumed(service: str, event: Envelope) -> list[dict]:
        return [
            s
            for s in _spans(stack, service)
            if s["span"] == f"consume {event.type}" and s.get("event_id") == str(event.id)
        ]

    for service, event in [
        ("planner", opened),
        ("followup", opened),
        ("visits", assigned),
        ("followup", outcome),
    ]:
        (span,) = consumed(service, event)
        assert span["trace_id"] == _trace(event), (service, event.type)
        assert span["parent_span_id"] == _span_id(event) and span["kind"] == "consumer"
        assert span["fieldcollect.outcome"] == "processed" and span["status"] == "ok"

    # Each event's traceparent names a producer span its service recorded, in the same trace.
    def produced(service: str, event: Envelope) -> dict:
        (span,) = [s for s in _spans(stack, service) if s["span_id"] == _span_id(event)]
        assert span["kind"] == "producer" and span["trace_id"] == _trace(event), (service, event.type)
        return span

    def parent(service: str, span: dict) -> dict:
        (found,) = [s for s in _spans(stack, service) if s["span_id"] == span["parent_span_id"]]
        return found

    # The core-banking request and the events it made are one trace; so are the agent's outcome and
    # the request that recorded it.
    assert parent("intake", produced("intake", opened))["span"] == "POST /v1/snapshot-batches"
    recorded = parent("visits", produced("visits", outcome))
    assert recorded["span"] == "POST /v1/me/visits/{visit_id}/outcomes" and recorded["kind"] == "server"
    produced("planner", assigned)
    # The SMS names the outcome that caused it (its trace: see the next test).
    assert sms.causation_id == str(outcome.id)

    # Every log line of the services carries ids, never the customers' contact data.
    logs = "".join(p.read_text(errors="replace") for p in stack.log_dir.glob("*.log"))
    for row in flow["rows"]:
        assert row["customer"]["phone"] not in logs and row["customer"]["name"] not in logs


async def test_the_sms_continues_the_trace_of_the_outcome_that_caused_it(stack, flow) -> None:
    (outcome,) = await _events(stack, topics.VISIT_OUTCOMES, flow["account"], "visit.outcome_recorded")
    (sms,) = await _events(stack, topics.FOLLOWUPS, flow["account"], "sms.sent", timeout_s=90)
    assert _trace(sms) == _trace(outcome)
