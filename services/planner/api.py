"""Supervisors' API: agents and the visits planned for them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status

from services.planner import repository
from services.planner.models import Agent, AgentIn
from shared.auth import Principal, require_role
from shared.errors import Invalid
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1", tags=["supervisors"])
Supervisor = Annotated[Principal, Depends(require_role("supervisor"))]


@router.put("/agents/{agent_id}", status_code=status.HTTP_200_OK, response_model=Agent)
async def put_agent(agent_id: str, agent: AgentIn, request: Request, _: Supervisor) -> AgentIn:
    if agent.agent_id != agent_id:
        raise Invalid("does not match the path", "agent_id")
    async with runtime_of(request.app).pool.acquire() as conn, conn.transaction():
        await repository.upsert_agent(conn, agent)
    return agent


@router.get("/agents", response_model=list[Agent])
async def get_agents(request: Request, _: Supervisor) -> list[Agent]:
    async with runtime_of(request.app).pool.acquire() as conn:
        return await repository.list_agents(conn)


@router.get("/visits")
async def get_visits(request: Request, _: Supervisor, plan_date: date | None = None) -> list[dict[str, Any]]:
    async with runtime_of(request.app).pool.acquire() as conn:
        return await repository.list_visits(conn, plan_date)
