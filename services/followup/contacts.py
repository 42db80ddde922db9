"""Making contacts happen: schedule SMS and calls, request revisits, set holds, audit refusals.

Every function runs in the caller's transaction, so a contact's job row, the events it
causes and the audit of a refusal commit together. Jobs are keyed (trigger event, action):
whatever is redelivered, one trigger makes one contact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

import asyncpg

from services.followup import repository
from services.followup.gate import ContactGate, ContactKind, GateChannel, Placement, planning_agent
from services.followup.ledger import pointless_because
from services.followup.models import AccountFacts, Trigger
from services.followup.rules import Rules
from services.followup.templates import for_recipient
from shared.compliance import Decision, Recipient
from shared.events import Envelope, topics
from shared.events import payloads as p
from shared.outbox import enqueue, enqueue_raw

SOURCE = "/fieldcollect/followup"
RULES_PACK = "followup"  # the `pack` of refusals decided by follow-up's own rules
Disposition = Literal["deferred", "dropped"]


@dataclass(frozen=True, slots=True)
class Followup:
    """What the use cases need: the rules, the compliance gate, the zone used when none is known."""

    rules: Rules
    gate: ContactGate
    default_time_zone: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a contact did not happen when proposed: a compliance decision or one of our rules."""

    rule: str
    pack: str
    pack_version: str
    next_allowed_at: datetime | None

    @property
    def disposition(self) -> Disposition:
        return "dropped" if self.next_allowed_at is None else "deferred"

    @classmethod
    def of(cls, decision: Decision, next_allowed_at: datetime | None) -> Refusal:
        return cls(decision.rule_id, decision.pack_id, decision.pack_version, next_allowed_at)

    @classmethod
    def by_rules(cls, rules: Rules, rule: str) -> Refusal:
        return cls(f"followup.{rule}", RULES_PACK, rules.version, None)


@dataclass(frozen=True, slots=True)
class SmsSpec:
    action: str
    template_id: str
    purpose: str
    params: dict[str, str]
    earliest: datetime
    latest: datetime
    promise_id: uuid.UUID | None = None
    basis_event_id: uuid.UUID | None = None
    # Who may read it: a third party's message carries no debt details (templates.for_recipient).
    recipient: Recipient = Recipient.DEBTOR
    # The params hold a secret (a one-time code): never logged, cleared once the job is closed.
    secret_params: bool = False


