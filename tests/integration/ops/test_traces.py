"""OpenTelemetry traces across the real broker: an HTTP request's event goes through the
outbox relay and Kafka to a consumer whose effect is published in turn — one trace, each
span the child of the previous one — and the OTLP exporter delivers spans to a collector."""

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from shared.consumer import ConsumerRunner
from shared.events import Envelope, decode
from shared.events import payloads as p
from shared.kafka import ensure_topics
from shared.metrics import install_observability
from shared.outbox import OutboxRelay, enqueue_raw
from shared.tracing import configure_tracing, start_span
from tests.conftest import read_topic
from tests.unit.ops.spans import TracingOptions

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"


def _hex(span) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def _parent(span) -> str:
    return f"{span.parent.span_id:016x}"


async def _stage(conn, topic: str, event: Envelope) -> None:
    await enqueue_raw(conn, topic, event.key, event.value(), event.headers())


async def test_one_trace_from_a_request_through_the_outbox_and_kafka_to_the_effect(
    exported, schema_pool, kafka_bootstrap, uid
) -> None:
    first, second, group = f"test.trace.in.{uid}", f"test.trace.out.{uid}", f"test-trace-{uid}"
    await ensure_topics(kafka_bootstrap, [first, second], 1)
    app = FastAPI()

    @app.post("/v1/things")
    async def create() -> dict[str, str]:
        event = Envelope(data=p.RevisitRequested(account_id=f"A-{uid}", reason="r"), source="/test")
        async with schema_pool.pool.acquire() as conn, conn.transaction():
            await _stage(conn, first, event)
        return {"id": str(event.id)}

    async def on_revisit(conn, event: Envelope) -> None:
        await _stage(conn, second, event.caused(p.RevisitRequested(account_id=f"A-{uid}", reason="e"), "/t"))

    install_observability(app)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    relay = OutboxRelay(schema_pool.pool, schema_pool.schema, producer, safety_poll_s=1)
    runner = ConsumerRunner(
        group_id=group,
        topics=[first],
        handlers={"revisit.requested": on_revisit},
        pool=schema_pool.pool,
        bootstrap_servers=kafka_bootstrap,
    )
    await runner.start()
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            response = await http.post("/v1/things", headers={"traceparent": f"00-{TRACE}-{CALLER}-01"})
        (record,) = await read_topic(kafka_bootstrap, second, lambda records: len(records) >= 1)
        effect = decode(record.value, record.headers)
    finally:
        runner.stop()
        relay.stop()
        await asyncio.gather(*tasks)
        await producer.stop()

    spans = {span.name: span for span in exported.get_finished_spans()}
    server = spans["POST /v1/things"]
    produced = next(s for s in exported.get_finished_spans() if s.parent and _parent(s) == _hex(server)[1])
    consumed = spans["consume revisit.requested"]
    caused = next(s for s in exported.get_finished_spans() if s.parent and _parent(s) == _hex(consumed)[1])
    assert _hex(server)[0] == TRACE and _parent(server) == CALLER, "the caller's trace continues"
    assert (
        produced.kind is SpanKind.PRODUCER
        and produced.attributes["messaging.message.id"] == response.json()["id"]
    )
    assert consumed.kind is SpanKind.CONSUMER and _parent(consumed) == _hex(produced)[1], "across Kafka"
    assert consumed.attributes["messaging.consumer.group.name"] == group
    assert consumed.attributes["fieldcollect.outcome"] == "processed"
    assert caused.kind is SpanKind.PRODUCER and effect.traceparent.split("-")[1:3] == list(_hex(caused))
    assert {_hex(s)[0] for s in (server, produced, consumed, caused)} == {TRACE}


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps what it receives."""

    received: ClassVar[list[tuple[str, ExportTraceServiceRequest]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        Collector.received.append((self.path, request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_set() -> None:
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    provider = configure_tracing("planner", TracingOptions(otel_exporter_otlp_endpoint=endpoint))
    try:
        with start_span("consume visit.assigned", f"00-{TRACE}-{CALLER}-01", SpanKind.CONSUMER):
            pass
        assert provider.force_flush(10_000)
        ((path, request),) = Collector.received
        (resource_spans,) = request.resource_spans
        service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        ((span,),) = [scope.spans for scope in resource_spans.scope_spans]
        assert path == "/v1/traces" and service["service.name"] == "planner"
        assert span.name == "consume visit.assigned" and span.trace_id.hex() == TRACE
        assert span.parent_span_id.hex() == CALLER
    finally:
        configure_tracing("fieldcollect", TracingOptions())
        server.shutdown()
