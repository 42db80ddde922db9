"""The care team's referrals and the dispute team's queue: accept, close, resolve, release holds.

A hold (care or dispute) lasts while any referral (dispute) of the account is open; closing
the last one publishes customer.flags_changed with the hold off, so the planner resumes.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from services.followup import repository
from services.followup.contacts import publish_hold
from services.followup.handlers import facts_for
from services.followup.models import DisputeView, ReferralView, Trigger
from shared.errors import Conflict, NotFound


async def list_referrals(conn: asyncpg.Connection, status: str | None) -> list[ReferralView]:
    return [ReferralView(**row) for row in await repository.list_referrals(conn, status)]


async def accept_referral(conn: asyncpg.Connection, referral_id: uuid.UUID, by: str) -> ReferralView:
    row = await repository.referral_for_update(conn, referral_id)
    if row is None:
        raise NotFound("no such referral", "referral_id")
    if row["status"] == "accepted" and row["accepted_by"] == by:
        return ReferralView(**row)
    if row["status"] != "open":
        raise Conflict(f"the referral is {row['status']}", "referral_id")
    return ReferralView(**await repository.accept_referral(conn, referral_id, by))


async def close_referral(
    conn: asyncpg.Connection, referral_id: uuid.UUID, by: str, resolution: str
) -> ReferralView:
    row = await repository.referral_for_update(conn, referral_id)
    if row is None:
        raise NotFound("no such referral", "referral_id")
    if row["status"] == "closed":
        if row["resolution"] != resolution:
            raise Conflict("the referral was closed with another resolution", "resolution")
        return ReferralView(**row)
    closed = await repository.close_referral(conn, referral_id, by, resolution)
    if await repository.open_referrals(conn, row["account_id"]) == 0:
        reason = f"care referral {referral_id} closed: {resolution}"
        await _release(conn, Trigger.of_row(row), row["account_id"], "care_hold", reason)
    return ReferralView(**closed)


async def list_disputes(conn: asyncpg.Connection, status: str | None) -> list[DisputeView]:
    return [DisputeView(**row) for row in await repository.list_disputes(conn, status)]


async def resolve_dispute(
    conn: asyncpg.Connection, dispute_id: uuid.UUID, by: str, resolution: str
) -> DisputeView:
    row = await repository.dispute_for_update(conn, dispute_id)
    if row is None:
        raise NotFound("no such dispute", "dispute_id")
    if row["status"] == "resolved":
        if row["resolution"] != resolution:
            raise Conflict("the dispute was resolved with another resolution", "resolution")
        return DisputeView(**row)
    resolved = await repository.resolve_dispute(conn, dispute_id, by, resolution)
    if await repository.open_disputes(conn, row["account_id"]) == 0:
        reason = f"dispute {dispute_id} resolved: {resolution}"
        await _release(conn, Trigger.of_row(row), row["account_id"], "dispute", reason)
    return DisputeView(**resolved)


async def _release(
    conn: asyncpg.Connection,
    trigger: Trigger,
    account_id: str,
    flag: Literal["care_hold", "dispute"],
    reason: str,
) -> None:
    """Lift our hold, unless core banking holds the account for the same reason itself.

    The lifted hold continues the trace of the outcome that set it (the last referral's or
    dispute's trigger)."""
    if (await repository.bank_flags(conn, account_id)).get(flag):
        return
    facts = await facts_for(conn, account_id)
    await publish_hold(conn, trigger, account_id, facts, flag, False, reason)
