"""Follow-up's API: the dialer, the care team, the dispute queue, the SMS gateway's webhooks.

Routes parse, authorize and open the transaction; the use cases live in calls.py, care.py
and receipts.py. Staff and dialer routes take a bearer token with a role; the gateway's
webhooks carry an HMAC signature instead (webhooks.py).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ValidationError

from services.followup import calls, care, receipts, repository
from services.followup.contacts import Followup
from services.followup.models import (
    CallClaimIn,
    CallResultIn,
    CallTaskView,
    ClaimedCall,
    DeliveryReceiptIn,
    DisputeResolveIn,
    DisputeView,
    InboundSmsIn,
    ReferralCloseIn,
    ReferralView,
)
from services.followup.settings import FollowupSettings
from services.followup.webhooks import SIGNATURE_HEADER, verify
from shared.auth import Principal, require_role
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1", tags=["follow-up"])
Staff = Annotated[Principal, Depends(require_role("care", "ops", "supervisor"))]
Dialer = Annotated[Principal, Depends(require_role("dialer"))]
CallViewers = Annotated[Principal, Depends(require_role("dialer", "supervisor", "ops"))]
CareTeam = Annotated[Principal, Depends(require_role("care"))]
DisputeTeam = Annotated[Principal, Depends(require_role("supervisor", "care"))]
M = TypeVar("M", bound=BaseModel)


def _ctx(request: Request) -> Followup:
    ctx: Followup = request.app.state.followup
    return ctx


def _pool(request: Request) -> Any:
    return runtime_of(request.app).pool


# --- staff views ------------------------------------------------------------------------


@router.get("/sms-jobs", summary="SMS jobs and their state (no phone numbers, no texts)")
async def sms_jobs(request: Request, _: Staff, account_id: str | None = None) -> list[dict[str, Any]]:
    async with _pool(request).acquire() as conn:
        return await repository.list_jobs(conn, account_id)


@router.get("/promises", summary="Promises to pay and what became of them")
async def promises(request: Request, _: Staff, account_id: str | None = None) -> list[dict[str, Any]]:
    async with _pool(request).acquire() as conn:
        return await repository.list_promises(conn, account_id)


# --- the dialer ---------------------------------------------------------------------------


@router.post(
    "/call-tasks/claims",
    response_model=list[ClaimedCall],
    summary="Lease the due calls this agent may make now (compliance checked for this agent)",
)
async def claim_calls(request: Request, body: CallClaimIn, _: Dialer) -> list[ClaimedCall]:
    lease_s = request.app.state.settings.call_lease_s
    async with _pool(request).acquire() as conn, conn.transaction():
        return await calls.claim_calls(conn, _ctx(request), body, lease_s)


@router.post(
    "/call-tasks/{task_id}/result",
    response_model=CallTaskView,
    summary="Record a call's result (call.completed); a replay of the same result is answered again",
    responses={404: {"description": "no such task"}, 409: {"description": "not claimed, or another result"}},
)
async def call_result(request: Request, task_id: UUID, body: CallResultIn, _: Dialer) -> CallTaskView:
    async with _pool(request).acquire() as conn, conn.transaction():
        return await calls.record_result(conn, _ctx(request), task_id, body)


@router.get("/call-tasks", response_model=list[CallTaskView], summary="Call tasks (no phone numbers)")
async def call_tasks(
    request: Request, _: CallViewers, account_id: str | None = None, status: str | None = None
) -> list[CallTaskView]:
    async with _pool(request).acquire() as conn:
        return await calls.list_calls(conn, account_id, status)


# --- the care team --------------------------------------------------------------------------


@router.get("/care/referrals", response_model=list[ReferralView], summary="Care-program referrals")
async def referrals(
    request: Request, _: CareTeam, status: Literal["open", "accepted", "closed"] | None = None
) -> list[ReferralView]:
    async with _pool(request).acquire() as conn:
        return await care.list_referrals(conn, status)


@router.post("/care/referrals/{referral_id}/accept", response_model=ReferralView, summary="Take a referral")
async def accept_referral(request: Request, referral_id: UUID, who: CareTeam) -> ReferralView:
    async with _pool(request).acquire() as conn, conn.transaction():
        return await care.accept_referral(conn, referral_id, who.subject)


@router.post(
    "/care/referrals/{referral_id}/close",
    response_model=ReferralView,
    summary="Close a referral; closing the account's last one lifts the care hold",
)
async def close_referral(
    request: Request, referral_id: UUID, body: ReferralCloseIn, who: CareTeam
) -> ReferralView:
    async with _pool(request).acquire() as conn, conn.transaction():
        return await care.close_referral(conn, referral_id, who.subject, body.resolution)


# --- the dispute queue ------------------------------------------------------------------------


@router.get("/disputes", response_model=list[DisputeView], summary="Disputes raised at the door")
async def disputes(
    request: Request, _: DisputeTeam, status: Literal["open", "resolved"] | None = None
) -> list[DisputeView]:
    async with _pool(request).acquire() as conn:
        return await care.list_disputes(conn, status)


@router.post(
    "/disputes/{dispute_id}/resolve",
    response_model=DisputeView,
    summary="Resolve a dispute; resolving the account's last one lifts the dispute hold",
)
async def resolve_dispute(
    request: Request, dispute_id: UUID, body: DisputeResolveIn, who: DisputeTeam
) -> DisputeView:
    async with _pool(request).acquire() as conn, conn.transaction():
        return await care.resolve_dispute(conn, dispute_id, who.subject, body.resolution)


# --- the SMS gateway's webhooks ------------------------------------------------------------------


async def _signed(request: Request, model: type[M]) -> M:
    """The body, if the gateway signed it (401 otherwise) and it parses (422 with fields otherwise)."""
    body = await request.body()
    settings: FollowupSettings = request.app.state.settings
    if not verify(settings.webhook_secret(), body, request.headers.get(SIGNATURE_HEADER), time.time()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad or missing webhook signature")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        detail = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None


@router.post(
    "/sms/delivery-receipts",
    summary="Delivery receipt from the SMS gateway (signed) → sms.delivery_updated",
    responses={404: {"description": "unknown message"}, 409: {"description": "not sent yet: retry"}},
)
async def delivery_receipt(request: Request) -> dict[str, bool]:
    receipt = await _signed(request, DeliveryReceiptIn)
    async with _pool(request).acquire() as conn, conn.transaction():
        return {"applied": await receipts.apply_receipt(conn, receipt)}


@router.post(
    "/sms/inbound", summary="A customer's SMS reply (signed); STOP / 退订 opts the number out of SMS"
)
async def inbound_sms(request: Request) -> dict[str, str]:
    message = await _signed(request, InboundSmsIn)
    async with _pool(request).acquire() as conn, conn.transaction():
        return {"result": await receipts.apply_inbound(conn, _ctx(request), message)}
