"""CloudEvents 1.0 envelope and its Kafka protocol binding (binary content mode).

The payload travels as the record value (JSON); the context attributes travel as
`ce_*` headers, plus W3C `traceparent`. The record key is the account id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.events.payloads import PAYLOAD_TYPES, EventPayload, Payload, payload_adapter
from shared.tracing import producer_traceparent

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
SCHEMA_VERSION = "1"

Headers = list[tuple[str, bytes]]


class EventDecodeError(ValueError):
    """A record that is not a valid event of our catalog: a poison message."""


def new_traceparent() -> str:
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_traceparent(parent: str | None, event_type: str | None = None) -> str:
    """The traceparent of a new event caused by `parent` (e.g. a stored cause's traceparent).

    Records the event's producer span: under the current span when it is in `parent`'s trace,
    else under the span `parent` names; without `parent`, as a new event here (a new trace
    outside any span).
    """
    return producer_traceparent(f"produce {event_type or 'event'}", parent, {"messaging.system": "kafka"})


def _producer_span(data: Payload, event_id: uuid.UUID, parent: str | None) -> str:
    event_type = str(data.type)  # type: ignore[attr-defined]
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "create",
        "messaging.destination.name": data.topic,
        "messaging.message.id": str(event_id),
    }
    return producer_traceparent(f"produce {event_type}", parent, attributes)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event: CloudEvents context attributes around a typed payload."""

    data: Payload
    source: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None
    # Empty: a new event, whose producer span is recorded now (in the current span's trace).
    traceparent: str = ""

    def __post_init__(self) -> None:
        if not self.traceparent:
            object.__setattr__(self, "traceparent", _producer_span(self.data, self.id, None))

    @property
    def type(self) -> str:
        return str(self.data.type)  # type: ignore[attr-defined]

    @property
    def subject(self) -> str:
        return self.data.account_id

    @property
    def topic(self) -> str:
        return self.data.topic

    @property
    def key(self) -> bytes:
        return self.data.account_id.encode()

    def caused(self, data: Payload, source: str) -> Envelope:
        """An event caused by this one: same correlation and trace, causation = this id."""
        event_id = uuid.uuid4()
        return Envelope(
            data=data,
            source=source,
            id=event_id,
            correlation_id=self.correlation_id or str(self.id),
            causation_id=str(self.id),
            traceparent=_producer_span(data, event_id, self.traceparent),
        )

    def headers(self) -> Headers:
        headers: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", str(self.id).encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("ce_subject", self.subject.encode()),
            ("ce_dataschema", f"urn:fieldcollect:{self.type}:v{SCHEMA_VERSION}".encode()),
            ("content-type", CONTENT_TYPE.encode()),
            ("traceparent", self.traceparent.encode()),
        ]
        if self.correlation_id:
            headers.append(("ce_correlationid", self.correlation_id.encode()))
        if self.causation_id:
            headers.append(("ce_causationid", self.causation_id.encode()))
        return headers

    def value(self) -> bytes:
        return self.data.model_dump_json().encode()


def header_map(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in headers or ()}


def decode(value: bytes | None, headers: Sequence[tuple[str, bytes]] | None) -> Envelope:
    """Parse a Kafka record into an Envelope, or raise EventDecodeError saying why."""
    attrs = header_map(headers)
    for required in ("ce_id", "ce_type", "ce_source", "ce_specversion"):
        if required not in attrs:
            raise EventDecodeError(f"missing header {required}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise EventDecodeError(f"unsupported specversion {attrs['ce_specversion']}")
    if attrs["ce_type"] not in PAYLOAD_TYPES:
        raise EventDecodeError(f"unknown event type {attrs['ce_type']}")
    if value is None:
        raise EventDecodeError("empty record value")
    try:
        data: EventPayload = payload_adapter.validate_json(value)
        event_id = uuid.UUID(attrs["ce_id"])
        time = datetime.fromisoformat(attrs["ce_time"]) if "ce_time" in attrs else None
    except (ValidationError, ValueError) as exc:
        raise EventDecodeError(_describe(exc)) from None
    if data.type != attrs["ce_type"]:
        raise EventDecodeError("ce_type header does not match the payload type")
    return Envelope(
        data=data,
        source=attrs["ce_source"],
        id=event_id,
        time=time or datetime.now(UTC),
        correlation_id=attrs.get("ce_correlationid"),
        causation_id=attrs.get("ce_causationid"),
        traceparent=attrs.get("traceparent") or new_traceparent(),
    )


def _describe(exc: Exception) -> str:
    """Field paths and reasons only: input values may be personal data."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())[
            :1000
        ]
    return type(exc).__name__
