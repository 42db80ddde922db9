"""Call tasks for the dialer: pull the due ones (leased to an agent), post results.

A task is checked when it is pulled, not only when it was planned: the ledger (a payment
or a conversation since makes it pointless), the send-by time, our contact hours and the
compliance policy for this agent. A refusal for the contact defers or drops it (audited);
a refusal for the agent (not hardship-trained, certificate lapsed) leaves it for another.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.followup import repository
from services.followup.contacts import SOURCE, Followup, Refusal, cancel_pointless, now_utc, suppressed
from services.followup.gate import ContactKind, is_agent_refusal
from services.followup.ledger import HISTORY_DAYS, contact_history, pointless_because
from services.followup.models import (
    AccountFacts,
    AgentProfile,
    CallClaimIn,
    CallResultIn,
    CallTaskView,
    ClaimedCall,
    LedgerEntry,
    Trigger,
)
from shared.compliance import Agent, Channel, ContactHistory, ContactRecord
from shared.errors import Conflict, NotFound
from shared.events import payloads as p
from shared.outbox import enqueue

NO_PHONE_RETRY = timedelta(hours=1)


async def claim_calls(
    conn: asyncpg.Connection, ctx: Followup, body: CallClaimIn, lease_s: float
) -> list[ClaimedCall]:
    """Lease up to `max_tasks` due calls that this agent may make now."""
    tasks = await repository.claim_due_calls(conn, body.max_tasks, body.agent.hardship_trained)
    if not tasks:
        return []
    now = now_utc()
    since = min(min(t["created_at"] for t in tasks), now - timedelta(days=HISTORY_DAYS))
    facts = await repository.load_facts(conn, sorted({t["account_id"] for t in tasks}), since)
    agent = _agent(body.agent)
    histories: dict[str, ContactHistory] = {}
    claimed = []
    for task in tasks:
        account_facts = facts.get(task["account_id"])
        if account_facts is None or not account_facts.phone:
            await repository.defer_call(conn, task["task_id"], now + NO_PHONE_RETRY)
            continue
        if await _may_call_now(conn, ctx, task, account_facts, agent, histories, now):
            lease_until = await repository.lease_call(conn, task["task_id"], body.agent.agent_id, lease_s)
            claimed.append(_claimed(task, account_facts, lease_until))
    return claimed


async def _may_call_now(
    conn: asyncpg.Connection,
    ctx: Followup,
    task: asyncpg.Record,
    facts: AccountFacts,
    agent: Agent,
    histories: dict[str, ContactHistory],
    now: datetime,
) -> bool:
    latest = task["not_after"] or now + timedelta(days=7)
    exclude = (task["trigger_event_id"], task["basis_event_id"])
    fact = pointless_because(ctx.rules, task["action"], facts.ledger, task["created_at"], exclude)
    if fact is not None or now >= latest:
        why = "stale" if fact is None else f"pointless.{fact}"
        await _close(conn, task, "cancelled" if fact else "suppressed", Refusal.by_rules(ctx.rules, why))
        return False
    kind = ContactKind("call", task["action"], task["purpose"])
    proposed = ctx.gate.first_preferred(kind, now, facts.time_zone)
    if proposed > now:
        await repository.defer_call(conn, task["task_id"], proposed)
        return False
    history = histories.get(task["account_id"]) or contact_history(facts.ledger, facts.time_zone)
    decision = ctx.gate.decide(facts, kind, now, agent, history)
    if decision.allowed:
        histories[task["account_id"]] = history.with_contact(
            ContactRecord(Channel.CALL, now, number_id=facts.number_id)
        )
        return True
    if is_agent_refusal(decision):
        return False  # another agent may make this call: the lock is released at commit
    slot = ctx.gate.next_slot(facts, kind, now, latest, agent, history)
    if slot is None:
        await _close(conn, task, "suppressed", Refusal.of(decision, None))
    else:
        await repository.defer_call(conn, task["task_id"], slot)
        await _audit(conn, task, Refusal.of(decision, slot))
    return False


async def record_result(
    conn: asyncpg.Connection, ctx: Followup, task_id: uuid.UUID, body: CallResultIn
) -> CallTaskView:
    """call.completed once per task: a replay of the same result is answered, another refused."""
    task = await repository.call_task_for_update(conn, task_id)
    if task is None:
        raise NotFound("no such call task", "task_id")
    if task["status"] == "completed":
        if task["result"] != body.result:
            raise Conflict("the task already has another result", "result")
        return await _view(conn, task_id)
    if task["status"] != "claimed":
        raise Conflict(f"the task is {task['status']}, not claimed by a dialer", "task_id")
    completed_at = body.completed_at or now_utc()
    await repository.complete_call(conn, task_id, body.result, completed_at)
    await _ledger(conn, task, body, completed_at)
    completed = p.CallCompleted(
        account_id=task["account_id"], task_id=task_id, completed_at=completed_at, result=body.result
    )
    event = Trigger.of_row(task).caused(completed, SOURCE)
    await enqueue(conn, event)
    if body.result == "connected":
        await cancel_pointless(conn, ctx, event, task["account_id"], frozenset({"call_connected"}))
    return await _view(conn, task_id)


async def _ledger(conn: asyncpg.Connection, task: asyncpg.Record, body: CallResultIn, at: datetime) -> None:
    since = at - timedelta(days=1)
    facts = (await repository.load_facts(conn, [task["account_id"]], since)).get(task["account_id"])
    entry = LedgerEntry(
        task["task_id"],
        "call",
        at,
        at,
        connected=body.result == "connected",
        number_id=facts.number_id if facts else None,
        detail=body.result,
    )
    await repository.add_to_ledger(conn, task["account_id"], [entry])
    if body.stop_calling:
        await repository.opt_out_calls(conn, task["account_id"])


async def list_calls(
    conn: asyncpg.Connection, account_id: str | None, status: str | None
) -> list[CallTaskView]:
    return [CallTaskView(**row) for row in await repository.list_call_tasks(conn, account_id, status)]


async def _view(conn: asyncpg.Connection, task_id: uuid.UUID) -> CallTaskView:
    return CallTaskView(**await repository.call_task_view(conn, task_id))


async def _close(conn: asyncpg.Connection, task: asyncpg.Record, status: str, refusal: Refusal) -> None:
    await repository.close_call(conn, task["task_id"], status, refusal.rule)
    await _audit(conn, task, refusal)


async def _audit(conn: asyncpg.Connection, task: asyncpg.Record, refusal: Refusal) -> None:
    event = suppressed(task["account_id"], "call", task["action"], refusal)
    await enqueue(conn, Trigger.of_row(task).caused(event, SOURCE))


def _agent(profile: AgentProfile) -> Agent:
    return Agent(
        hardship_trained=profile.hardship_trained,
        certification_valid_until=profile.certified_until,
        languages=frozenset(profile.languages),
    )


def _claimed(task: Any, facts: AccountFacts, lease_until: datetime) -> ClaimedCall:
    assert facts.phone is not None
    return ClaimedCall(
        task_id=task["task_id"],
        account_id=task["account_id"],
        reason=task["reason"],
        purpose=task["purpose"],
        language=facts.language,
        phone=facts.phone,
        due_at=task["due_at"],
        lease_until=lease_until,
    )
