"""Follow-up end to end in one process (one consumer-group join for the module): promises to pay
(confirmation, reminder, receipts, kept and broken promises, the dialer), the other outcomes
(absent, hardship, disputes) and the one contact ledger (no call after a payment, an SMS
opt-out honoured, quiet hours deferred and audited)."""

import asyncio
import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.followup.webhooks import SIGNATURE_HEADER, sign
from shared.events import payloads as p
from tests.conftest import eventually
from tests.integration.followup.conftest import (
    SANDBOX_KEY,
    new_account,
    outcome,
    payment,
    promise,
    zone_at_local_hour,
)

pytestmark = pytest.mark.integration
ABSENT = p.CustomerAbsent()


def types(events) -> list[str]:
    return [e.type for e in events]


def trace_id(event) -> str:
    return event.traceparent.split("-")[1]


def continues(event, cause) -> bool:
    """`event` was caused by `cause` (published later): its trace, its correlation, a span of its own."""
    return (
        trace_id(event) == trace_id(cause)
        and event.traceparent != cause.traceparent
        and event.causation_id == str(cause.id)
        and event.correlation_id == (cause.correlation_id or str(cause.id))
    )


async def test_an_absent_customer_gets_a_call_that_a_payment_makes_pointless(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, ABSENT))
    events = await followup.followup_events(account, lambda es: "call.scheduled" in types(es))
    scheduled = next(e.data for e in events if e.type == "call.scheduled")
    assert scheduled.reason == "customer_absent"

    await followup.publish(payment(account, "50.00", overdue_after="850.00"))
    events = await followup.followup_events(account, lambda es: "contact.suppressed" in types(es))
    suppressed = next(e.data for e in events if e.type == "contact.suppressed")
    assert (suppressed.channel, suppressed.action, suppressed.rule, suppressed.disposition) == (
        "call",
        "call.customer_absent",
        "followup.pointless.payment",
        "dropped",
    )
    [task] = await followup.fetch("SELECT status FROM call_tasks WHERE account_id = $1", account)
    assert task["status"] == "cancelled"


async def test_repeated_absence_asks_for_a_revisit_instead(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, ABSENT), outcome(account, ABSENT))
    events = await followup.followup_events(account, lambda es: "revisit.requested" in types(es))
    revisit = next(e.data for e in events if e.type == "revisit.requested")
    assert revisit.reason == "customer_absent x2" and revisit.not_before is not None
    assert types(events).count("call.scheduled") == 1


async def test_hardship_with_consent_refers_and_holds_until_the_care_team_closes(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13), dpd=40)
    await followup.publish(outcome(account, promise(days=6)))
    await eventually(lambda: followup.sandbox_messages(phone))  # the confirmation

    hardship = p.HardshipReported(category="job_loss", referral_consent=True)
    hardship_event = outcome(account, hardship)
    await followup.publish(hardship_event)
    events = await followup.followup_events(account, lambda es: "care.referred" in types(es))
    referred = next(e.data for e in events if e.type == "care.referred")
    assert referred.program == "deferral" and referred.rule.startswith(
        "followup.hardship.temporary_shock_deferral@"
    )
    hold = next(e for e in events if e.type == "customer.flags_changed")
    assert hold.data.flags.care_hold is True and hold.data.changed == ["care_hold"]
    suppressed = [(e.data.action, e.data.rule) for e in events if e.type == "contact.suppressed"]
    assert ("sms.promise_reminder", "followup.care_hold") in suppressed

    async def care_sms():
        messages = await followup.sandbox_messages(phone)
        return [m for m in messages if m["template_id"] == "care_referral"]

    assert len(await eventually(care_sms)) == 1

    care = followup.auth("care", "carer-1")
    async with httpx.AsyncClient(base_url=followup.url) as http:
        assert (await http.get("/v1/care/referrals", headers=followup.auth("agent"))).status_code == 403
        listed = (await http.get("/v1/care/referrals", params={"status": "open"}, headers=care)).json()
        [mine] = [r for r in listed if r["account_id"] == account]
        assert mine["category"] == "job_loss"
        url = f"/v1/care/referrals/{mine['referral_id']}"
        accepted = await http.post(f"{url}/accept", headers=care)
        assert accepted.json()["status"] == "accepted" and accepted.json()["accepted_by"] == "carer-1"
        closed = await http.post(f"{url}/close", json={"resolution": "plan_agreed"}, headers=care)
        assert closed.json()["status"] == "closed"
        again = await http.post(f"{url}/close", json={"resolution": "declined"}, headers=care)
        assert again.status_code == 409

    def released(es):
        return any(e.type == "customer.flags_changed" and not e.data.flags.care_hold for e in es)

    events = await followup.followup_events(account, released)
    assert [e.data.flags.care_hold for e in events if e.type == "customer.flags_changed"] == [True, False]
    lifted = [e for e in events if e.type == "customer.flags_changed"][-1]
    assert continues(lifted, hardship_event), "the hold is lifted in the trace of the visit that set it"


