"""Cash taken at the door: the customer gets the one-time code by SMS, once, on their own number;
the code is never logged and does not outlive the job in follow-up's database."""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.events import Envelope
from shared.events import payloads as p
from tests.conftest import eventually
from tests.integration.followup.conftest import new_account, zone_at_local_hour

pytestmark = pytest.mark.integration
OUR_LOGGERS = ("services", "shared", "fieldcollect", "uvicorn")


def cash_requested(account_id: str, code: str, receipt: str = "R-0001") -> Envelope:
    data = p.CashConfirmationRequested(
        account_id=account_id,
        visit_id=uuid.uuid4(),
        agent_id="AG-T",
        confirmation_id=uuid.uuid4(),
        code=code,
        amount=Decimal("450.00"),
        currency="CNY",
        receipt_number=receipt,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
    )
    return Envelope(data=data, source="/tests/visits")


async def code_jobs(followup, account_id):
    return await followup.fetch(
        "SELECT status, params, purpose, recipient FROM sms_jobs"
        " WHERE account_id = $1 AND action = 'sms.cash_confirmation' ORDER BY created_at",
        account_id,
    )


async def test_the_code_reaches_the_customer_once_and_is_not_kept_or_logged(followup, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    first = cash_requested(account, "482913", receipt="R-7731")
    await followup.publish(first)

    [message] = await eventually(lambda: followup.sandbox_messages(phone))
    assert message["template_id"] == "cash_confirmation"
    assert all(s in message["text"] for s in ("482913", "450.00", "CNY", "R-7731"))

    async def closed():
        jobs = await code_jobs(followup, account)
        return jobs if jobs and jobs[0]["status"] == "sent" else None

    [job] = await eventually(closed)
    assert (job["params"], job["purpose"], job["recipient"]) == ({}, "collection", "debtor")

    # Redelivered, then a second request (a new code) behind it on the same partition: once the
    # second is texted, the redelivery has been applied — and made no second SMS.
    await followup.publish(first, cash_requested(account, "105377", receipt="R-7732"))
    messages = await eventually(lambda: _at_least(2, followup.sandbox_messages(phone)), timeout_s=30)
    assert sorted("482913" in m["text"] for m in messages) == [False, True]
    assert len(await code_jobs(followup, account)) == 2

    # Our own logs, at any level (a client library's wire dump at DEBUG is not ours to judge).
    ours = [r for r in caplog.records if r.name.startswith(OUR_LOGGERS)]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert ours and "482913" not in logged and "105377" not in logged, [r.name for r in ours]


async def test_at_night_the_pack_refuses_the_code_and_it_is_dropped_unsent(followup) -> None:
    """No pack has a transactional exemption from quiet hours: the code cannot wait until
    morning (it expires in 10 minutes), so it is dropped, audited, and its params cleared."""
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(2))
    await followup.publish(cash_requested(account, "730041"))

    events = await followup.followup_events(
        account, lambda es: any(e.type == "contact.suppressed" for e in es)
    )
    refused = next(e.data for e in events if e.type == "contact.suppressed")
    assert (refused.action, refused.rule, refused.disposition) == (
        "sms.cash_confirmation",
        "cn.quiet_hours",
        "dropped",
    )
    [job] = await code_jobs(followup, account)
    assert job["status"] == "suppressed" and job["params"] == {}
    assert await followup.sandbox_messages(phone) == []


async def _at_least(n: int, messages):
    found = await messages
    return found if len(found) >= n else None
