"""Every lifecycle transition through the real database and broker, by JSON batch and by file.

The same account history goes in once as JSON batches (diffed by lifecycle.py) and once as
daily files (diffed in SQL); both must publish the same events with the same payloads.
"""

import uuid

import pytest

from services.intake.csv_format import row_to_document
from shared.events import payloads as p
from tests.integration.intake.conftest import Intake, types
from tests.unit.intake.files import COLUMNS, csv_bytes, row

pytestmark = pytest.mark.integration

# (what happens, the columns that change that day, the events it publishes)
HISTORY = [
    (
        "newly overdue",
        {"as_of": "2026-11-01", "days_past_due": "10", "overdue_amount": "1000.00"},
        ["delinquency.opened"],
    ),
    ("a day older, same bucket", {"as_of": "2026-11-02", "days_past_due": "11"}, []),
    ("into the next bucket", {"as_of": "2026-11-25", "days_past_due": "34"}, ["delinquency.updated"]),
    (
        "amounts up",
        {"as_of": "2026-11-26", "outstanding": "8600.00", "overdue_amount": "1600.00"},
        ["delinquency.updated"],
    ),
    (
        "part paid: overdue down",
        {"as_of": "2026-11-27", "outstanding": "8000.00", "overdue_amount": "1000.00"},
        ["payment.received", "delinquency.updated"],
    ),
    (
        "a newer payment, same amounts",
        {"as_of": "2026-11-28", "last_payment_date": "2026-11-28", "last_payment_amount": "50.00"},
        ["payment.received"],
    ),
    ("disputed", {"as_of": "2026-11-29", "flags_dispute": "1"}, ["customer.flags_changed"]),
    (
        "a new phone and language",
        {"as_of": "2026-11-29", "customer_phone": "+8613900000001", "customer_language": "en"},
        ["delinquency.updated"],
    ),
    (
        "moved house",
        {"as_of": "2026-11-29", "address_line1": "2 New Rd", "address_lat": "22.6", "address_lon": "114.1"},
        ["delinquency.updated"],
    ),
    ("an older snapshot, late", {"as_of": "2026-11-15", "overdue_amount": "0.00", "days_past_due": "0"}, []),
    (
        "paid up: current",
        {
            "as_of": "2026-11-30",
            "outstanding": "7000.00",
            "overdue_amount": "0.00",
            "days_past_due": "0",
            "last_payment_date": "2026-11-30",
            "last_payment_amount": "1000.00",
        },
        ["payment.received", "delinquency.cured"],
    ),
    (
        "overdue again",
        {"as_of": "2026-12-31", "overdue_amount": "700.00", "days_past_due": "3"},
        ["delinquency.opened"],
    ),
    ("closed", {"as_of": "2027-01-05", "status": "closed"}, ["delinquency.cured"]),
]


def days(account_id: str) -> list[dict[str, str]]:
    """The account as core banking sees it each day (changes accumulate, out-of-order excepted)."""
    current = row(account_id, outstanding="8000.00", as_of="2026-10-01")
    snapshots = []
    for _, changes, _ in HISTORY:
        snapshot = {**current, **changes}
        snapshots.append(snapshot)
        if changes["as_of"] >= current["as_of"]:
            current = snapshot
    return snapshots


async def by_batches(intake: Intake, account_id: str) -> list[int]:
    published = []
    for n, snapshot in enumerate(days(account_id)):
        doc = row_to_document([snapshot[c] for c in COLUMNS])
        response = await intake.batch([doc], f"lifecycle-{account_id}-{n}")
        assert response.status_code == 200, response.text
        published.append(response.json()["events_published"])
    return published


async def by_files(intake: Intake, account_id: str) -> list[int]:
    published = []
    for snapshot in days(account_id):
        response = await intake.upload(csv_bytes([snapshot]))
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "completed"
        published.append(response.json()["events_published"])
    return published


@pytest.fixture(scope="module")
def run_id() -> str:
    return uuid.uuid4().hex[:8].upper()


