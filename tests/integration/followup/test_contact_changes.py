"""Core banking's new contact data (delinquency.updated with `contact`): the next SMS goes to
the new number, in the new language; an update without it leaves the contact as it was."""

from datetime import date
from decimal import Decimal

import pytest

from shared.events import Envelope
from shared.events import payloads as p
from tests.conftest import eventually
from tests.integration.followup.conftest import new_account, outcome, promise, zone_at_local_hour

pytestmark = pytest.mark.integration


def updated(account_id: str, contact: p.ContactDetails | None, address: p.Address | None = None) -> Envelope:
    data = p.DelinquencyUpdated(
        account_id=account_id,
        as_of=date.today(),
        outstanding=Decimal("6000.00"),
        overdue_amount=Decimal("900.00"),
        dpd=41,
        dpd_bucket="31-60",
        contact=contact,
        address=address,
    )
    return Envelope(data=data, source="/tests/intake")


async def contact_row(followup, account_id):
    [row] = await followup.fetch(
        "SELECT phone, language, time_zone, country, dpd FROM contacts WHERE account_id = $1", account_id
    )
    return row


async def test_the_next_sms_goes_to_the_new_phone_in_the_new_language(followup) -> None:
    account, old_phone = new_account()
    _, new_phone = new_account()
    zone = zone_at_local_hour(13)
    await followup.open_account(account, old_phone, zone)
    new = p.ContactDetails(name="Test Customer", phone=new_phone, language="en", time_zone=zone)
    await followup.publish(updated(account, new))

    async def changed():
        row = await contact_row(followup, account)
        return row if row["phone"] == new_phone else None

    row = await eventually(changed)
    assert (row["language"], row["time_zone"], row["dpd"]) == ("en", zone, 41)

    await followup.publish(outcome(account, promise("300.00", days=6)))
    [message] = await eventually(lambda: followup.sandbox_messages(new_phone))
    assert message["language"] == "en" and "300.00" in message["text"]
    assert await followup.sandbox_messages(old_phone) == []


async def test_an_update_without_contact_data_keeps_the_contact(followup) -> None:
    account, phone = new_account()
    zone = zone_at_local_hour(13)
    await followup.open_account(account, phone, zone)
    await followup.publish(updated(account, None))

    async def applied():
        row = await contact_row(followup, account)
        return row if row["dpd"] == 41 else None

    row = await eventually(applied)
    assert (row["phone"], row["language"], row["time_zone"], row["country"]) == (phone, "zh-CN", zone, "CN")
