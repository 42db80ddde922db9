"""The delinquency lifecycle: a snapshot diffed against the account's last known state."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from services.intake.models import AccountSnapshot
from services.intake.segmentation import Priority, Segmentation, days_between
from shared.events import payloads as p


@dataclass(frozen=True, slots=True)
class AccountState:
    """What intake remembers of an account between snapshots."""

    account_id: str
    as_of: date
    delinquent: bool
    dpd_bucket: str
    outstanding: Decimal
    overdue_amount: Decimal
    last_payment_date: date | None
    flags: p.CustomerFlags
    contact: p.ContactDetails | None = None
    address: p.Address | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    state: AccountState
    events: list[p.Payload]
    out_of_order: bool = False


def diff(previous: AccountState | None, snap: AccountSnapshot, seg: Segmentation) -> Transition:
    if previous is not None and snap.as_of < previous.as_of:
        return Transition(previous, [], out_of_order=True)
    flags = p.CustomerFlags(
        **snap.flags.model_dump(), care_hold=previous.flags.care_hold if previous else False
    )
    state = AccountState(
        account_id=snap.account_id,
        as_of=snap.as_of,
        delinquent=snap.is_delinquent,
        dpd_bucket=seg.bucket(snap.dpd),
        outstanding=snap.outstanding,
        overdue_amount=snap.overdue_amount,
        last_payment_date=snap.last_payment_date,
        flags=flags,
        contact=contact_of(snap),
        address=address_of(snap),
    )
    events: list[p.Payload] = []
    if previous is not None and previous.flags != flags:
        events.append(_flags_changed(snap, previous.flags, flags))
    if previous is None or not previous.delinquent:
        if state.delinquent:
            events.append(_opened(snap, state, seg))
        return Transition(state, events)
    payment = _payment(previous, snap)
    if payment is not None:
        events.append(payment)
    if not state.delinquent:
        reason = "closed" if snap.status == "closed" else "current"
        events.append(p.DelinquencyCured(account_id=snap.account_id, as_of=snap.as_of, reason=reason))
    else:
        moved = (state.dpd_bucket, state.outstanding, state.overdue_amount) != (
            previous.dpd_bucket,
            previous.outstanding,
            previous.overdue_amount,
        )
        # New contact data or a new address is news for a case: where to visit, whom to text.
        contact = state.contact if state.contact != previous.contact else None
        address = state.address if state.address != previous.address else None
        if moved or contact is not None or address is not None:
            events.append(_updated(snap, state, seg, contact, address))
    return Transition(state, events)


def unchanged(previous: AccountState | None, transition: Transition) -> bool:
    """Nothing to write: same facts (a re-sent snapshot), only the date moved or not."""
    return (
        previous is not None
        and not transition.events
        and replace(previous, as_of=transition.state.as_of) == transition.state
    )


def contact_of(snap: AccountSnapshot) -> p.ContactDetails:
    c = snap.customer
    return p.ContactDetails(name=c.name, phone=c.phone, language=c.language, time_zone=c.time_zone)


def address_of(snap: AccountSnapshot) -> p.Address:
    a = snap.address
    return p.Address(
        line1=a.line1,
        city=a.city,
        region=a.region,
        postal_code=a.postal_code,
        country=a.country,
        location=p.GeoPoint(lat=a.lat, lon=a.lon) if a.lat is not None and a.lon is not None else None,
    )


def _opened(snap: AccountSnapshot, state: AccountState, seg: Segmentation) -> p.DelinquencyOpened:
    return p.DelinquencyOpened(
        account_id=snap.account_id,
        customer_id=snap.customer_id,
        product=snap.product,
        currency=snap.currency,
        as_of=snap.as_of,
        principal=snap.principal,
        outstanding=snap.outstanding,
        overdue_amount=snap.overdue_amount,
        dpd=snap.dpd,
        dpd_bucket=state.dpd_bucket,
        **_scored(priority_of(snap, seg), seg),
        contact=contact_of(snap),
        address=address_of(snap),
        flags=state.flags,
    )


def _updated(
    snap: AccountSnapshot,
    state: AccountState,
    seg: Segmentation,
    contact: p.ContactDetails | None,
    address: p.Address | None,
) -> p.DelinquencyUpdated:
    return p.DelinquencyUpdated(
        account_id=snap.account_id,
        as_of=snap.as_of,
        outstanding=snap.outstanding,
        overdue_amount=snap.overdue_amount,
        dpd=snap.dpd,
        dpd_bucket=state.dpd_bucket,
        **_scored(priority_of(snap, seg), seg),
        contact=contact,
        address=address,
    )


def priority_of(snap: AccountSnapshot, seg: Segmentation) -> Priority:
    return seg.explain(
        snap.dpd,
        snap.overdue_amount,
        snap.flags.vulnerable,
        snap.installment_amount,
        days_between(snap.as_of, snap.last_payment_date),
    )


def _scored(priority: Priority, seg: Segmentation) -> dict[str, object]:
    return {
        "priority_score": priority.score,
        "priority_factors": [
            p.PriorityFactor(factor=f.factor, input=f.input, points=f.points) for f in priority.factors
        ],
        "segmentation_version": seg.version,
    }


def _payment(previous: AccountState, snap: AccountSnapshot) -> p.PaymentReceived | None:
    newer_payment = snap.last_payment_date is not None and (
        previous.last_payment_date is None or snap.last_payment_date > previous.last_payment_date
    )
    overdue_down = snap.overdue_amount < previous.overdue_amount
    if not (newer_payment or overdue_down):
        return None
    amount = snap.last_payment_amount if newer_payment and snap.last_payment_amount else None
    if amount is None:
        amount = max(previous.overdue_amount - snap.overdue_amount, Decimal(0))
    return p.PaymentReceived(
        account_id=snap.account_id,
        as_of=snap.as_of,
        amount=amount,
        currency=snap.currency,
        overdue_amount_after=snap.overdue_amount,
        paid_on=snap.last_payment_date if newer_payment else None,
    )


def _flags_changed(
    snap: AccountSnapshot, old: p.CustomerFlags, new: p.CustomerFlags
) -> p.CustomerFlagsChanged:
    changed = sorted(k for k, v in new.model_dump().items() if old.model_dump()[k] != v)
    return p.CustomerFlagsChanged(
        account_id=snap.account_id,
        customer_id=snap.customer_id,
        flags=new,
        changed=changed,
        reason="core banking snapshot",
    )
