from datetime import date, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.intake.lifecycle import diff, unchanged
from services.intake.models import AccountSnapshot
from services.intake.segmentation import load_segmentation
from shared.events import payloads as p

SEG = load_segmentation()
DAY = date(2026, 11, 1)


def snap(**overrides) -> AccountSnapshot:
    row = {
        "account_id": "LN-1",
        "customer_id": "C-1",
        "product": "cash_loan",
        "currency": "CNY",
        "as_of": DAY.isoformat(),
        "principal": "10000",
        "outstanding": "8000",
        "overdue_amount": "1000",
        "days_past_due": 10,
        "address": {"line1": "1 Rd", "city": "Shenzhen", "lat": 22.5, "lon": 114.0},
    }
    row.update(overrides)
    return AccountSnapshot.model_validate(row)


def types(transition) -> list[str]:
    return [e.type for e in transition.events]


def test_newly_overdue_opens_a_case() -> None:
    t = diff(None, snap(), SEG)
    assert types(t) == ["delinquency.opened"]
    opened = t.events[0]
    assert opened.dpd_bucket == "1-30" and opened.address.location.lat == 22.5


def test_current_account_publishes_nothing() -> None:
    t = diff(None, snap(overdue_amount="0", days_past_due=0), SEG)
    assert t.events == [] and not t.state.delinquent


def test_bucket_change_is_an_update_but_a_dpd_tick_is_not() -> None:
    first = diff(None, snap(), SEG).state
    tick = diff(first, snap(as_of=(DAY + timedelta(days=1)).isoformat(), days_past_due=11), SEG)
    assert tick.events == []
    assert unchanged(first, tick)
    moved = diff(first, snap(as_of=(DAY + timedelta(days=25)).isoformat(), days_past_due=35), SEG)
    assert types(moved) == ["delinquency.updated"]
    assert moved.events[0].dpd_bucket == "31-60"


def test_amount_change_is_an_update() -> None:
    first = diff(None, snap(), SEG).state
    t = diff(first, snap(outstanding="8100", overdue_amount="1100"), SEG)
    assert types(t) == ["delinquency.updated"]


def test_overdue_down_is_a_payment() -> None:
    first = diff(None, snap(), SEG).state
    t = diff(first, snap(as_of="2026-11-02", overdue_amount="400", outstanding="7400", days_past_due=11), SEG)
    assert types(t) == ["payment.received", "delinquency.updated"]
    assert t.events[0].amount == Decimal("600.00")


def test_newer_last_payment_is_a_payment_with_its_amount() -> None:
    first = diff(None, snap(), SEG).state
    t = diff(first, snap(last_payment_date="2026-11-01", last_payment_amount="50"), SEG)
    assert types(t)[0] == "payment.received"
    assert t.events[0].amount == Decimal("50")


def test_back_to_current_cures_and_closing_cures() -> None:
    first = diff(None, snap(), SEG).state
    cured = diff(first, snap(as_of="2026-11-03", overdue_amount="0", days_past_due=0), SEG)
    assert types(cured) == ["payment.received", "delinquency.cured"]
    assert cured.events[1].reason == "current"
    closed = diff(first, snap(as_of="2026-11-03", status="closed"), SEG)
    assert types(closed)[-1] == "delinquency.cured" and closed.events[-1].reason == "closed"


def test_reopening_after_cure() -> None:
    first = diff(None, snap(), SEG).state
    cured = diff(first, snap(as_of="2026-11-03", overdue_amount="0", days_past_due=0), SEG).state
    again = diff(cured, snap(as_of="2026-12-03", days_past_due=3), SEG)
    assert types(again) == ["delinquency.opened"]


def test_flag_changes_are_published_with_what_changed() -> None:
    first = diff(None, snap(), SEG).state
    t = diff(first, snap(flags={"dispute": True, "vulnerable": True}), SEG)
    assert types(t) == ["customer.flags_changed"]
    assert t.events[0].changed == ["dispute", "vulnerable"]


def test_older_snapshot_is_ignored() -> None:
    first = diff(None, snap(as_of="2026-11-05"), SEG).state
    t = diff(first, snap(as_of="2026-11-04", overdue_amount="0", days_past_due=0), SEG)
    assert t.out_of_order and t.events == [] and t.state == first


def test_dpd_from_due_date() -> None:
    s = snap(days_past_due=None, due_date="2026-10-01")
    assert s.dpd == 31
    assert isinstance(diff(None, s, SEG).events[0], p.DelinquencyOpened)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"overdue_amount": "-1"}, "overdue_amount"),
        ({"overdue_amount": "abc"}, "overdue_amount"),
        ({"account_id": ""}, "account_id"),
        ({"account_id": "x'; DROP TABLE accounts;--"}, "account_id"),
        ({"currency": "yuan"}, "currency"),
        ({"customer": {"time_zone": "Mars/Olympus"}}, "customer.time_zone"),
        ({"customer": {"phone": "call me"}}, "customer.phone"),
        ({"address": {"line1": "x" * 500, "city": "S"}}, "address.line1"),
        ({"overdue_amount": "9000"}, ""),
    ],
)
def test_invalid_snapshots_name_the_field(override, field) -> None:
    with pytest.raises(ValidationError) as info:
        snap(**override)
    locs = [".".join(str(x) for x in e["loc"]) for e in info.value.errors()]
    assert any(loc.startswith(field) for loc in locs)


def test_priority_ranks_later_buckets_and_bigger_amounts_higher() -> None:
    assert SEG.priority(100, Decimal(1000), False) > SEG.priority(10, Decimal(1000), False)
    assert SEG.priority(10, Decimal(10000), False) > SEG.priority(10, Decimal(100), False)
    assert SEG.priority(10, Decimal(1000), True) < SEG.priority(10, Decimal(1000), False)


def test_new_contact_data_or_address_of_an_open_case_is_an_update_carrying_it() -> None:
    first = diff(None, snap(), SEG).state
    later = (DAY + timedelta(days=1)).isoformat()
    phone = diff(first, snap(as_of=later, days_past_due=11, customer={"phone": "+8613900000001"}), SEG)
    assert types(phone) == ["delinquency.updated"] and not unchanged(first, phone)
    assert phone.events[0].contact.phone == "+8613900000001" and phone.events[0].address is None
    moved = diff(
        first,
        snap(as_of=later, days_past_due=11, address={"line1": "2 Rd", "city": "Shenzhen"}),
        SEG,
    )
    assert types(moved) == ["delinquency.updated"] and moved.events[0].contact is None
    assert moved.events[0].address.line1 == "2 Rd" and moved.events[0].address.location is None


def test_new_contact_data_of_a_current_account_publishes_nothing() -> None:
    first = diff(None, snap(overdue_amount="0", days_past_due=0), SEG).state
    t = diff(first, snap(overdue_amount="0", days_past_due=0, customer={"language": "en"}), SEG)
    assert t.events == [] and not unchanged(first, t)
