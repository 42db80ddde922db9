"""Property: no contact follow-up schedules violates the contact policy.

Random customers under every rule pack (cn, us, uk, ie, in, id, ph, vn), living in zones with
DST or next to the date line, with random contact histories, flags and opt-outs, at random
instants around DST changes, the date-line shifts and public holidays. Follow-up's own code
decides: the outcome handler (confirmation and reminder SMS, call tasks, revisits, holds), the
promise clock (the call after a broken promise), the SMS sender's and the dialer's check when a
contact falls due (send now, or defer to the next allowed time). Then `decide` is asked,
independently — the pack loaded by its id, the customer and the history built from the drawn
facts, not through follow-up's gate — at every time follow-up chose:

- a pending SMS or call is allowed at its due time, inside our hours (the law's only for
  acknowledgements), and before its send-by time; a reminder is due the day before the promise;
- a contact sent or handed to a dialler now is allowed now;
- a deferral by the policy (contact.suppressed `deferred`, or the sender's / dialer's deferral)
  names a time the policy allows; a deferral to our hours names the opening of our hours.

The database is a recording fake (pure unit test): what follow-up would write is captured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.followup import calls, contacts, handlers, jobs, promises, repository
from services.followup.contacts import Followup
from services.followup.gate import ContactGate
from services.followup.models import AccountFacts, LedgerEntry
from services.followup.rules import load_rules
from shared.compliance import (
    Agent,
    Channel,
    ContactHistory,
    ContactRecord,
    ContactRequest,
    Customer,
    PackCatalog,
    Purpose,
    RulePack,
    decide,
    load_pack,
)
from shared.events import Envelope, decode
from shared.events import payloads as p

RULES = load_rules()
CTX = Followup(RULES, ContactGate(PackCatalog(), RULES.contact_hours), "Asia/Shanghai")
PACK_OF = {"CN": "cn", "US": "us", "GB": "uk", "IE": "ie", "IN": "in", "ID": "id", "PH": "ph", "VN": "vn"}
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Dublin",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Tongatapu",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Jakarta",
    "Asia/Manila",
    "Asia/Ho_Chi_Minh",
]
# DST changes (US, EU, Lord Howe), Apia's jump over the date line (30 Dec 2011) and its DST
# years, Chinese New Year and National Day, Indonesian Independence Day, St Patrick's Day.
AROUND = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1), date(2026, 4, 5),
          date(2011, 12, 29), date(2012, 4, 1), date(2012, 9, 30), date(2026, 2, 17), date(2026, 10, 1),
          date(2026, 8, 17), date(2026, 3, 17), date(2026, 12, 25), date(2027, 1, 1)]  # fmt: skip
OUR_HOURS = (9 * 60, 20 * 60)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def pack(country: str) -> RulePack:
    return load_pack(PACK_OF[country])


def rarely(out_of: int = 8) -> st.SearchStrategy[bool]:
    return st.sampled_from([False] * (out_of - 1) + [True])


@dataclass(frozen=True)
class Case:
    """One customer and the moment follow-up acts, with what it knows (the drawn facts)."""

    facts: AccountFacts
    now: datetime
    contacts: tuple[tuple[str, datetime, bool, bool], ...]  # (channel, at, connected, own number)

    @property
    def customer(self) -> Customer:
        f = self.facts
        opted = frozenset(
            c for c, out in ((Channel.SMS, f.sms_opt_out), (Channel.CALL, f.call_opt_out)) if out
        )
        return Customer(
            time_zone=f.time_zone,
            dpd=f.dpd,
            vulnerable=f.flag("vulnerable"),
            care_hold=f.flag("care_hold"),
            dispute=f.flag("dispute"),
            cease_contact=f.flag("cease_contact"),
            opted_out_channels=opted,
            language=f.language,
        )

    def history(self) -> ContactHistory:
        records = [
            ContactRecord(Channel(kind), at, connected, self.facts.number_id if own else "n-other")
            for kind, at, connected, own in self.contacts
        ]
        return ContactHistory(self.facts.time_zone, records)

    def allowed(self, channel: str, at: datetime, purpose: str, agent: Agent | None = None) -> bool:
        if channel == "call" and agent is None and self.facts.flag("vulnerable"):
            agent = trained_agent(self.facts.language, at.date())
        request = ContactRequest(
            Channel(channel), at, Purpose(purpose), number_id=self.facts.number_id, agent=agent
        )
        decision = decide(pack(self.facts.country or "CN"), self.customer, request, self.history())
        return decision.allowed

    def local_minute(self, at: datetime) -> int:
        local = at.astimezone(ZoneInfo(self.facts.time_zone))
        return local.hour * 60 + local.minute


def trained_agent(language: str, day: date) -> Agent:
    return Agent(
        hardship_trained=True,
        certification_valid_until=day + timedelta(days=400),
        languages=frozenset({language}),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone = draw(st.sampled_from(ZONES))
    around = datetime.combine(draw(st.sampled_from(AROUND)), datetime.min.time(), UTC)
    now = around + timedelta(minutes=draw(st.integers(-36 * 60, 60 * 60)))
    phone = f"+86138{draw(st.integers(0, 10**8 - 1)):08d}"
    flags = {
        "vulnerable": draw(rarely(4)),
        "care_hold": draw(rarely(12)),
        "dispute": draw(rarely(12)),
        "cease_contact": draw(rarely(16)),
    }
    contacts = tuple(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["sms", "call", "call", "visit"]),
                    st.integers(5, 8 * 24 * 60).map(lambda m: now - timedelta(minutes=m)),
                    rarely(4),  # connected
                    st.sampled_from([True, True, False]),
                ),
                max_size=12,
            )
        )
    )
    facts = AccountFacts(
        account_id=f"A-{draw(st.integers(0, 10**6))}",
        time_zone=zone,
        language=draw(st.sampled_from(["zh-CN", "en"])),
        phone=phone,
        country=draw(st.sampled_from(sorted(PACK_OF))),
        product="cash_loan",
        dpd=draw(st.sampled_from([0, 5, 40, 75, 200])),
        flags=flags,
        sms_opt_out=draw(rarely(16)),
        call_opt_out=draw(rarely(16)),
    )
    ledger = tuple(
        LedgerEntry(
            uuid.uuid4(),
            kind,
            at,
            at,
            connected,
            facts.number_id if own else "n-other",
            detail="customer_absent",
        )
        for kind, at, connected, own in contacts
    )
    # Facts as follow-up holds them: the history is its ledger.
    return Case(replace(facts, ledger=ledger), now, contacts)


# --- a recording database ------------------------------------------------------------------


@dataclass
class Recorder:
    """What follow-up would have written: SMS jobs, call tasks, deferrals, and the events."""

    sms: list[repository.NewSmsJob] = field(default_factory=list)
    calls: list[repository.NewCallTask] = field(default_factory=list)
    deferrals: list[tuple[str, datetime, str | None]] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)

    # asyncpg.Connection, as far as follow-up's code uses it here
    async def execute(self, sql: str, *args: Any) -> str:
        if sql.startswith("INSERT INTO outbox"):
            _topic, _key, value, keys, values = args
            self.events.append(decode(value, list(zip(keys, values, strict=True))))
        return ""

    async def executemany(self, sql: str, args: Any) -> None:
        return None

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return []

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return None


@contextlib.contextmanager
def follow_up_at(now: datetime, facts: AccountFacts, db: Recorder, broken_count: int = 1) -> Iterator[None]:
    """Follow-up's clock at `now`, its repository writing into `db`, its facts those drawn."""

    async def load_facts(conn: Any, account_ids: Any, since: Any) -> dict[str, AccountFacts]:
        return {facts.account_id: facts}

    async def record_promise(conn: Any, promise: Any, entries: Any, sms: Any) -> Any:
        db.sms.extend(sms)
        return uuid.uuid4(), frozenset(j.action for j in sms)

    async def insert_sms(conn: Any, job: repository.NewSmsJob) -> uuid.UUID:
        db.sms.append(job)
        return uuid.uuid4()

    async def insert_call(conn: Any, task: repository.NewCallTask) -> uuid.UUID:
        db.calls.append(task)
        return uuid.uuid4()

    async def new_id(*_: Any) -> uuid.UUID:
        return uuid.uuid4()

    async def defer_sms(conn: Any, job_id: Any, due_at: datetime, rule: str) -> None:
        db.deferrals.append(("sms", due_at, rule))

    async def defer_call(conn: Any, task_id: Any, due_at: datetime) -> None:
        db.deferrals.append(("call", due_at, None))

    async def close(conn: Any, job_id: Any, status: str, reason: str) -> None:
        db.closed.append((status, reason))

    async def broken(*_: Any) -> int:
        return broken_count

    clock = mock.Mock(return_value=now)
    with contextlib.ExitStack() as stack:
        for module in (contacts, handlers, promises):
            stack.enter_context(mock.patch.object(module, "now_utc", clock))
        for name, fake in {
            "load_facts": load_facts,
            "record_promise": record_promise,
            "insert_sms_job": insert_sms,
            "insert_call_task": insert_call,
            "insert_referral": new_id,
            "insert_dispute": new_id,
            "mark_broken": broken,
            "defer_sms": defer_sms,
            "defer_call": defer_call,
            "close_sms": close,
            "close_call": close,
        }.items():
            stack.enter_context(mock.patch.object(repository, name, fake))
        yield


