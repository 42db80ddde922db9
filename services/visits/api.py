"""The field agents' app API. An agent only ever sees their own visits."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status

from services.visits import handlers, repository
from services.visits.models import OutcomeIn, OutcomeView, VisitView
from shared.auth import Principal, require_role
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1/me", tags=["agents"])
FieldAgent = Annotated[Principal, Depends(require_role("agent"))]


@router.get("/visits", response_model=list[VisitView], summary="My visits, in route order")
async def my_visits(request: Request, agent: FieldAgent, plan_date: date | None = None) -> list[VisitView]:
    async with runtime_of(request.app).pool.acquire() as conn:
        rows = await repository.agent_visits(conn, agent.subject, plan_date)
    return [VisitView(**row) for row in rows]


@router.post(
    "/visits/{visit_id}/outcomes",
    response_model=OutcomeView,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "already recorded (replay)"}, 404: {"description": "not your visit"}},
)
async def post_outcome(
    visit_id: UUID, body: OutcomeIn, request: Request, response: Response, agent: FieldAgent
) -> OutcomeView:
    view, created = await handlers.record_outcome(runtime_of(request.app).pool, agent.subject, visit_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view