async def test_hardship_without_consent_only_tells_how_to_reach_care(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, p.HardshipReported(category="illness", referral_consent=False)))
    messages = await eventually(lambda: followup.sandbox_messages(phone))
    assert [m["template_id"] for m in messages] == ["care_info"]
    assert await followup.fetch("SELECT 1 FROM care_referrals WHERE account_id = $1", account) == []


async def test_a_dispute_holds_collection_and_joins_the_dispute_queue(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, promise(days=6)))
    await eventually(lambda: followup.sandbox_messages(phone))  # the confirmation; the reminder waits

    await followup.publish(outcome(account, p.DisputeRaised()))
    events = await followup.followup_events(account, lambda es: "customer.flags_changed" in types(es))
    hold = next(e.data for e in events if e.type == "customer.flags_changed")
    assert hold.flags.dispute is True and hold.changed == ["dispute"]

    async def acknowledged():
        return [m["template_id"] for m in await followup.sandbox_messages(phone)][1:]

    assert await eventually(acknowledged) == ["dispute_ack"]
    [reminder] = await followup.fetch(
        "SELECT status, closed_reason FROM sms_jobs WHERE account_id = $1 AND action = 'sms.promise_reminder'",
        account,
    )
    assert (reminder["status"], reminder["closed_reason"]) == ("cancelled", "followup.dispute")

    team = followup.auth("supervisor", "disputes-1")
    async with httpx.AsyncClient(base_url=followup.url) as http:
        listed = (await http.get("/v1/disputes", params={"status": "open"}, headers=team)).json()
        [mine] = [d for d in listed if d["account_id"] == account]
        resolved = await http.post(
            f"/v1/disputes/{mine['dispute_id']}/resolve", json={"resolution": "rejected"}, headers=team
        )
        assert resolved.json()["status"] == "resolved"

    def released(es):
        return any(e.type == "customer.flags_changed" and not e.data.flags.dispute for e in es)

    await followup.followup_events(account, released)


async def test_an_opt_out_reply_stops_sms_for_that_number(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, promise(days=6)))
    await eventually(lambda: followup.sandbox_messages(phone))

    async with httpx.AsyncClient(base_url=followup.sandbox_url) as http:
        reply = await http.post(
            "/v1/sandbox/inbound",
            json={"from": phone, "text": " 退订 "},
            headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
        )
        assert reply.json()["webhook_status"] == 200
    async with httpx.AsyncClient(base_url=followup.url) as http:
        forged = await http.post("/v1/sms/inbound", json={"message_id": "x", "from": phone, "text": "STOP"})
        assert forged.status_code == 401

    [contact] = await followup.fetch(
        "SELECT sms_opt_out, call_opt_out FROM contacts WHERE account_id = $1", account
    )
    assert contact["sms_opt_out"] and not contact["call_opt_out"]

    await followup.publish(outcome(account, p.DisputeRaised()))
    events = await followup.followup_events(account, lambda es: "contact.suppressed" in types(es))
    refused = [
        e.data for e in events if e.type == "contact.suppressed" and e.data.action == "sms.dispute_ack"
    ]
    assert [(r.rule, r.disposition) for r in refused] == [("cn.channel_opt_out", "dropped")]
    assert len(await followup.sandbox_messages(phone)) == 1


async def test_at_night_a_contact_is_deferred_to_the_morning_and_audited(followup) -> None:
    account, phone = new_account()
    zone = zone_at_local_hour(2)  # 02:00 local: inside the pack's quiet hours (22:00-08:00)
    await followup.open_account(account, phone, zone)
    await followup.publish(outcome(account, promise(days=6)))
    events = await followup.followup_events(account, lambda es: "contact.suppressed" in types(es))
    deferred = next(e.data for e in events if e.type == "contact.suppressed")
    assert (deferred.action, deferred.rule, deferred.pack, deferred.disposition) == (
        "sms.promise_confirmation",
        "cn.quiet_hours",
        "cn",
        "deferred",
    )
    assert deferred.pack_version and deferred.next_allowed_at is not None
    [job] = await followup.fetch(
        "SELECT status, due_at FROM sms_jobs WHERE account_id = $1 AND action = 'sms.promise_confirmation'",
        account,
    )
    assert job["status"] == "pending" and job["due_at"] == deferred.next_allowed_at
    local = job["due_at"].astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (8, 0), "a confirmation waits for the pack's hours only"
    assert timedelta(hours=4) < job["due_at"] - events[0].time < timedelta(hours=7)
    assert await followup.sandbox_messages(phone) == []


# --- promises to pay ---------------------------------------------------------------------