def visit(account_id: str, result: Any, at: datetime) -> Envelope:
    data = p.VisitOutcomeRecorded(
        account_id=account_id,
        visit_id=uuid.uuid4(),
        agent_id="AG-P",
        outcome_id=uuid.uuid4(),
        recorded_at=at,
        outcome=result,
        currency="CNY",
        recording_ref="rec-p",
    )
    return Envelope(data=data, source="/tests/visits")


PROMISE = "promise to pay, due in the drawn number of days"
OUTCOMES = st.sampled_from(
    [
        PROMISE,
        PROMISE,
        p.CustomerAbsent(),
        p.Refused(),
        p.ThirdPartyOnly(),
        p.MovedAddress(),
        p.DisputeRaised(),
        p.HardshipReported(category="job_loss", referral_consent=True),
        p.HardshipReported(category="other", referral_consent=False),
    ]
)


# --- the properties --------------------------------------------------------------------------


def check_placed(case: Case, db: Recorder) -> None:
    """Every pending contact, and every deferral the policy audited, is allowed when due."""
    for job in db.sms:
        event(f"{job.action} {job.status}")
        if job.status != "pending":
            continue
        assert case.allowed("sms", job.due_at, job.purpose), (job.action, job.due_at, case)
        assert job.not_after is None or job.due_at < job.not_after
        assert job.due_at >= case.now
        if job.action not in RULES.contact_hours.law_hours_only:
            assert OUR_HOURS[0] <= case.local_minute(job.due_at) < OUR_HOURS[1], (job.action, job.due_at)
    for task in db.calls:
        event(f"{task.action} {task.status}")
        if task.status != "pending":
            continue
        assert case.allowed("call", task.due_at, task.purpose), (task.action, task.due_at, case)
        assert task.not_after is None or task.due_at < task.not_after
        assert OUR_HOURS[0] <= case.local_minute(task.due_at) < OUR_HOURS[1]
    scheduled = [e.data.due_at for e in db.events if e.type == "call.scheduled"]
    assert scheduled == [t.due_at for t in db.calls if t.status == "pending"]
    for published in db.events:
        refused = published.data
        if published.type == "contact.suppressed" and refused.disposition == "deferred":
            event(f"deferred by {refused.rule.split('.', 1)[1]}")
            purpose = next(j.purpose for j in [*db.sms, *db.calls] if j.action == refused.action)
            assert case.allowed(refused.channel, refused.next_allowed_at, purpose), refused


