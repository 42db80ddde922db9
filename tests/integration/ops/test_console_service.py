"""The ops console as a server against the real broker: auth, the live stream, the
projection, broker-side metrics and dead-letter replays over HTTP."""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from starlette.requests import Request

from services.ops.api import _loopback
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import DELINQUENCY, FOLLOWUPS, dead_letter_topic
from shared.kafka import ensure_topics
from tests.conftest import eventually, read_topic
from tests.integration.ops.conftest import commit, ops_settings, produce, running_console

pytestmark = pytest.mark.integration


def _bearer(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _live(http: httpx.AsyncClient, server, headers) -> bool:
    status = (await http.get(f"{server.url}/v1/ops/status", headers=headers)).json()
    return status["live_feed_connected"] and status["projection_caught_up"]


async def test_everything_but_the_page_and_health_needs_the_ops_role(ops_server, token) -> None:
    async with httpx.AsyncClient(base_url=ops_server.url, timeout=10) as http:
        assert (await http.get("/v1/ops/lag")).status_code == 401
        assert (
            await http.get("/v1/ops/lag", headers=_bearer(token("sup-1", "supervisor")))
        ).status_code == 403
        me = await http.get("/v1/ops/whoami", headers=_bearer(token("ops-1", "ops")))
        assert me.json() == {"subject": "ops-1", "role": "ops"}
        page = await http.get("/")
        assert page.status_code == 200 and "ops console" in page.text and "<script" in page.text
        assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", ""), "nothing from outside"
        assert (await http.get("/healthz")).status_code == 200
        ready = (await http.get("/readyz")).json()
        assert ready["ready"] and ready["checks"]["broker"] == "ok"
        stream = await http.get("/v1/ops/events/stream", headers=_bearer(token("agent-1", "agent")))
        assert stream.status_code == 403


async def test_the_stream_delivers_live_events_that_match_its_filter(
    ops_server, kafka_bootstrap, token, uid
) -> None:
    headers = _bearer(token("ops-1", "ops"))
    mine, other = f"ACC-{uid}", f"ACC-OTHER-{uid}"
    async with httpx.AsyncClient(timeout=30) as http:
        await eventually(lambda: _live(http, ops_server, headers), timeout_s=60)
        url = f"{ops_server.url}/v1/ops/events/stream?account={mine}&backlog=0"
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            messages = _sse(response)
            assert (await anext(messages))[0] == "hello"
            events = [
                Envelope(data=p.RevisitRequested(account_id=account, reason="r"), source="/test")
                for account in (other, mine)
            ]
            await produce(kafka_bootstrap, FOLLOWUPS, [(e.key, e.value(), e.headers()) for e in events])
            seen, data = [], None
            async with asyncio.timeout(30):
                while data is None:
                    name, body = await anext(messages)
                    seen.append(name)
                    data = body if name == "event" else None
            assert data["account"] == mine and data["id"] == str(events[1].id)
            assert data["type"] == "revisit.requested" and data["topic"] == FOLLOWUPS
            assert data["trace_id"] == events[1].traceparent.split("-")[1]
            assert "rates" in seen


async def test_query_string_tokens_are_for_loopback_clients_only(kafka_bootstrap, keys, token) -> None:
    ops = token("ops-1", "ops")
    settings = ops_settings(kafka_bootstrap, str(keys[1]), ops_allow_query_token=False)
    async with running_console(settings) as server, httpx.AsyncClient(timeout=10) as http:
        refused = await http.get(f"{server.url}/v1/ops/events/stream?access_token={ops}")
        assert refused.status_code == 401
    allowed = ops_settings(kafka_bootstrap, str(keys[1]))
    async with (
        running_console(allowed) as server,
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", f"{server.url}/v1/ops/events/stream?access_token={ops}") as response,
    ):
        assert response.status_code == 200
        assert (await anext(_sse(response)))[0] == "hello"
    assert _loopback(_request("127.0.0.1")) and _loopback(_request("::1"))
    assert not _loopback(_request("10.1.2.3")) and not _loopback(_request("proxy.local"))


async def test_the_funnel_and_routes_follow_the_topics(ops_server, kafka_bootstrap, token, uid) -> None:
    headers = _bearer(token("ops-1", "ops"))
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    account, agent, visit = f"ACC-{uid}", f"AG-{uid}", uuid.uuid4()
    async with httpx.AsyncClient(base_url=ops_server.url, timeout=10) as http:
        await eventually(lambda: _live(http, ops_server, headers), timeout_s=60)
        before = (await http.get("/v1/ops/funnel", headers=headers)).json()
        opened = Envelope(data=_opened(account), source="/test")
        assigned = opened.caused(_assigned(account, agent, visit, today), "/test")
        await produce(kafka_bootstrap, DELINQUENCY, [(opened.key, opened.value(), opened.headers())])
        await produce(kafka_bootstrap, assigned.topic, [(assigned.key, assigned.value(), assigned.headers())])

        async def my_route():
            routes = (await http.get(f"/v1/ops/routes?plan_date={today}", headers=headers)).json()
            return next((a for a in routes["agents"] if a["agent_id"] == agent), None)

        route = await eventually(my_route)
        assert route["stops"] == [
            {
                "visit_id": str(visit),
                "sequence": 0,
                "lat": 22.543,
                "lon": 114.058,
                "window_start": route["stops"][0]["window_start"],
                "status": "planned",
                "outcome": None,
            }
        ]
        after = (await http.get("/v1/ops/funnel", headers=headers)).json()
        count = {s["stage"]: s["count"] for s in after["stages"]}
        was = {s["stage"]: s["count"] for s in before["stages"]}
        assert count["delinquent"] >= was["delinquent"] + 1 and count["planned"] >= was["planned"] + 1
        assert Decimal(after["amounts"]["overdue_opened"]["CNY"]) >= Decimal("123.45")


async def test_metrics_carry_the_brokers_view_of_lag_and_dead_letters(
    ops_server, kafka_bootstrap, uid
) -> None:
    group, dlq_group = f"test-metrics-{uid}", f"test-metrics-dlq-{uid}"
    await commit(kafka_bootstrap, group, TopicPartition(FOLLOWUPS, 0), 0)
    await ensure_topics(kafka_bootstrap, [dead_letter_topic(dlq_group)], 1)
    await produce(kafka_bootstrap, dead_letter_topic(dlq_group), [(b"k", b"x", []), (b"k", b"y", [])])
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(f"{ops_server.url}/metrics")).text
        again = (await http.get(f"{ops_server.url}/metrics")).text
    assert (
        f'fieldcollect_consumer_group_lag_messages{{group="{group}",partition="0",topic="{FOLLOWUPS}"}}'
        in text
    )
    assert f'fieldcollect_dlq_depth_messages{{group="{dlq_group}"}} 2.0' in text
    assert 'fieldcollect_http_requests_total{method="GET",route="/metrics",status="200"}' in again


