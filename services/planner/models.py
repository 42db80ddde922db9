"""What supervisors send and read: agents and their visits."""

from __future__ import annotations

from datetime import date, time

from pydantic import BaseModel, ConfigDict, Field


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    display_name: str = Field(min_length=1, max_length=200)
    team: str | None = Field(default=None, max_length=64)
    region: str = Field(min_length=1, max_length=64)
    home_lat: float = Field(ge=-90, le=90)
    home_lon: float = Field(ge=-180, le=180)
    shift_start: time = time(9, 0)
    shift_end: time = time(18, 0)
    time_zone: str = "Asia/Shanghai"
    daily_capacity: int = Field(default=8, ge=1, le=50)
    languages: list[str] = Field(default_factory=lambda: ["zh-CN"], min_length=1)
    hardship_trained: bool = False
    certified_until: date
    active: bool = True


class Agent(AgentIn):
    pass
