"""Follow-up's reactions to events: keep the customer's facts, turn outcomes into contacts.

The consumer runner owns the transaction (inbox row, these effects, their outbox events).
What a visit outcome leads to is decided by rules.toml; when a contact may happen, by the
compliance gate; a pending contact that a payment, a promise or a meeting makes pointless
is cancelled (the contact ledger).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg

from services.followup import repository
from services.followup.contacts import (
    SOURCE,
    CallSpec,
    Followup,
    Refusal,
    SmsSpec,
    audit,
    cancel_pending,
    cancel_pointless,
    now_utc,
    plan_sms,
    pointless_pending,
    publish_hold,
    request_revisit,
    schedule_call,
    schedule_sms,
    suppressed,
)
from services.followup.gate import ContactKind, local_instant
from services.followup.ledger import HISTORY_DAYS, facts_of, in_a_row
from services.followup.models import AccountFacts, LedgerEntry, Trigger
from shared.compliance import Recipient
from shared.events import Envelope
from shared.events import payloads as p
from shared.outbox import enqueue

# Outcomes where the agent met the customer (third_party_only met someone else).
MET_CUSTOMER = frozenset(
    {"paid_on_site", "promise_to_pay", "partial_payment", "refused", "hardship_reported", "dispute_raised"}
)
CARE_SMS_STALE_HOURS = 72
CASH_CONFIRMATION = "cash_confirmation"  # the template, and sms.<it> the action


@dataclass(frozen=True, slots=True)
class Staged:
    """A promise outcome planned in a batch, written at the flush: its writes and the refusals
    (action, refusal) to audit for the jobs actually created."""

    event: Envelope
    write: repository.PromiseWrite
    refusals: list[tuple[str, Refusal]]


@dataclass(slots=True)
class OutcomeBatch:
    """What EventHandlers.outcome_batch read ahead, and what it has staged to write."""

    facts: dict[str, AccountFacts]
    touched: set[str] = field(default_factory=set)
    staged: list[Staged] = field(default_factory=list)


# The batch being applied by this task (each consumer runs in a task of its own).
_BATCH: ContextVar[OutcomeBatch | None] = ContextVar("followup_outcome_batch", default=None)


async def facts_for(conn: asyncpg.Connection, account_id: str) -> AccountFacts | None:
    since = now_utc() - timedelta(days=HISTORY_DAYS)
    return (await repository.load_facts(conn, [account_id], since)).get(account_id)


class EventHandlers:
    """One method per consumed event type; `ctx` holds the rules and the compliance gate."""

    def __init__(self, ctx: Followup) -> None:
        self.ctx = ctx
        self._outcomes: dict[type[Any], OutcomeHandler] = {
            p.PaidOnSite: self._paid_at_visit,
            p.PartialPayment: self._paid_at_visit,
            p.HardshipReported: self._hardship,
            p.DisputeRaised: self._dispute,
            p.Deceased: self._deceased,
        }

    # --- collections.delinquency.v1: the customer's facts and payments ------------------

    async def on_delinquency_opened(self, conn: asyncpg.Connection, event: Envelope) -> None:
        assert isinstance(event.data, p.DelinquencyOpened)
        await repository.upsert_contact(conn, event.data)

    async def on_delinquency_updated(self, conn: asyncpg.Connection, event: Envelope) -> None:
        e = event.data
        assert isinstance(e, p.DelinquencyUpdated)
        await repository.update_dpd(conn, e.account_id, e.dpd)
        if e.contact is not None or e.address is not None:
            # The next SMS goes to the new number, in the new language and zone (the sender
            # reads them when it sends, not when the job was planned).
            country = e.address.country if e.address else None
            await repository.update_contact(conn, e.account_id, e.contact, country)

    async def on_flags_changed(self, conn: asyncpg.Connection, event: Envelope) -> None:
        e = event.data
        assert isinstance(e, p.CustomerFlagsChanged)
        changed = {
            name: bool(getattr(e.flags, name)) for name in e.changed if name in p.CustomerFlags.model_fields
        }
        await repository.merge_flags(conn, e.account_id, changed)

    async def on_payment_received(self, conn: asyncpg.Connection, event: Envelope) -> None:
        e = event.data
        assert isinstance(e, p.PaymentReceived)
        cleared = e.overdue_amount_after == 0
        await self._record_payment(conn, event, e.account_id, e.amount, cleared)

    async def on_delinquency_cured(self, conn: asyncpg.Connection, event: Envelope) -> None:
        e = event.data
        assert isinstance(e, p.DelinquencyCured)
        if e.reason == "current":
            await self._record_payment(conn, event, e.account_id, Decimal(0), cleared=True)
            return
        # Closed (settled, sold, written off): nothing left to collect, nothing to remind of.
        await self._settle_promises(conn, event, e.account_id, "account_closed")
        await cancel_pending(
            conn, event, e.account_id, None, Refusal.by_rules(self.ctx.rules, "account_closed")
        )

    # --- collections.visit-outcomes.v1 --------------------------------------------------

    @contextlib.asynccontextmanager
    async def outcome_batch(
        self, conn: asyncpg.Connection, events: Sequence[Envelope]
    ) -> AsyncIterator[None]:
        """A consumed batch of outcomes (shared.consumer.BatchScope): the facts of all its accounts
        in one query, the promises of all its plain promise outcomes written in one statement.

        A promise outcome is staged (planned exactly as one at a time would be, from the facts
        read ahead) when nothing else in the batch touched its account and nothing needs to be
        cancelled, settled or paid; any other event flushes what is staged first, then runs
        as usual. An error rolls the whole batch back (the runner then applies it event by
        event, without a batch).
        """
        accounts = sorted({e.data.account_id for e in events if isinstance(e.data, p.VisitOutcomeRecorded)})
        since = now_utc() - timedelta(days=HISTORY_DAYS)
        batch = OutcomeBatch(await repository.load_facts(conn, accounts, since) if accounts else {})
        token = _BATCH.set(batch)
        try:
            yield
            await self._flush(conn, batch)
        finally:
            _BATCH.reset(token)

    async def on_outcome_recorded(self, conn: asyncpg.Connection, event: Envelope) -> None:
        recorded = event.data
        assert isinstance(recorded, p.VisitOutcomeRecorded)
        batch = _BATCH.get()
        if batch is not None:
            if self._stage_promise(batch, event, recorded):
                return
            await self._flush(conn, batch)
            batch.touched.add(recorded.account_id)
        facts = await facts_for(conn, recorded.account_id)
        entries = outcome_ledger(event, recorded)
        learnt = frozenset().union(*(facts_of(entry) for entry in entries))
        await cancel_pointless(conn, self.ctx, event, recorded.account_id, learnt, facts)
        if isinstance(recorded.outcome, p.PromiseToPay):
            # The most frequent outcome: ledger, promise and messages in one statement.
            await self._promise_made(conn, event, recorded, facts, entries)
            return
        await repository.add_to_ledger(conn, recorded.account_id, entries)
        handler = self._outcomes.get(type(recorded.outcome), self._next_step)
        await handler(conn, event, recorded, facts)

    async def on_cash_confirmation_requested(self, conn: asyncpg.Connection, event: Envelope) -> None:
        """Text the customer the one-time code for cash taken at the door, until it expires.

        To the phone of our contact projection only (never a number from the door); the code
        lives in the job's params until the job is closed (the 0005 migration clears them).
        """
        e = event.data
        assert isinstance(e, p.CashConfirmationRequested)
        params = {
            "amount": f"{e.amount:.2f}",
            "currency": e.currency,
            "receipt": e.receipt_number,
            "code": e.code,
        }
        action = f"sms.{CASH_CONFIRMATION}"
        spec = SmsSpec(
            action, CASH_CONFIRMATION, "collection", params, now_utc(), e.expires_at, secret_params=True
        )
        await schedule_sms(conn, self.ctx, event, e.account_id, await facts_for(conn, e.account_id), spec)

    async def _next_step(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        facts: AccountFacts | None,
    ) -> None:
        """Absent, refused, moved, third party only, unsafe: a call or a revisit, by the rules."""
        kind = recorded.outcome.kind
        count = in_a_row(facts.ledger if facts else (), kind) + (kind not in MET_CUSTOMER)
        step, rule = self.ctx.rules.next_step(kind, max(count, 1))
        if rule is None or step == "none":
            return
        now = now_utc()
        if rule.message is not None:
            latest = now + timedelta(hours=rule.message_within_hours)
            sms = SmsSpec(
                f"sms.{kind}", rule.message, "collection", {}, now, latest, recipient=Recipient.THIRD_PARTY
            )
            await schedule_sms(conn, self.ctx, event, recorded.account_id, facts, sms)
        if step == "revisit":
            not_before = self._today(facts, now) + timedelta(days=rule.revisit_not_before_days)
            await request_revisit(conn, event, recorded.account_id, f"{kind} x{max(count, 1)}", not_before)
            return
        earliest = now + timedelta(hours=rule.delay_hours)
        spec = CallSpec(
            f"call.{kind}", kind, "collection", earliest, earliest + timedelta(days=rule.call_within_days)
        )
        await schedule_call(conn, self.ctx, event, recorded.account_id, facts, spec)

    def _stage_promise(self, batch: OutcomeBatch, event: Envelope, recorded: p.VisitOutcomeRecorded) -> bool:
        """Plan a plain promise outcome from the facts read ahead and stage its writes; False
        when it needs the one-at-a-time path (see outcome_batch)."""
        promise, account_id = recorded.outcome, recorded.account_id
        facts = batch.facts.get(account_id)
        if not isinstance(promise, p.PromiseToPay) or account_id in batch.touched:
            return False
        if facts is None or facts.open_promise or any(paid_since(facts, recorded.recorded_at)):
            return False
        entries = outcome_ledger(event, recorded)
        learnt = frozenset().union(*(facts_of(entry) for entry in entries))
        if pointless_pending(self.ctx, learnt, facts):
            return False
        planned = self._promise_messages(event, recorded, promise, facts)
        new = self._new_promise(event, recorded, promise, facts)
        write = repository.PromiseWrite(new, entries, [job for job, _ in planned])
        batch.staged.append(Staged(event, write, [(job.action, r) for job, r in planned if r is not None]))
        batch.touched.add(account_id)
        return True

    async def _flush(self, conn: asyncpg.Connection, batch: OutcomeBatch) -> None:
        """Write the staged promises in one statement, and audit the refusals of the jobs written."""
        if not batch.staged:
            return
        staged, batch.staged = batch.staged, []
        written = await repository.record_promises(conn, [s.write for s in staged])
        audits = [
            s.event.caused(suppressed(s.write.promise.account_id, "sms", action, refusal), SOURCE)
            for s in staged
            if s.event.id in written
            for action, refusal in s.refusals
            if action in written[s.event.id][1]
        ]
        if audits:
            await enqueue(conn, *audits)

    async def _promise_made(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        facts: AccountFacts | None,
        entries: list[LedgerEntry],
    ) -> None:
        """A new promise replaces open ones; a confirmation now, a reminder the day before."""
        promise = recorded.outcome
        assert isinstance(promise, p.PromiseToPay)
        account_id = recorded.account_id
        if facts is None or facts.open_promise:
            rule = "pointless.promise_superseded"
            await self._settle_promises(conn, event, account_id, rule, keep_outcome=event.id)
        paid, cleared = paid_since(facts, recorded.recorded_at)
        covered = cleared or paid >= promise.amount
        planned = [] if covered else self._promise_messages(event, recorded, promise, facts)
        new = self._new_promise(event, recorded, promise, facts)
        promise_id, created = await repository.record_promise(conn, new, entries, [job for job, _ in planned])
        if promise_id is None:
            return  # this outcome's promise exists already
        for job, refusal in planned:
            if refusal is not None and job.action in created:
                await audit(conn, event, account_id, "sms", job.action, refusal)
        if paid or cleared:
            await self._apply_payment(conn, event, account_id, paid, cleared)

    def _new_promise(
        self,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        promise: p.PromiseToPay,
        facts: AccountFacts | None,
    ) -> repository.NewPromise:
        zone = facts.time_zone if facts else self.ctx.default_time_zone
        grace = self.ctx.rules.promise.grace_days
        trigger = Trigger.of(event)
        return repository.NewPromise(
            account_id=recorded.account_id,
            outcome_event_id=event.id,
            amount=promise.amount,
            currency=recorded.currency,
            promised_date=promise.promised_date,
            made_at=recorded.recorded_at,
            # The promise stands until the end of the last grace day in the customer's zone.
            due_check_at=local_instant(promise.promised_date + timedelta(days=grace + 1), 0, zone),
            trigger_traceparent=trigger.traceparent,
            trigger_correlation_id=trigger.correlation_id,
        )

    def _promise_messages(
        self,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        promise: p.PromiseToPay,
        facts: AccountFacts | None,
    ) -> list[tuple[repository.NewSmsJob, Refusal | None]]:
        """A confirmation now, and a reminder the day before the promised date (in our hours)."""
        rules, account_id = self.ctx.rules.promise, recorded.account_id
        params = {
            "amount": f"{promise.amount:.2f}",
            "currency": recorded.currency or "",
            "date": promise.promised_date.isoformat(),
        }
        now = now_utc()
        specs = []
        if rules.confirm_by_sms:
            latest = now + timedelta(hours=rules.confirmation_stale_after_hours)
            specs.append(
                SmsSpec("sms.promise_confirmation", "promise_confirmation", "collection", params, now, latest)
            )
        reminder_day = promise.promised_date - timedelta(days=rules.reminder_days_before)
        # A reminder on the day of the visit would repeat the confirmation: none then.
        if reminder_day > self._today(facts, now):
            zone = facts.time_zone if facts else self.ctx.default_time_zone
            kind = ContactKind("sms", "sms.promise_reminder", "collection")
            opens, closes = self.ctx.gate.preferred_window(kind, reminder_day, zone)
            specs.append(
                SmsSpec("sms.promise_reminder", "promise_reminder", "collection", params, opens, closes)
            )
        planned = (plan_sms(self.ctx, Trigger.of(event), account_id, facts, spec) for spec in specs)
        return [item for item in planned if item is not None]

    async def _paid_at_visit(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        facts: AccountFacts | None,
    ) -> None:
        """The payment is in the ledger already (outcome_ledger): count it towards open promises."""
        outcome = recorded.outcome
        assert isinstance(outcome, p.PaidOnSite | p.PartialPayment)
        await self._apply_payment(conn, event, recorded.account_id, outcome.amount, cleared=False)

    async def _hardship(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        facts: AccountFacts | None,
    ) -> None:
        """With consent: a referral and a care hold. Without: how to reach the care team, once."""
        hardship, account_id, rules = recorded.outcome, recorded.account_id, self.ctx.rules
        assert isinstance(hardship, p.HardshipReported)
        if not hardship.referral_consent:
            if rules.hardship.care_info_without_consent:
                await self._care_sms(conn, event, account_id, facts, "sms.care_info", "care_info")
            return
        program = rules.program_for(hardship.category, facts.dpd if facts else 0)
        stamped = rules.stamp(f"hardship.{program.id}")
        referral_id = await repository.insert_referral(
            conn, Trigger.of(event), account_id, program.program, stamped, hardship.category
        )
        if referral_id is None:
            return
        referred = p.CareReferred(
            account_id=account_id, referral_id=referral_id, program=program.program, rule=stamped
        )
        await enqueue(conn, event.caused(referred, SOURCE))
        await self._hold(conn, event, account_id, facts, "care_hold", f"care referral {referral_id}")
        if rules.hardship.notify_by_sms:
            await self._care_sms(conn, event, account_id, facts, "sms.care_referral", "care_referral")

    async def _dispute(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        facts: AccountFacts | None,
    ) -> None:
        account_id = recorded.account_id
        dispute_id = await repository.insert_dispute(conn, Trigger.of(event), account_id)
        if dispute_id is None:
            return
        await self._hold(conn, event, account_id, facts, "dispute", f"dispute {dispute_id}")
        if self.ctx.rules.dispute.acknowledge_by_sms:
            now = now_utc()
            latest = now + timedelta(hours=CARE_SMS_STALE_HOURS)
            spec = SmsSpec("sms.dispute_ack", "dispute_ack", "dispute_response", {}, now, latest)
            await schedule_sms(conn, self.ctx, event, account_id, facts, spec)

    async def _deceased(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        recorded: p.VisitOutcomeRecorded,
        facts: AccountFacts | None,
    ) -> None:
        """Reported at the door: stop every pending contact now (core banking confirms the flag)."""
        await self._settle_promises(conn, event, recorded.account_id, "deceased_reported")
        refusal = Refusal.by_rules(self.ctx.rules, "deceased_reported")
        await cancel_pending(conn, event, recorded.account_id, None, refusal)

    # --- shared steps ------------------------------------------------------------------

    async def _hold(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        account_id: str,
        facts: AccountFacts | None,
        flag: Literal["care_hold", "dispute"],
        reason: str,
    ) -> None:
        """A care or dispute hold: collection contact stops here and at the planner."""
        await self._settle_promises(conn, event, account_id, flag)
        await cancel_pending(conn, event, account_id, None, Refusal.by_rules(self.ctx.rules, flag))
        await publish_hold(conn, event, account_id, facts, flag, True, reason)

    async def _care_sms(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        account_id: str,
        facts: AccountFacts | None,
        action: str,
        template_id: str,
    ) -> None:
        now = now_utc()
        spec = SmsSpec(action, template_id, "care", {}, now, now + timedelta(hours=CARE_SMS_STALE_HOURS))
        await schedule_sms(conn, self.ctx, event, account_id, facts, spec)

    async def _record_payment(
        self, conn: asyncpg.Connection, event: Envelope, account_id: str, amount: Decimal, cleared: bool
    ) -> None:
        entry = LedgerEntry(
            event.id, "payment", event.time, now_utc(), amount=amount, detail="cleared" if cleared else None
        )
        await repository.add_to_ledger(conn, account_id, [entry])
        await self._apply_payment(conn, event, account_id, amount, cleared)
        learnt = frozenset({"payment", "payment_cleared"} if cleared else {"payment"})
        await cancel_pointless(conn, self.ctx, event, account_id, learnt)

    async def _apply_payment(
        self, conn: asyncpg.Connection, event: Envelope, account_id: str, amount: Decimal, cleared: bool
    ) -> list[uuid.UUID]:
        """Count a payment towards open promises; the covered ones are kept (promise.kept)."""
        touched = await repository.apply_payment(conn, account_id, amount, cleared)
        kept = [r["promise_id"] for r in touched if r["status"] == "kept"]
        for promise_id in kept:
            await enqueue(
                conn, event.caused(p.PromiseKept(account_id=account_id, promise_id=promise_id), SOURCE)
            )
        await cancel_promise_messages(conn, self.ctx, event, kept, "pointless.promise_kept")
        return kept

    async def _settle_promises(
        self,
        conn: asyncpg.Connection,
        event: Envelope,
        account_id: str,
        rule: str,
        keep_outcome: uuid.UUID | None = None,
    ) -> None:
        settled = await repository.supersede_promises(conn, account_id, keep_outcome)
        await cancel_promise_messages(conn, self.ctx, event, settled, rule)

    def _today(self, facts: AccountFacts | None, now: datetime) -> date:
        return now.astimezone(ZoneInfo(facts.time_zone if facts else self.ctx.default_time_zone)).date()


def paid_since(facts: AccountFacts | None, made_at: datetime) -> tuple[Decimal, bool]:
    """Payments learnt after a visit count towards its promise (the topics are not ordered):
    (amount paid since, whether the overdue amount was cleared)."""
    payments = [e for e in (facts.ledger if facts else ()) if e.kind == "payment" and e.recorded_at > made_at]
    paid = sum((e.amount or Decimal(0) for e in payments), Decimal(0))
    return paid, any(e.detail == "cleared" for e in payments)


def outcome_ledger(event: Envelope, recorded: p.VisitOutcomeRecorded) -> list[LedgerEntry]:
    """What a visit outcome tells the ledger: the visit itself, and a promise or payment made there."""
    outcome, at, now = recorded.outcome, recorded.recorded_at, now_utc()
    entries = [
        LedgerEntry(event.id, "visit", at, now, connected=outcome.kind in MET_CUSTOMER, detail=outcome.kind)
    ]
    if isinstance(outcome, p.PromiseToPay):
        entries.append(LedgerEntry(event.id, "promise", at, now, amount=outcome.amount))
    elif isinstance(outcome, p.PaidOnSite | p.PartialPayment):
        entries.append(LedgerEntry(event.id, "payment", at, now, amount=outcome.amount, detail=outcome.kind))
    return entries


OutcomeHandler = Callable[
    [asyncpg.Connection, Envelope, p.VisitOutcomeRecorded, AccountFacts | None], Awaitable[None]
]


async def cancel_promise_messages(
    conn: asyncpg.Connection, ctx: Followup, cause: Envelope, promise_ids: list[uuid.UUID], rule: str
) -> None:
    """A promise kept, broken, replaced or put on hold takes its pending confirmation and reminder."""
    if not promise_ids:
        return
    refusal = Refusal.by_rules(ctx.rules, rule)
    for job in await repository.cancel_promise_sms(conn, promise_ids, refusal.rule):
        await audit(conn, cause, job["account_id"], "sms", job["action"], refusal)