async def test_a_dead_letter_is_replayed_over_http_and_the_replay_is_logged(
    ops_server, kafka_bootstrap, token, uid, caplog
) -> None:
    group, original = f"test-http-replay-{uid}", f"test.http.replay.{uid}"
    await ensure_topics(kafka_bootstrap, [original, dead_letter_topic(group)], 1)
    headers = [
        ("ce_type", b"visit.assigned"),
        ("ce_id", b"e-1"),
        ("dlq_original_topic", original.encode()),
        ("dlq_error_class", b"EventDecodeError"),
        ("dlq_original_offset", b"3"),
    ]
    await produce(
        kafka_bootstrap, dead_letter_topic(group), [(b"ACC-9", b'{"phone": "+8613800000000"}', headers)]
    )
    ops = _bearer(token("ops-7", "ops"))
    async with httpx.AsyncClient(base_url=ops_server.url, timeout=30) as http:
        (listed,) = (await http.get(f"/v1/ops/dlq/{group}/messages", headers=ops)).json()
        assert listed["account"] == "ACC-9" and listed["original_offset"] == 3 and "payload" not in listed
        detail = (await http.get(f"/v1/ops/dlq/{group}/messages/0/{listed['offset']}", headers=ops)).json()
        assert (
            detail["payload"] == {"phone": "‹redacted›"}
            and detail["headers"]["dlq_error_class"] == "EventDecodeError"
        )
        assert (await http.get(f"/v1/ops/dlq/{group}/messages/0/99", headers=ops)).status_code == 404
        assert (await http.get("/v1/ops/dlq/bad group!/messages", headers=ops)).status_code == 422

        body = {"from_offset": listed["offset"], "to_offset": listed["offset"]}
        with caplog.at_level(logging.INFO, logger="services.ops.api"):
            replayed = await http.post(f"/v1/ops/dlq/{group}/replay", json=body, headers=ops)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["replayed"][0]["topic"] == original
        audit = next(r for r in caplog.records if r.getMessage() == "dead letters replayed")
        assert audit.by == "ops-7" and audit.group == group and audit.count == 1
        refused = await http.post(
            f"/v1/ops/dlq/{group}/replay", json={"from_offset": 5, "to_offset": 9}, headers=ops
        )
        assert refused.status_code == 422 and "no dead letters" in refused.text

    (record,) = await read_topic(kafka_bootstrap, original, lambda r: len(r) >= 1)
    assert record.key == b"ACC-9" and record.value == b'{"phone": "+8613800000000"}'
    assert list(record.headers) == [("ce_type", b"visit.assigned"), ("ce_id", b"e-1")]


async def _sse(response: httpx.Response):
    """(event name, decoded data) of each server-sent event."""
    name, data = "message", b""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip().encode()
        elif line == "" and data:
            yield name, orjson.loads(data)
            name, data = "message", b""


def _request(host: str) -> Request:
    return Request({"type": "http", "client": (host, 5000), "headers": [], "method": "GET", "path": "/"})


def _opened(account: str) -> p.DelinquencyOpened:
    return p.DelinquencyOpened(
        account_id=account,
        customer_id="C-1",
        product="cash_loan",
        currency="CNY",
        as_of=datetime.now(UTC).date(),
        principal=Decimal(1000),
        outstanding=Decimal(900),
        overdue_amount=Decimal("123.45"),
        dpd=3,
        dpd_bucket="1-29",
        contact=p.ContactDetails(),
        address=p.Address(line1="x", city="Shenzhen", country="CN"),
    )


def _assigned(account: str, agent: str, visit: uuid.UUID, plan_date) -> p.VisitAssigned:
    start = datetime.now(UTC) + timedelta(hours=1)
    return p.VisitAssigned(
        account_id=account,
        visit_id=visit,
        agent_id=agent,
        plan_date=plan_date,
        sequence=0,
        window_start=start,
        window_end=start + timedelta(hours=1),
        address=p.Address(
            line1="x", city="Shenzhen", country="CN", location=p.GeoPoint(lat=22.54321, lon=114.0579)
        ),
        time_zone="Asia/Shanghai",
        language="zh-CN",
        briefing=p.Briefing(),
    )
