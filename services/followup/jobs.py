"""The SMS job worker: one SMS per job, whatever crashes and how many workers run.

A job row stays locked (FOR UPDATE SKIP LOCKED) while its SMS is sent, so two workers
never send it together; the provider's Idempotency-Key is the job id, so a worker killed
after the provider accepted but before the commit resends the same key and the provider
returns the first message instead of a second SMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from services.followup import repository
from services.followup.sms import ProviderUnavailable, SmsMessage, SmsProvider, SmsRejected
from services.followup.templates import render
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue
from shared.retry import is_transient

log = logging.getLogger(__name__)
SOURCE = "/fieldcollect/followup"
NO_PHONE_RETRY_S = 300.0


class SmsJobWorker:
    def __init__(self, pool: Any, schema: str, provider: SmsProvider, poll_s: float = 2.0) -> None:
        self._pool = pool
        self._schema = schema
        self._provider = provider
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self.sent = 0

    async def run(self, stopping: asyncio.Event) -> None:
        async with self._pool.acquire() as listener:
            channel = f"sms_jobs_{self._schema}"
            await listener.add_listener(channel, self._on_notify)
            try:
                while not stopping.is_set():
                    self._wake.clear()
                    try:
                        while not stopping.is_set() and await self.run_one():
                            pass
                    except Exception as exc:
                        log.warning("sms worker retrying", extra={"error": type(exc).__name__})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_first(self._wake, stopping), self._poll_s)
            finally:
                await listener.remove_listener(channel, self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run_one(self) -> bool:
        """Send one due job; False when none is due."""
        async with self._pool.acquire() as conn, conn.transaction():
            job = await repository.claim_due_job(conn)
            if job is None:
                return False
            contact = await repository.get_contact(conn, job["account_id"])
            if contact is None or not contact["phone"]:
                await repository.postpone(conn, job["job_id"], "no phone number known", NO_PHONE_RETRY_S)
                return True
            text, language = render(job["template_id"], contact["language"], job["params"])
            message = SmsMessage(str(job["job_id"]), contact["phone"], text, job["template_id"], language)
            try:
                receipt = await self._provider.send(message)
            except SmsRejected as exc:
                await repository.mark_failed(conn, job["job_id"], str(exc))
                return True
            except Exception as exc:
                if not (is_transient(exc) or isinstance(exc, ProviderUnavailable)):
                    raise
                await repository.postpone(conn, job["job_id"], type(exc).__name__, 30.0)
                return True
            sent_at = await repository.mark_sent(conn, job["job_id"], receipt.provider_message_id)
            sent = p.SmsSent(
                account_id=job["account_id"],
                job_id=job["job_id"],
                template_id=job["template_id"],
                language=language,
                provider_message_id=receipt.provider_message_id,
                trigger_event_id=job["trigger_event_id"],
                sent_at=sent_at,
            )
            await enqueue(conn, Envelope(data=sent, source=SOURCE, causation_id=str(job["trigger_event_id"])))
        self.sent += 1
        return True


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
