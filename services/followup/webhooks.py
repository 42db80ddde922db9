"""Signed webhooks between the SMS gateway and follow-up (delivery receipts, inbound SMS).

The gateway signs `<timestamp>.<body>` with HMAC-SHA256 under a shared secret and sends
`X-Webhook-Signature: t=<unix seconds>,v1=<hex>`; follow-up recomputes it and refuses old
timestamps, so a captured request cannot be replayed later. The scheme is the one most
gateways and payment providers use; the secret never travels.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Webhook-Signature"
TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, now: float, tolerance_s: int = TOLERANCE_S) -> bool:
    """True when `header` signs `body` under `secret` and is recent enough."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
