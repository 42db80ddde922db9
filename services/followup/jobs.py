"""The SMS sender: one SMS per job, whatever crashes and however many senders run.

Due jobs are claimed in batches with FOR UPDATE SKIP LOCKED and stay locked while their
messages are sent, so two senders never send the same job; the provider's Idempotency-Key
is the job id, so a sender killed after the provider accepted but before the commit
resends the same key and the provider returns the first message instead of a second SMS.

Before sending, each job is checked again, because facts change while it waits: the
contact ledger (a payment, a kept promise make it pointless), our contact hours, and the
shared compliance policy (a refusal defers it to the next allowed time or drops it, and
is audited with contact.suppressed either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.followup import repository
from services.followup.contacts import SOURCE, Followup, Refusal, now_utc, suppressed
from services.followup.faults import AFTER_CLAIM, AFTER_PROVIDER_ACCEPTED, BEFORE_COMMIT, FaultPoints
from services.followup.gate import ContactKind
from services.followup.ledger import HISTORY_DAYS, contact_history, pointless_because
from services.followup.models import AccountFacts, LedgerEntry, Trigger
from services.followup.sms import ProviderUnavailable, SmsMessage, SmsProvider, SmsReceipt, SmsRejected
from services.followup.templates import for_recipient, render
from shared.compliance import Channel, ContactHistory, ContactRecord, Recipient
from shared.events import payloads as p
from shared.outbox import enqueue
from shared.retry import is_transient

log = logging.getLogger(__name__)
NO_PHONE_RETRY_S = 300.0
PROVIDER_RETRY_S = 30.0
MAX_ATTEMPTS = 10
# A job without a send-by time (written before they existed) waits at most this long.
DEFAULT_HORIZON = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Ready:
    job: asyncpg.Record
    facts: AccountFacts
    message: SmsMessage


class SmsJobWorker:
    def __init__(
        self,
        pool: Any,
        schema: str,
        provider: SmsProvider,
        ctx: Followup,
        batch_size: int = 20,
        poll_s: float = 2.0,
        faults: FaultPoints | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._provider = provider
        self._ctx = ctx
        self._batch_size = batch_size
        self._poll_s = poll_s
        self._faults = faults or FaultPoints(None)
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
                        while not stopping.is_set() and await self.run_batch():
                            pass
                    except Exception as exc:
                        log.warning("sms worker retrying", extra={"error": type(exc).__name__})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_first(self._wake, stopping), self._poll_s)
            finally:
                await listener.remove_listener(channel, self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run_batch(self) -> bool:
        """Send the due jobs of one batch; False when none is due."""
        async with self._pool.acquire() as conn, conn.transaction():
            jobs = await repository.claim_due_sms(conn, self._batch_size)
            if not jobs:
                return False
            self._faults.reached(AFTER_CLAIM)
            ready = await self._prepare(conn, jobs)
            results = await asyncio.gather(*(self._send(r.message) for r in ready), return_exceptions=True)
            for item, result in zip(ready, results, strict=True):
                await self._record(conn, item, result)
            self._faults.reached(BEFORE_COMMIT)
        return True

    async def _send(self, message: SmsMessage) -> SmsReceipt:
        receipt = await self._provider.send(message)
        self._faults.reached(AFTER_PROVIDER_ACCEPTED)
        return receipt

    async def _prepare(self, conn: asyncpg.Connection, jobs: list[asyncpg.Record]) -> list[Ready]:
        now = now_utc()
        lookback = timedelta(hours=self._ctx.rules.ledger.lookback_hours)
        since = min(min(j["created_at"] for j in jobs) - lookback, now - timedelta(days=HISTORY_DAYS))
        facts = await repository.load_facts(conn, sorted({j["account_id"] for j in jobs}), since)
        promises = await repository.promise_status(conn, [j["promise_id"] for j in jobs if j["promise_id"]])
        histories: dict[str, ContactHistory] = {}
        ready = []
        for job in jobs:
            account_facts = facts.get(job["account_id"])
            message = await self._check(conn, job, account_facts, promises, histories, now)
            if message is not None and account_facts is not None:
                ready.append(Ready(job, account_facts, message))
        return ready

    async def _check(
        self,
        conn: asyncpg.Connection,
        job: asyncpg.Record,
        facts: AccountFacts | None,
        promises: dict[Any, str],
        histories: dict[str, ContactHistory],
        now: datetime,
    ) -> SmsMessage | None:
        """The message to send now, or None when the job was deferred, dropped or postponed."""
        latest = job["not_after"] or now + DEFAULT_HORIZON
        if now >= latest:
            await self._close(conn, job, "suppressed", Refusal.by_rules(self._ctx.rules, "stale"))
            return None
        if facts is None or not facts.phone:
            # The account's facts may simply not have arrived yet (topics are not ordered).
            retry_s = min(NO_PHONE_RETRY_S, 5.0 * 2 ** job["attempts"])
            await repository.postpone(conn, job["job_id"], "no phone number known", retry_s)
            return None
        why = self._pointless(job, facts, promises)
        if why is not None:
            await self._close(conn, job, "cancelled", Refusal.by_rules(self._ctx.rules, why))
            return None
        history = histories.get(job["account_id"]) or contact_history(facts.ledger, facts.time_zone)
        if not await self._may_send_now(conn, job, facts, history, now, latest):
            return None
        histories[job["account_id"]] = history.with_contact(
            ContactRecord(Channel.SMS, now, number_id=facts.number_id)
        )
        # Chosen again at sending: whatever the row says, a third party gets no debt details.
        recipient = Recipient(job["recipient"])
        template_id, params = for_recipient(job["template_id"], job["params"], recipient)
        text, language = render(template_id, facts.language, params, recipient)
        return SmsMessage(str(job["job_id"]), facts.phone, text, template_id, language, params)

    def _pointless(self, job: asyncpg.Record, facts: AccountFacts, promises: dict[Any, str]) -> str | None:
        if job["promise_id"] is not None and promises.get(job["promise_id"], "open") != "open":
            return f"pointless.promise_{promises[job['promise_id']]}"
        exclude = (job["trigger_event_id"], job["basis_event_id"], job["job_id"])
        fact = pointless_because(self._ctx.rules, job["action"], facts.ledger, job["created_at"], exclude)
        return None if fact is None else f"pointless.{fact}"

    async def _may_send_now(
        self,
        conn: asyncpg.Connection,
        job: asyncpg.Record,
        facts: AccountFacts,
        history: ContactHistory,
        now: datetime,
        latest: datetime,
    ) -> bool:
        """Our hours, then the compliance policy: defer or drop (audited) when it refuses."""
        gate = self._ctx.gate
        kind = ContactKind("sms", job["action"], job["purpose"])
        proposed = gate.first_preferred(kind, now, facts.time_zone)
        if proposed > now:
            # Outside our own hours (a late worker): wait for them, or give up past send-by.
            if proposed < latest:
                await repository.defer_sms(conn, job["job_id"], proposed, "outside contact hours")
            else:
                await self._close(conn, job, "suppressed", Refusal.by_rules(self._ctx.rules, "stale"))
            return False
        decision = gate.decide(facts, kind, now, history=history)
        if decision.allowed:
            return True
        slot = gate.next_slot(facts, kind, now, latest, None, history)
        refusal = Refusal.of(decision, slot)
        if slot is None:
            await self._close(conn, job, "suppressed", refusal)
        else:
            await repository.defer_sms(conn, job["job_id"], slot, decision.rule_id)
            await self._audit(conn, job, refusal)
        return False

    async def _close(
        self, conn: asyncpg.Connection, job: asyncpg.Record, status: str, refusal: Refusal
    ) -> None:
        await repository.close_sms(conn, job["job_id"], status, refusal.rule)
        await self._audit(conn, job, refusal)

    async def _audit(self, conn: asyncpg.Connection, job: asyncpg.Record, refusal: Refusal) -> None:
        event = suppressed(job["account_id"], "sms", job["action"], refusal)
        await enqueue(conn, Trigger.of_row(job).caused(event, SOURCE))

    async def _record(
        self, conn: asyncpg.Connection, item: Ready, result: SmsReceipt | BaseException
    ) -> None:
        job = item.job
        if isinstance(result, SmsReceipt):
            await self._sent(conn, item, result)
        elif isinstance(result, SmsRejected):
            await repository.mark_failed(conn, job["job_id"], str(result))
        elif isinstance(result, ProviderUnavailable) or is_transient(result):
            await repository.postpone(conn, job["job_id"], type(result).__name__, PROVIDER_RETRY_S)
        elif isinstance(result, Exception):
            log.error("sms job failed", extra={"job_id": str(job["job_id"]), "error": type(result).__name__})
            if job["attempts"] + 1 >= MAX_ATTEMPTS:
                await repository.mark_failed(conn, job["job_id"], type(result).__name__)
            else:
                await repository.postpone(conn, job["job_id"], type(result).__name__, PROVIDER_RETRY_S)
        else:
            raise result

    async def _sent(self, conn: asyncpg.Connection, item: Ready, receipt: SmsReceipt) -> None:
        job = item.job
        sent_at = await repository.mark_sent(conn, job["job_id"], receipt.provider_message_id)
        entry = LedgerEntry(job["job_id"], "sms", sent_at, sent_at, number_id=item.facts.number_id)
        await repository.add_to_ledger(conn, job["account_id"], [entry])
        sent = p.SmsSent(
            account_id=job["account_id"],
            job_id=job["job_id"],
            template_id=job["template_id"],
            language=item.message.language,
            provider_message_id=receipt.provider_message_id,
            trigger_event_id=job["trigger_event_id"],
            sent_at=sent_at,
        )
        # The SMS continues the trace of the event that caused it (a visit outcome, a hold ...).
        await enqueue(conn, Trigger.of_row(job).caused(sent, SOURCE))
        self.sent += 1


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