@SETTINGS
@given(cases(), OUTCOMES, st.integers(-2, 20))
def test_what_an_outcome_schedules_is_allowed_when_due(case: Case, result: Any, days: int) -> None:
    if result == PROMISE:
        today = case.now.astimezone(ZoneInfo(case.facts.time_zone)).date()
        result = p.PromiseToPay(amount=Decimal("300.00"), promised_date=today + timedelta(days=days))
    db = Recorder()
    event = visit(case.facts.account_id, result, case.now)
    with follow_up_at(case.now, case.facts, db):
        asyncio.run(handlers.EventHandlers(CTX).on_outcome_recorded(db, event))  # type: ignore[arg-type]
    check_placed(case, db)
    if isinstance(result, p.ThirdPartyOnly):
        # Whoever reads what follows a visit that met only a third party gets no debt details.
        assert all(
            (j.recipient, j.template_id, j.params) == ("third_party", "contact_request", {}) for j in db.sms
        )
    for job in db.sms:
        if job.action == "sms.promise_reminder" and job.status == "pending":
            assert isinstance(result, p.PromiseToPay)
            local_day = job.due_at.astimezone(ZoneInfo(case.facts.time_zone)).date()
            assert local_day == result.promised_date - timedelta(days=RULES.promise.reminder_days_before)


