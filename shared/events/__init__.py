"""The event catalog: payload models, the CloudEvents envelope and the topics."""

from shared.events import payloads as payloads
from shared.events import topics as topics
from shared.events.envelope import Envelope, EventDecodeError, decode

__all__ = ["Envelope", "EventDecodeError", "decode", "payloads", "topics"]
