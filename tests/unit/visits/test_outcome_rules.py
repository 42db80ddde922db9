"""Outcome rules per type that the schema cannot say, and the policy questions at the door."""

from datetime import UTC, date, datetime, timedelta

import pytest

from services.visits.handlers import InvalidFields, validate_outcome
from services.visits.models import OutcomeIn
from services.visits.policy import VisitFacts, VisitPolicy
from shared.compliance import PackCatalog
from shared.errors import Invalid

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, a Friday
VISIT = {"time_zone": "Asia/Shanghai", "briefing": {"currency": "CNY"}}


def outcome(**fields) -> OutcomeIn:
    body = {"outcome_id": "6c1f7f8e-1d1e-4c8e-9a51-0f1f9d6b2a10", "recorded_at": NOW.isoformat(), **fields}
    return OutcomeIn.model_validate(body)


def problems(body: OutcomeIn, visit=VISIT) -> list[tuple[str, str]]:
    try:
        validate_outcome(body, visit, 90, NOW)
    except InvalidFields as exc:
        return exc.problems
    return []


def test_a_valid_promise_passes() -> None:
    assert (
        problems(outcome(outcome={"kind": "promise_to_pay", "amount": "10", "promised_date": "2026-12-01"}))
        == []
    )


def test_every_broken_rule_is_reported_at_once() -> None:
    body = outcome(
        outcome={"kind": "paid_on_site", "amount": "0", "receipt_number": "R-1"},
    )
    assert problems(body, {**VISIT, "briefing": {}}) == [
        ("outcome.amount", "paid_on_site needs an amount above zero"),
        ("cash_confirmation", "cash taken on site needs the customer's confirmation (OTP or signature)"),
        ("outcome", "the visit's currency is unknown: cash cannot be recorded against it"),
    ]


@pytest.mark.parametrize(
    ("confirmation", "expected"),
    [
        ({"method": "otp", "reference": "6c1f7f8e-1d1e-4c8e-9a51-0f1f9d6b2a11", "code": "041203"}, []),
        ({"method": "signature", "reference": "sig-1"}, []),
        (
            {"method": "otp", "reference": "otp-1"},
            [
                ("cash_confirmation.code", "an otp confirmation needs the code the customer read back"),
                (
                    "cash_confirmation.reference",
                    "an otp confirmation names the confirmation_id of its code",
                ),
            ],
        ),
        (
            {"method": "signature", "reference": "sig-1", "code": "041203"},
            [("cash_confirmation.code", "only an otp confirmation carries a code")],
        ),
    ],
)
def test_an_otp_confirmation_carries_its_id_and_code(confirmation, expected) -> None:
    body = outcome(
        outcome={"kind": "paid_on_site", "amount": "10", "receipt_number": "R-1"},
        cash_confirmation=confirmation,
    )
    assert problems(body) == expected


def test_a_promise_is_dated_in_the_customers_calendar() -> None:
    # 23:30 UTC on the 26th is already the 27th in Shanghai: a promise for the 27th is fine.
    late = outcome(
        recorded_at=datetime(2026, 11, 26, 23, 30, tzinfo=UTC).isoformat(),
        outcome={"kind": "promise_to_pay", "amount": "10", "promised_date": "2026-11-27"},
    )
    assert problems(late) == []
    before = outcome(outcome={"kind": "promise_to_pay", "amount": "10", "promised_date": "2026-11-26"})
    assert problems(before) == [("outcome.promised_date", "a promise cannot be dated before the visit")]


@pytest.mark.parametrize("recorded_at", [NOW + timedelta(days=2), datetime(1970, 1, 1, tzinfo=UTC)])
def test_recorded_at_no_clock_can_have_is_refused(recorded_at) -> None:
    body = outcome(recorded_at=recorded_at.isoformat(), outcome={"kind": "refused"})
    with pytest.raises(Invalid) as refused:
        validate_outcome(body, VISIT, 90, NOW)
    assert refused.value.field == "recorded_at"


def test_an_outcome_delivered_months_late_is_still_accepted() -> None:
    body = outcome(recorded_at=(NOW - timedelta(days=200)).isoformat(), outcome={"kind": "customer_absent"})
    assert problems(body) == []


def test_dates_must_be_iso_text_not_timestamps() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        OutcomeIn.model_validate(
            {
                "outcome_id": "6c1f7f8e-1d1e-4c8e-9a51-0f1f9d6b2a10",
                "recorded_at": 1764000000,
                "outcome": {"kind": "refused"},
            }
        )


FACTS = VisitFacts(country="CN", time_zone="Asia/Shanghai", language="zh-CN", dpd=40)


@pytest.mark.parametrize(
    ("local", "allowed", "rule"),
    [
        (datetime(2026, 11, 27, 9, 0), True, "cn.allowed"),
        (datetime(2026, 11, 27, 7, 59), False, "cn.quiet_hours"),
        (datetime(2026, 11, 27, 22, 0), False, "cn.quiet_hours"),
        (datetime(2026, 10, 1, 11, 0), False, "cn.public_holiday"),
    ],
)
def test_the_door_asks_the_policy_about_the_customers_local_time(local, allowed, rule) -> None:
    from zoneinfo import ZoneInfo

    decision = VisitPolicy(PackCatalog()).may_visit_at(FACTS, local.replace(tzinfo=ZoneInfo("Asia/Shanghai")))
    assert (decision.allowed, decision.rule_id) == (allowed, rule)


def test_the_recording_is_required_where_the_pack_says() -> None:
    policy = VisitPolicy(PackCatalog())
    assert not policy.outcome_record_check(FACTS, None).allowed
    assert policy.outcome_record_check(FACTS, "rec-1").allowed
    us = VisitFacts(country="US", time_zone="America/New_York", language="en", dpd=40)
    assert policy.outcome_record_check(us, None).allowed
    assert date(2026, 11, 27)  # the facts carry no personal data: country, zone, language, dpd only