@SETTINGS
@given(cases(), st.sampled_from([1, 2]))
def test_the_call_after_a_broken_promise_is_allowed_when_due(case: Case, count: int) -> None:
    db = Recorder()
    row = {
        "promise_id": uuid.uuid4(),
        "account_id": case.facts.account_id,
        "outcome_event_id": uuid.uuid4(),
        "trigger_traceparent": None,
        "trigger_correlation_id": None,
    }
    with follow_up_at(case.now, case.facts, db, broken_count=count):
        asyncio.run(promises.break_promise(db, CTX, row, case.facts))  # type: ignore[arg-type]
    check_placed(case, db)
    assert (len(db.calls) == 1) == (count < RULES.promise.on_broken.revisit_after_breaks)


def due_row(case: Case, action: str, purpose: str, latest: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": uuid.uuid4(),
        "task_id": uuid.uuid4(),
        "trigger_event_id": uuid.uuid4(),
        "basis_event_id": None,
        "trigger_traceparent": None,
        "trigger_correlation_id": None,
        "account_id": case.facts.account_id,
        "action": action,
        "purpose": purpose,
        "attempts": 0,
        "not_after": latest,
        "promise_id": None,
        "recipient": "debtor",  # or as in `extra`
        "created_at": case.now - timedelta(hours=1),
        **extra,
    }


def check_due(
    case: Case, db: Recorder, channel: str, purpose: str, sent_now: bool, agent: Agent | None
) -> None:
    event("now" if sent_now else f"deferred {len(db.deferrals)}, closed {db.closed}")
    if sent_now:
        assert case.allowed(channel, case.now, purpose, agent), case
        assert not db.deferrals and not db.closed
    for _, at, rule in db.deferrals:
        assert at > case.now
        if rule in (None, "outside contact hours") and not case.allowed(channel, at, purpose, agent):
            # Waiting for our hours: checked again then.
            assert case.local_minute(at) == OUR_HOURS[0], (at, case)
        else:
            assert case.allowed(channel, at, purpose, agent), (rule, at, case)


@SETTINGS
@given(
    cases(),
    st.sampled_from(
        [
            ("sms.promise_reminder", "promise_reminder", "collection"),
            ("sms.promise_confirmation", "promise_confirmation", "collection"),
            ("sms.dispute_ack", "dispute_ack", "dispute_response"),
            ("sms.care_referral", "care_referral", "care"),
        ]
    ),
    st.integers(1, 24 * 9),
    st.sampled_from(["debtor", "debtor", "third_party"]),
)
def test_the_sender_sends_or_defers_only_to_allowed_times(
    case: Case, sms: Any, hours: int, recipient: str
) -> None:
    action, template, purpose = sms
    params = {"amount": "300.00", "currency": "CNY", "date": "2026-12-01"}
    latest = case.now + timedelta(hours=hours)
    row = due_row(case, action, purpose, latest, template_id=template, params=params, recipient=recipient)
    db = Recorder()
    worker = jobs.SmsJobWorker(None, "followup", None, CTX)  # type: ignore[arg-type]
    with follow_up_at(case.now, case.facts, db):
        message = asyncio.run(worker._check(db, row, case.facts, {}, {}, case.now))  # type: ignore[arg-type]
    check_due(case, db, "sms", purpose, message is not None, None)
    if message is not None and recipient == "third_party":
        # Even a row that names a debtor's template: a third party's SMS says nothing of the debt.
        assert message.params == {} and "300.00" not in message.text and "2026-12-01" not in message.text


@SETTINGS
@given(
    cases(),
    st.sampled_from(["call.promise_broken", "call.customer_absent", "call.refused"]),
    st.booleans(),
    st.sampled_from([timedelta(days=300), timedelta(days=-1)]),
    st.integers(1, 24 * 5),
)
def test_the_dialer_gets_or_defers_calls_only_at_allowed_times(
    case: Case, action: str, trained: bool, valid: timedelta, hours: int
) -> None:
    agent = Agent(
        hardship_trained=trained,
        certification_valid_until=case.now.date() + valid,
        languages=frozenset({case.facts.language}),
    )
    row = due_row(case, action, "collection", case.now + timedelta(hours=hours))
    db = Recorder()
    with follow_up_at(case.now, case.facts, db):
        may = asyncio.run(calls._may_call_now(db, CTX, row, case.facts, agent, {}, case.now))  # type: ignore[arg-type]
    check_due(case, db, "call", "collection", may, agent)
