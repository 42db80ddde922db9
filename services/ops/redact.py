"""What the console shows of a payload: the facts operators need, not who the customer is.

Names, phone numbers, street lines, postal codes, exact coordinates and free-text notes are
replaced wherever they appear (also inside dead letters that no longer match a schema).
"""

from __future__ import annotations

from typing import Any

import orjson

REDACTED = "‹redacted›"
PERSONAL_KEYS = frozenset(
    {
        "contact",
        "customer_name",
        "name",
        "phone",
        "line1",
        "postal_code",
        "location",
        "lat",
        "lon",
        "notes",
        "refusal_reason",
        "text",
        "code",  # a cash-confirmation one-time code: a secret, not for the console
    }
)
PREVIEW_BYTES = 2048


def redact(value: Any) -> Any:
    """A copy of a decoded JSON value with every personal field replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if k in PERSONAL_KEYS and v is not None else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redacted_payload(raw: bytes | None) -> tuple[Any, str | None]:
    """(redacted JSON, None) for a JSON record; (None, why) otherwise."""
    if raw is None:
        return None, "empty record value"
    try:
        return redact(orjson.loads(raw)), None
    except orjson.JSONDecodeError:
        return None, "not JSON"


def raw_preview(raw: bytes | None) -> str:
    """The first bytes of a record that is not JSON, for diagnosing a poison message."""
    if not raw:
        return ""
    text = raw[:PREVIEW_BYTES].decode("utf-8", "replace")
    return text + ("…" if len(raw) > PREVIEW_BYTES else "")
