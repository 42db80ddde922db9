"""Follow-up's reactions: remember how to reach customers, turn outcomes into contacts."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from services.followup import repository
from shared.events import Envelope
from shared.events import payloads as p

SOURCE = "/fieldcollect/followup"


async def on_delinquency_opened(conn: asyncpg.Connection, event: Envelope) -> None:
    assert isinstance(event.data, p.DelinquencyOpened)
    await repository.upsert_contact(conn, event.data.account_id, event.data.contact)


async def on_outcome_recorded(conn: asyncpg.Connection, event: Envelope) -> None:
    recorded = event.data
    assert isinstance(recorded, p.VisitOutcomeRecorded)
    if isinstance(recorded.outcome, p.PromiseToPay):
        await _promise_made(conn, event, recorded, recorded.outcome)


async def _promise_made(
    conn: asyncpg.Connection, event: Envelope, recorded: p.VisitOutcomeRecorded, promise: p.PromiseToPay
) -> None:
    await repository.insert_promise(
        conn, recorded.account_id, event.id, promise.amount, recorded.currency, promise.promised_date
    )
    await repository.create_sms_job(
        conn,
        trigger_event_id=event.id,
        action="sms.promise_confirmation",
        account_id=recorded.account_id,
        template_id="promise_confirmation",
        params={
            "amount": f"{promise.amount:.2f}",
            "currency": recorded.currency or "",
            "date": promise.promised_date.isoformat(),
        },
        due_at=datetime.now(UTC),
    )