@dataclass(frozen=True, slots=True)
class CallSpec:
    action: str
    reason: str
    purpose: str
    earliest: datetime
    latest: datetime
    basis_event_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to store for a contact: its status, when it is due, and a refusal to audit."""

    status: str
    due_at: datetime
    refusal: Refusal | None = None


def now_utc() -> datetime:
    return datetime.now(UTC)


def plan_contact(
    ctx: Followup,
    facts: AccountFacts | None,
    kind: ContactKind,
    earliest: datetime,
    latest: datetime,
    exclude: tuple[uuid.UUID, ...],
) -> Plan | None:
    """Decide a new contact: None when our hours leave no time for it before `latest`.

    Without facts (the account's delinquency.opened has not arrived yet) the contact is
    proposed in the default zone and the policy decides when it is due.
    """
    if facts is None:
        proposed = ctx.gate.first_preferred(kind, earliest, ctx.default_time_zone)
        return Plan("pending", proposed) if proposed < latest else None
    fact = pointless_because(ctx.rules, kind.action, facts.ledger, now_utc(), exclude)
    if fact is not None:
        return Plan("cancelled", earliest, Refusal.by_rules(ctx.rules, f"pointless.{fact}"))
    vulnerable_call = kind.channel == "call" and facts.flag("vulnerable")
    agent = planning_agent(facts, earliest.date()) if vulnerable_call else None
    placement = ctx.gate.place(facts, kind, earliest, latest, agent)
    return _plan_of(placement)


def _plan_of(placement: Placement) -> Plan | None:
    if placement.refusal is None:
        return None if placement.due_at is None else Plan("pending", placement.due_at)
    refusal = Refusal.of(placement.refusal, placement.due_at)
    if placement.due_at is None:
        return Plan("suppressed", now_utc(), refusal)
    return Plan("pending", placement.due_at, refusal)


def plan_sms(
    ctx: Followup, trigger: Trigger, account_id: str, facts: AccountFacts | None, spec: SmsSpec
) -> tuple[repository.NewSmsJob, Refusal | None] | None:
    """The job row for an SMS and the refusal to audit if it is written (None: no SMS at all)."""
    trigger_id = trigger.event_id
    exclude = (trigger_id, spec.basis_event_id or trigger_id)
    kind = ContactKind("sms", spec.action, spec.purpose)
    plan = plan_contact(ctx, facts, kind, spec.earliest, spec.latest, exclude)
    if plan is None:
        return None
    template_id, params = for_recipient(spec.template_id, spec.params, spec.recipient)
    job = repository.NewSmsJob(
        trigger_event_id=trigger_id,
        action=spec.action,
        account_id=account_id,
        template_id=template_id,
        params=params,
        recipient=spec.recipient.value,
        purpose=spec.purpose,
        status=plan.status,
        due_at=plan.due_at,
        not_after=spec.latest,
        promise_id=spec.promise_id,
        closed_reason=plan.refusal.rule if plan.refusal and plan.status != "pending" else None,
        basis_event_id=spec.basis_event_id,
        trigger_traceparent=trigger.traceparent,
        trigger_correlation_id=trigger.correlation_id,
        secret_params=spec.secret_params,
    )
    return job, plan.refusal


async def schedule_sms(
    conn: asyncpg.Connection,
    ctx: Followup,
    cause: Envelope,
    account_id: str,
    facts: AccountFacts | None,
    spec: SmsSpec,
) -> uuid.UUID | None:
    planned = plan_sms(ctx, Trigger.of(cause), account_id, facts, spec)
    if planned is None:
        return None
    job, refusal = planned
    job_id = await repository.insert_sms_job(conn, job)
    if job_id is not None and refusal is not None:
        await audit(conn, cause, account_id, "sms", spec.action, refusal)
    return job_id


async def schedule_call(
    conn: asyncpg.Connection,
    ctx: Followup,
    cause: Envelope,
    account_id: str,
    facts: AccountFacts | None,
    spec: CallSpec,
) -> uuid.UUID | None:
    exclude = (cause.id, spec.basis_event_id or cause.id)
    kind = ContactKind("call", spec.action, spec.purpose)
    plan = plan_contact(ctx, facts, kind, spec.earliest, spec.latest, exclude)
    if plan is None:
        return None
    task = repository.NewCallTask(
        trigger_event_id=cause.id,
        action=spec.action,
        account_id=account_id,
        reason=spec.reason,
        purpose=spec.purpose,
        status=plan.status,
        due_at=plan.due_at,
        not_after=spec.latest,
        needs_trained_agent=facts is not None and facts.flag("vulnerable"),
        closed_reason=plan.refusal.rule if plan.refusal and plan.status != "pending" else None,
        basis_event_id=spec.basis_event_id,
        trigger_traceparent=Trigger.of(cause).traceparent,
        trigger_correlation_id=Trigger.of(cause).correlation_id,
    )
    task_id = await repository.insert_call_task(conn, task)
    if task_id is None:
        return None
    if plan.refusal is not None:
        await audit(conn, cause, account_id, "call", spec.action, plan.refusal)
    if plan.status == "pending":
        scheduled = p.CallScheduled(
            account_id=account_id, task_id=task_id, due_at=plan.due_at, reason=spec.reason
        )
        await enqueue(conn, cause.caused(scheduled, SOURCE))
    return task_id


async def request_revisit(
    conn: asyncpg.Connection, cause: Envelope, account_id: str, reason: str, not_before: date
) -> None:
    event = p.RevisitRequested(account_id=account_id, reason=reason, not_before=not_before)
    await enqueue(conn, cause.caused(event, SOURCE))


def suppressed(account_id: str, channel: GateChannel, action: str, refusal: Refusal) -> p.ContactSuppressed:
    return p.ContactSuppressed(
        account_id=account_id,
        channel=channel,
        rule=refusal.rule,
        pack=refusal.pack,
        pack_version=refusal.pack_version,
        next_allowed_at=refusal.next_allowed_at,
        action=action,
        disposition=refusal.disposition,
    )


async def audit(
    conn: asyncpg.Connection,
    cause: Envelope,
    account_id: str,
    channel: GateChannel,
    action: str,
    refusal: Refusal,
) -> None:
    """contact.suppressed: a contact refused when proposed, deferred or dropped (the audit trail)."""
    await enqueue(conn, cause.caused(suppressed(account_id, channel, action, refusal), SOURCE))


async def cancel_pointless(
    conn: asyncpg.Connection,
    ctx: Followup,
    cause: Envelope,
    account_id: str,
    facts_learnt: frozenset[str],
    facts: AccountFacts | None = None,
) -> None:
    """A payment, a promise, a meeting or a conversation: cancel the pending contacts it makes pointless.

    With the account's facts at hand, only actions that are actually pending are looked for.
    """
    for fact in sorted(facts_learnt):
        actions = _made_pointless(ctx, fact, facts)
        if not actions:
            continue
        refusal = Refusal.by_rules(ctx.rules, f"pointless.{fact}")
        await cancel_pending(conn, cause, account_id, actions, refusal)


def pointless_pending(ctx: Followup, facts_learnt: frozenset[str], facts: AccountFacts) -> bool:
    """Whether these facts make any of the account's pending contacts pointless (cancel_pointless)."""
    return any(_made_pointless(ctx, fact, facts) for fact in facts_learnt)


def _made_pointless(ctx: Followup, fact: str, facts: AccountFacts | None) -> list[str]:
    return [
        action
        for action, cancels in ctx.rules.ledger.pointless.items()
        if fact in cancels and (facts is None or action in facts.pending)
    ]


async def cancel_pending(
    conn: asyncpg.Connection, cause: Envelope, account_id: str, actions: list[str] | None, refusal: Refusal
) -> None:
    """Cancel pending SMS and calls (those of `actions`, or every collection contact), audited."""
    for job in await repository.cancel_pending_sms(conn, account_id, actions, refusal.rule):
        await audit(conn, cause, account_id, "sms", job["action"], refusal)
    for task in await repository.cancel_pending_calls(conn, account_id, actions, refusal.rule):
        await audit(conn, cause, account_id, "call", task["action"], refusal)


async def publish_hold(
    conn: asyncpg.Connection,
    cause: Envelope | Trigger | None,
    account_id: str,
    facts: AccountFacts | None,
    flag: Literal["care_hold", "dispute"],
    held: bool,
    reason: str,
) -> None:
    """customer.flags_changed on follow-up's own topic: the planner obeys the holds we own.

    Only `flag` is listed as changed, so a consumer merges just that flag over the flags
    core banking reports. `cause`: the event that sets the hold, or the trigger of the
    referral (dispute) whose closing lifts it.
    """
    current = {k: v for k, v in (facts.flags if facts else {}).items() if k in p.CustomerFlags.model_fields}
    flags = p.CustomerFlags(**{**current, flag: held})
    data = p.CustomerFlagsChanged(
        account_id=account_id,
        customer_id=(facts.customer_id if facts else None) or "",
        flags=flags,
        changed=[flag],
        reason=reason,
    )
    event = cause.caused(data, SOURCE) if cause else Envelope(data=data, source=SOURCE)
    # The payload's home topic is the delinquency topic (core banking's flags); holds that
    # follow-up decides travel on follow-up's topic, which only follow-up publishes.
    await enqueue_raw(conn, topics.FOLLOWUPS, event.key, event.value(), event.headers())
