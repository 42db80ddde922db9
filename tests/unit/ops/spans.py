"""A fresh tracer provider per test with an in-memory exporter: the SDK's spans as exported."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.tracing import configure_tracing


@dataclass(frozen=True)
class TracingOptions:
    otel_exporter_otlp_endpoint: str | None = None
    traces_file: Path | None = None


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    provider = configure_tracing("test-service", TracingOptions())
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    configure_tracing("fieldcollect", TracingOptions())