async def jobs_of(followup, account_id):
    return await followup.fetch(
        "SELECT action, status, due_at, delivery_status, closed_reason FROM sms_jobs WHERE account_id = $1"
        " ORDER BY action",
        account_id,
    )


async def test_a_promise_gets_one_confirmation_a_reminder_and_a_delivery_receipt(followup) -> None:
    account, phone = new_account()
    zone = zone_at_local_hour(13)
    made = outcome(account, promise("300.00", days=5))
    await followup.open_account(account, phone, zone)
    await followup.publish(made)

    messages = await eventually(lambda: followup.sandbox_messages(phone))
    assert [m["template_id"] for m in messages] == ["promise_confirmation"]
    assert "300.00" in messages[0]["text"]

    async def delivered():
        jobs = {j["action"]: j for j in await jobs_of(followup, account)}
        return jobs if jobs["sms.promise_confirmation"]["delivery_status"] == "delivered" else None

    jobs = await eventually(delivered)
    reminder = jobs["sms.promise_reminder"]
    assert reminder["status"] == "pending"
    local = reminder["due_at"].astimezone(ZoneInfo(zone))
    assert local.date() == made.data.outcome.promised_date - timedelta(days=1)
    assert 9 <= local.hour < 20, "the reminder is due within contact hours, the day before"

    events = await followup.followup_events(
        account, lambda es: {"sms.sent", "sms.delivery_updated"} <= {e.type for e in es}
    )
    assert sorted(e.type for e in events) == ["sms.delivery_updated", "sms.sent"]
    assert all(continues(e, made) for e in events), "the SMS and its receipt continue the outcome's trace"

    # The same event again (redelivery): the inbox and the job key both say "done already".
    await followup.publish(made)
    await asyncio.sleep(1.0)
    assert len(await followup.sandbox_messages(phone)) == 1
    assert len(await jobs_of(followup, account)) == 2


async def test_a_payment_covering_the_promise_keeps_it_and_cancels_the_reminder(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, promise("300.00", days=6)))
    await eventually(lambda: followup.sandbox_messages(phone))

    await followup.publish(payment(account, "120.00", overdue_after="780.00"))
    await followup.publish(payment(account, "180.00", overdue_after="600.00"))

    events = await followup.followup_events(account, lambda es: any(e.type == "promise.kept" for e in es))
    suppressed = [e.data for e in events if e.type == "contact.suppressed"]
    assert [(s.action, s.rule, s.disposition) for s in suppressed] == [
        ("sms.promise_reminder", "followup.pointless.promise_kept", "dropped")
    ]
    jobs = {j["action"]: j for j in await jobs_of(followup, account)}
    assert jobs["sms.promise_reminder"]["status"] == "cancelled"
    [row] = await followup.fetch("SELECT status, paid_amount FROM promises WHERE account_id = $1", account)
    assert (row["status"], str(row["paid_amount"])) == ("kept", "300.00")


