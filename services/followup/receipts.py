"""What the SMS gateway tells us: delivery receipts (sms.delivery_updated) and replies (STOP / 退订).

Gateways deliver webhooks at least once and retry on errors: receipts are applied once per
(message, status), replies once per message id.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Literal

import asyncpg

from services.followup import repository
from services.followup.contacts import SOURCE, Followup
from services.followup.models import DeliveryReceiptIn, InboundSmsIn, Trigger
from shared.errors import Conflict, NotFound
from shared.events import payloads as p
from shared.outbox import enqueue

DeliveryStatus = Literal["delivered", "failed", "expired", "unknown"]
# Gateway statuses that are final for us; "accepted" and "sent" are on the way.
FINAL: dict[str, DeliveryStatus] = {
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "expired": "expired",
    "unknown": "unknown",
}
_NOT_DIGITS = re.compile(r"[^0-9]")


async def apply_receipt(conn: asyncpg.Connection, receipt: DeliveryReceiptIn) -> bool:
    """True when this receipt changed something (and sms.delivery_updated was published)."""
    status = FINAL.get(receipt.status)
    job = await repository.sms_job_for_receipt(conn, receipt.message_id, _job_id(receipt.idempotency_key))
    if job is None:
        raise NotFound("no SMS with this message id", "message_id")
    if job["status"] != "sent" or job["provider_message_id"] != receipt.message_id:
        # The send has not committed yet (or crashed before it): the gateway retries later.
        raise Conflict("the message is not recorded as sent yet; retry later", "message_id")
    if status is None or not await repository.record_receipt(conn, receipt.message_id, status):
        return False
    await repository.set_delivery(conn, job["job_id"], status, receipt.updated_at)
    if status == "delivered":
        await repository.mark_ledger_connected(conn, job["job_id"], "sms")
    updated = p.SmsDeliveryUpdated(
        account_id=job["account_id"],
        job_id=job["job_id"],
        provider_message_id=receipt.message_id,
        status=status,
        updated_at=receipt.updated_at,
    )
    await enqueue(conn, Trigger.of_row(job).caused(updated, SOURCE))
    return True


async def apply_inbound(conn: asyncpg.Connection, ctx: Followup, message: InboundSmsIn) -> str:
    """'opt_out' or 'other' for a new reply; 'duplicate' for one applied before.

    An opt-out stops SMS to every account with that number; pending SMS are then refused
    by the compliance policy (channel opt-out) when due, and audited there.
    """
    if await repository.inbound_seen(conn, message.message_id):
        return "duplicate"
    if not ctx.rules.is_opt_out(message.text):
        await repository.record_inbound(conn, message.message_id, "other", 0)
        return "other"
    accounts = await repository.opt_out_sms_by_phone(conn, phone_spellings(message.sender))
    await repository.record_inbound(conn, message.message_id, "opt_out", len(accounts))
    return "opt_out"


def phone_spellings(number: str) -> list[str]:
    """The spellings a stored number may have: +8613800001111, 8613800001111 (gateways differ)."""
    digits = _NOT_DIGITS.sub("", number)
    return sorted({number.strip(), digits, f"+{digits}"})


def _job_id(idempotency_key: str | None) -> uuid.UUID | None:
    if idempotency_key is None:
        return None
    with contextlib.suppress(ValueError):
        return uuid.UUID(idempotency_key)
    return None
