"""Shared observability: HTTP metrics by route template, request ids, spans, log context."""

import logging

import httpx
import orjson
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.trace import SpanKind, StatusCode

from shared.logging import JsonFormatter, parse_traceparent, span_log
from shared.metrics import event_type_label, install_observability, sample_value

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def lines():
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = span_log.level
    span_log.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    span_log.setLevel(previous)


def _app(hook_calls: list[str]) -> FastAPI:
    app = FastAPI()
    log = logging.getLogger("test.app")

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        log.warning("handling a thing")
        if thing_id == "broken":
            raise HTTPException(503, "down")
        return {"id": thing_id}

    async def backlog() -> None:
        hook_calls.append("backlog")

    async def failing() -> None:
        raise RuntimeError("no database")

    install_observability(app, lambda: [backlog, failing])
    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_requests_are_counted_by_route_template_never_by_path(lines) -> None:
    app = _app([])
    labels = {"method": "GET", "route": "/v1/things/{thing_id}", "status": "200"}
    before = sample_value("fieldcollect_http_requests_total", labels) or 0
    async with await _client(app) as http:
        assert (await http.get("/v1/things/ACC-SECRET-1")).status_code == 200
        assert (await http.get("/v1/things/broken")).status_code == 503
        assert (await http.get("/nowhere/ACC-SECRET-2")).status_code == 404
        exposition = (await http.get("/metrics")).text
    assert sample_value("fieldcollect_http_requests_total", labels) == before + 1
    assert sample_value("fieldcollect_http_requests_total", {**labels, "status": "503"}) >= 1
    assert (
        sample_value("fieldcollect_http_requests_total", {**labels, "route": "<unmatched>", "status": "404"})
        >= 1
    )
    assert "ACC-SECRET" not in exposition
    assert "fieldcollect_http_request_duration_seconds_bucket" in exposition
    assert all("ACC-SECRET" not in str(line) for line in lines), "paths with ids never reach the logs"


async def test_every_log_line_of_a_request_carries_its_request_and_trace_ids(lines, exported) -> None:
    app = _app([])
    async with await _client(app) as http:
        response = await http.get(
            "/v1/things/1",
            headers={"X-Request-ID": "req-42", "traceparent": f"00-{TRACE}-{PARENT}-01"},
        )
    assert response.headers["x-request-id"] == "req-42"
    handled = next(line for line in lines if line["msg"] == "handling a thing")
    assert handled["request_id"] == "req-42"
    assert handled["trace_id"] == TRACE
    (server,) = exported.get_finished_spans()
    assert server.name == "GET /v1/things/{thing_id}" and server.kind is SpanKind.SERVER
    assert f"{server.context.trace_id:032x}" == TRACE and f"{server.parent.span_id:016x}" == PARENT
    assert server.parent.is_remote and f"{server.context.span_id:016x}" == handled["span_id"] != PARENT
    assert server.attributes["http.route"] == "/v1/things/{thing_id}"
    assert server.attributes["http.response.status_code"] == 200
    assert server.resource.attributes["service.name"] == "test-service"
    logged = next(line for line in lines if line.get("span") == "GET /v1/things/{thing_id}")
    assert (logged["trace_id"], logged["parent_span_id"], logged["status"]) == (TRACE, PARENT, "ok")
    assert logged["span_id"] == handled["span_id"] and logged["kind"] == "server"


async def test_a_server_error_fails_the_request_span(exported) -> None:
    async with await _client(_app([])) as http:
        assert (await http.get("/v1/things/broken")).status_code == 503
    (server,) = exported.get_finished_spans()
    assert server.status.status_code is StatusCode.ERROR and server.attributes["error.type"] == "503"


async def test_an_unusable_request_id_is_replaced_and_a_new_trace_started(lines, exported) -> None:
    app = _app([])
    async with await _client(app) as http:
        response = await http.get(
            "/v1/things/1", headers={"X-Request-ID": "x" * 200, "traceparent": "garbage"}
        )
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and request_id != "x" * 200
    (server,) = exported.get_finished_spans()
    assert server.parent is None and server.context.trace_id != 0
    logged = next(line for line in lines if line.get("span", "").startswith("GET"))
    assert logged["parent_span_id"] is None and logged["trace_id"] == f"{server.context.trace_id:032x}"


async def test_metrics_runs_the_scrape_hooks_and_survives_a_failing_one() -> None:
    calls: list[str] = []
    app = _app(calls)
    before = sample_value("fieldcollect_scrape_hook_failures_total", {"hook": "failing"}) or 0
    async with await _client(app) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert calls == ["backlog"]
    assert sample_value("fieldcollect_scrape_hook_failures_total", {"hook": "failing"}) == before + 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE}-{PARENT}-01", (TRACE, PARENT)),
        (f"00-{TRACE.upper()}-{PARENT}-00", (TRACE, PARENT)),
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"ff-{TRACE}-{PARENT}-01", None),
        ("00-short-span-01", None),
        (None, None),
    ],
)
def test_traceparent_parsing(value, expected) -> None:
    parsed = parse_traceparent(value)
    assert (None if parsed is None else (parsed.trace_id, parsed.parent_span_id)) == expected


def test_event_type_labels_are_bounded_to_the_catalog() -> None:
    assert event_type_label("visit.assigned") == "visit.assigned"
    assert event_type_label("DROP TABLE accounts") == "unknown"
    assert event_type_label(None) == "none"