async def test_a_broken_promise_gets_a_call_and_repeated_breaks_a_revisit(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    # Promised five days ago: past its date and the two grace days, so the clock breaks it.
    made = outcome(account, promise("200.00", days=-5))
    await followup.publish(made)

    def broken_and_called(es):
        return {"promise.broken", "call.scheduled"} <= {e.type for e in es}

    events = await followup.followup_events(account, broken_and_called)
    broken = next(e for e in events if e.type == "promise.broken")
    scheduled = next(e for e in events if e.type == "call.scheduled")
    assert broken.data.broken_count == 1
    assert scheduled.causation_id == str(broken.id) and scheduled.data.reason == "promise_broken"
    assert continues(broken, made), "broken days later, still in the trace of the visit"

    dialer = followup.auth("dialer", "dialer-system")
    claim = {
        "max_tasks": 50,
        "agent": {"agent_id": "CC-1", "certified_until": "2030-01-01", "languages": ["zh-CN"]},
    }
    async with httpx.AsyncClient(base_url=followup.url) as http:
        claimed = (await http.post("/v1/call-tasks/claims", json=claim, headers=dialer)).json()
        mine = [c for c in claimed if c["account_id"] == account]
        assert len(mine) == 1 and mine[0]["phone"] == phone and mine[0]["reason"] == "promise_broken"
        again = (await http.post("/v1/call-tasks/claims", json=claim, headers=dialer)).json()
        assert all(c["account_id"] != account for c in again), "a leased task is not handed out twice"

        url = f"/v1/call-tasks/{mine[0]['task_id']}/result"
        first = await http.post(url, json={"result": "connected"}, headers=dialer)
        assert first.status_code == 200 and first.json()["status"] == "completed"
        assert (await http.post(url, json={"result": "connected"}, headers=dialer)).status_code == 200
        assert (await http.post(url, json={"result": "busy"}, headers=dialer)).status_code == 409
        assert (
            await http.post(url, json={"result": "busy"}, headers=followup.auth("agent"))
        ).status_code == 403

    await followup.publish(outcome(account, promise("200.00", days=-4)))
    events = await followup.followup_events(
        account, lambda es: any(e.type == "revisit.requested" for e in es)
    )
    assert [e.data.broken_count for e in events if e.type == "promise.broken"] == [1, 2]
    assert [e.type for e in events].count("call.completed") == 1
    [completed] = [e for e in events if e.type == "call.completed"]
    assert continues(completed, broken), "the call's result continues the trace of what asked for it"
    assert [e.type for e in events].count("call.scheduled") == 1, (
        "the second break asks for a revisit instead"
    )


# --- the gateway's delivery-receipt webhook -------------------------------------------------


async def test_delivery_receipts_apply_once_per_status_and_only_to_messages_sent(followup) -> None:
    account, phone = new_account()
    made = outcome(account, promise("300.00", days=6))
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(made)
    await eventually(lambda: followup.sandbox_messages(phone))

    async def delivered():
        jobs = {j["action"]: j for j in await jobs_of(followup, account)}
        return jobs if jobs["sms.promise_confirmation"]["delivery_status"] == "delivered" else None

    await eventually(delivered)
    [message] = await followup.sandbox_messages(phone)
    [reminder] = await followup.fetch(
        "SELECT job_id FROM sms_jobs WHERE account_id = $1 AND action = 'sms.promise_reminder'", account
    )

    async def receipt(body: dict, signed: bool = True) -> httpx.Response:
        payload = json.dumps({"updated_at": "2026-11-29T10:00:00+00:00", **body}).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            headers[SIGNATURE_HEADER] = sign(SANDBOX_KEY, payload, int(time.time()))
        async with httpx.AsyncClient(base_url=followup.url) as http:
            return await http.post("/v1/sms/delivery-receipts", content=payload, headers=headers)

    again = await receipt({"message_id": message["message_id"], "status": "delivered"})
    assert again.status_code == 200 and again.json() == {"applied": False}, "the gateway retried"
    on_the_way = await receipt({"message_id": message["message_id"], "status": "sent"})
    assert on_the_way.json() == {"applied": False}, "'sent' is not final"
    early = await receipt(
        {"message_id": "gw-early", "status": "delivered", "idempotency_key": str(reminder["job_id"])}
    )
    assert early.status_code == 409, "a receipt ahead of our commit is retried by the gateway"
    assert (await receipt({"message_id": "gw-unknown", "status": "delivered"})).status_code == 404
    assert (
        await receipt({"message_id": message["message_id"], "status": "failed"}, signed=False)
    ).status_code == 401
    bad = await receipt({"message_id": message["message_id"], "status": "lost in the post"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "status"

    failed = await receipt({"message_id": message["message_id"], "status": "undelivered"})
    assert failed.json() == {"applied": True}, "a new final status is news"
    events = await followup.followup_events(account, lambda es: types(es).count("sms.delivery_updated") >= 2)
    updates = [e.data.status for e in events if e.type == "sms.delivery_updated"]
    assert updates == ["delivered", "failed"]


# --- third parties and the deceased --------------------------------------------------------


async def test_after_meeting_only_a_third_party_no_message_says_anything_of_the_debt(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13), dpd=75)
    await followup.publish(outcome(account, p.ThirdPartyOnly()))
    [message] = await eventually(lambda: followup.sandbox_messages(phone))
    assert message["template_id"] == "contact_request"
    for detail in ("900.00", "6000.00", "10000.00", "75", "欠", "逾期", "还款", "催收"):
        assert detail not in message["text"], detail
    [job] = await followup.fetch("SELECT recipient, params FROM sms_jobs WHERE account_id = $1", account)
    assert (job["recipient"], job["params"]) == ("third_party", {})
    events = await followup.followup_events(account, lambda es: "call.scheduled" in types(es))
    assert [e.data.reason for e in events if e.type == "call.scheduled"] == ["third_party_only"]


async def test_a_death_reported_at_the_door_stops_every_pending_contact(followup) -> None:
    account, phone = new_account()
    await followup.open_account(account, phone, zone_at_local_hour(13))
    await followup.publish(outcome(account, promise(days=6)))
    await eventually(lambda: followup.sandbox_messages(phone))
    await followup.publish(outcome(account, p.Deceased()))

    async def settled():
        [row] = await followup.fetch("SELECT status FROM promises WHERE account_id = $1", account)
        return row["status"] == "superseded"

    await eventually(settled)
    [reminder] = await followup.fetch(
        "SELECT status, closed_reason FROM sms_jobs WHERE account_id = $1 AND action = 'sms.promise_reminder'",
        account,
    )
    assert (reminder["status"], reminder["closed_reason"]) == ("cancelled", "followup.deceased_reported")
