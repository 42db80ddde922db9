"""The documented input schema of an account snapshot from core banking (docs/intake.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
TIME_ZONES = frozenset(available_timezones())


class SnapshotCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 -]{4,30}$")
    language: str = Field(default="zh-CN", pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    time_zone: str = Field(default="Asia/Shanghai", description="IANA zone of the address")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in TIME_ZONES:
            raise ValueError("unknown IANA time zone")
        ZoneInfo(value)
        return value


class SnapshotAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates(self) -> SnapshotAddress:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        return self


class SnapshotFlags(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cease_contact: bool = False
    dispute: bool = False
    deceased: bool = False
    bankruptcy: bool = False
    vulnerable: bool = False


class AccountSnapshot(BaseModel):
    """One account as core banking sees it on `as_of`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    account_id: Identifier
    customer_id: Identifier
    product: str = Field(min_length=1, max_length=64)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    as_of: date
    status: Literal["active", "closed"] = "active"
    principal: Money
    outstanding: Money
    overdue_amount: Money
    installment_amount: Money | None = None
    days_past_due: int | None = Field(default=None, ge=0, le=36500)
    due_date: date | None = Field(default=None, description="oldest unpaid due date")
    last_payment_date: date | None = None
    last_payment_amount: Money | None = None
    customer: SnapshotCustomer = SnapshotCustomer()
    address: SnapshotAddress
    flags: SnapshotFlags = SnapshotFlags()

    @model_validator(mode="after")
    def _consistent(self) -> AccountSnapshot:
        if self.overdue_amount > self.outstanding:
            raise ValueError("overdue_amount exceeds outstanding")
        if self.due_date and self.due_date > self.as_of and self.overdue_amount > 0:
            raise ValueError("due_date is after as_of but an amount is overdue")
        return self

    @property
    def dpd(self) -> int:
        if self.days_past_due is not None:
            return self.days_past_due
        if self.due_date is not None and self.overdue_amount > 0:
            return max((self.as_of - self.due_date).days, 0)
        return 0

    @property
    def is_delinquent(self) -> bool:
        return self.status == "active" and self.overdue_amount > 0 and self.dpd > 0
