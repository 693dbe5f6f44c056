"""Request and response shapes of the SLA API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.sla.models import BusinessCalendarRow, SlaPolicy
from opsdesk.sla.queries import SlaItem, SlaViewRow


class SlaItemOut(BaseModel):
    metric: str
    status: str
    due_at: datetime | None
    business_hours: bool
    policy: str
    time_left_seconds: int | None
    target_minutes: int
    achieved_at: datetime | None
    breached_at: datetime | None
    kind: str = Field("policy", description="policy, or deadline for a fixed due time")
    reason: str | None = Field(None, description="why a deadline exists (null for policy targets)")

    @classmethod
    def of(cls, item: SlaItem) -> SlaItemOut:
        return cls(
            metric=item.metric,
            status=item.status,
            due_at=item.due_at,
            business_hours=item.business_hours,
            policy=item.policy,
            time_left_seconds=item.time_left_seconds,
            target_minutes=item.target_minutes,
            achieved_at=item.achieved_at,
            breached_at=item.breached_at,
            kind=item.kind,
            reason=item.reason,
        )


class DeadlineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = "resolution"
    due_at: datetime
    reason: str


class SlaItemList(BaseModel):
    items: list[SlaItemOut]


class SlaViewRowOut(BaseModel):
    ticket_id: int
    subject: str
    priority: str
    status: str
    metric: str
    policy: str
    due_at: datetime | None
    time_left_seconds: int | None

    @classmethod
    def of(cls, row: SlaViewRow) -> SlaViewRowOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class SlaViewList(BaseModel):
    items: list[SlaViewRowOut]


class CalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    time_zone: str
    hours: dict[str, list[list[str]]] = Field(
        description='Weekday → intervals, e.g. {"mon": [["09:00", "17:00"]]}; end <= start runs overnight'
    )
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closed_dates: list[str] = Field(default_factory=list)
    is_default: bool = False


class CalendarOut(BaseModel):
    id: int
    name: str
    time_zone: str
    hours: dict[str, Any]
    holiday_country: str | None
    holiday_subdivision: str | None
    closed_dates: list[str]
    is_default: bool

    @classmethod
    def of(cls, row: BusinessCalendarRow) -> CalendarOut:
        return cls(
            id=row.id,
            name=row.name,
            time_zone=row.time_zone,
            hours=row.hours,
            holiday_country=row.holiday_country,
            holiday_subdivision=row.holiday_subdivision,
            closed_dates=list(row.closed_dates),
            is_default=row.is_default,
        )


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    position: int | None = None
    is_active: bool = True
    conditions: dict[str, Any] = Field(default_factory=dict)
    targets: dict[str, Any]
    calendar_id: int | None = None
    pause_on_hold: bool = False


class PolicyOut(BaseModel):
    id: int
    name: str
    description: str
    position: int
    is_active: bool
    conditions: dict[str, Any]
    targets: dict[str, Any]
    calendar_id: int | None
    pause_on_hold: bool

    @classmethod
    def of(cls, policy: SlaPolicy) -> PolicyOut:
        return cls(
            id=policy.id,
            name=policy.name,
            description=policy.description,
            position=policy.position,
            is_active=policy.is_active,
            conditions=policy.conditions,
            targets=policy.targets,
            calendar_id=policy.calendar_id,
            pause_on_hold=policy.pause_on_hold,
        )