@pytest.mark.parametrize("path", ["batch", "file"])
async def test_each_day_publishes_what_changed(intake: Intake, run_id: str, path: str) -> None:
    account_id = f"LC{run_id}-{path}"
    published = await (by_batches if path == "batch" else by_files)(intake, account_id)
    assert published == [len(expected) for _, _, expected in HISTORY]
    events = await intake.events(account_id)
    assert types(events) == [t for _, _, expected in HISTORY for t in expected]
    assert all(e.source == "/fieldcollect/intake" and e.subject == account_id for e in events)

    opened = events[0].data
    assert isinstance(opened, p.DelinquencyOpened)
    assert opened.dpd_bucket == "1-30" and opened.contact.phone == "+8613800000000"
    assert opened.address.location is not None and opened.address.location.lat == 22.54
    assert opened.segmentation_version and sum(f.points for f in opened.priority_factors) == pytest.approx(
        opened.priority_score, abs=1e-9
    )
    assert {f.factor for f in opened.priority_factors} >= {"dpd_bucket", "overdue_amount"}
    payment = next(e.data for e in events if isinstance(e.data, p.PaymentReceived) and e.data.paid_on)
    assert payment.amount == 50
    flags = next(e.data for e in events if isinstance(e.data, p.CustomerFlagsChanged))
    assert flags.changed == ["dispute"] and flags.flags.dispute
    updates = [e.data for e in events if isinstance(e.data, p.DelinquencyUpdated)]
    assert all(u.contact is None and u.address is None for u in updates[:3]), "amounts only"
    new_phone, moved = updates[3:]
    assert new_phone.contact.phone == "+8613900000001" and new_phone.contact.language == "en"
    assert new_phone.address is None and moved.contact is None
    assert moved.address.line1 == "2 New Rd" and moved.address.location.lat == 22.6
    cured = [e.data for e in events if isinstance(e.data, p.DelinquencyCured)]
    assert [c.reason for c in cured] == ["current", "closed"]

    async with intake.pool.acquire() as conn:
        ignored = await conn.fetch(
            "SELECT snapshot_as_of::text, known_as_of::text, reason, source FROM ignored_snapshots"
            " WHERE account_id = $1",
            account_id,
        )
    assert [(r[0], r[1], r[2]) for r in ignored] == [
        ("2026-11-15", "2026-11-29", "older than the last known snapshot")
    ]
    assert ignored[0]["source"].startswith("batch:" if path == "batch" else "import:")


async def test_the_file_path_publishes_what_the_batch_path_publishes(intake: Intake, run_id: str) -> None:
    """Same history, same payloads: lifecycle.py and its SQL twin agree on every field."""
    batch_id, file_id = f"LP{run_id}-batch", f"LP{run_id}-file"
    await by_batches(intake, batch_id)
    await by_files(intake, file_id)
    from_batches, from_files = await intake.events(batch_id), await intake.events(file_id)
    assert types(from_batches) == types(from_files)

    def comparable(event, account_id):
        data = event.data.model_dump()
        assert data.pop("account_id") == account_id
        if "customer_id" in data:
            assert data.pop("customer_id") == f"C-{account_id}"
        if data.get("contact"):
            assert data["contact"].pop("name") == f"Customer {account_id}"
        return data

    for a, b in zip(from_batches, from_files, strict=True):
        assert comparable(a, batch_id) == comparable(b, file_id), a.type
        assert {k for k, _ in b.headers()} >= {k for k, _ in a.headers()}


async def test_batches_and_files_continue_each_other(intake: Intake, run_id: str) -> None:
    """One stored state whichever door a snapshot came through: no spurious changes across them."""
    account_id = f"LX{run_id}"
    day1 = row(account_id, as_of="2026-11-01", days_past_due="10", flags_vulnerable="1")
    day2 = {**day1, "as_of": "2026-11-02", "days_past_due": "11"}
    day3 = {**day2, "as_of": "2026-11-03", "days_past_due": "12"}
    response = await intake.batch([row_to_document([day1[c] for c in COLUMNS])], f"mix-{account_id}")
    assert response.json()["events_published"] == 1
    by_file = (await intake.upload(csv_bytes([day2]))).json()
    assert (by_file["events_published"], by_file["rows_unchanged"]) == (0, 1)
    again = await intake.batch([row_to_document([day3[c] for c in COLUMNS])], f"mix2-{account_id}")
    assert (again.json()["events_published"], again.json()["unchanged"]) == (0, 1)
    assert types(await intake.events(account_id)) == ["delinquency.opened"]
