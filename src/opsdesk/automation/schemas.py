"""Request and response shapes of the automation API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.automation.models import AutomationRule, EscalationRule, Macro


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = Field(description="trigger or automation")
    events: list[str] = Field(default_factory=list)
    conditions: dict[str, Any] = Field(default_factory=dict)
    actions: list[Any]
    position: int = 0
    is_active: bool = True


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    events: list[str]
    conditions: dict[str, Any]
    actions: list[Any]
    position: int
    is_active: bool
    fire_count: int
    last_fired_at: datetime | None

    @classmethod
    def of(cls, rule: AutomationRule) -> RuleOut:
        return cls(
            id=rule.id,
            name=rule.name,
            kind=rule.kind,
            events=list(rule.events),
            conditions=rule.conditions,
            actions=list(rule.actions),
            position=rule.position,
            is_active=rule.is_active,
            fire_count=rule.fire_count,
            last_fired_at=rule.last_fired_at,
        )


class MacroIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    body_template: str = ""
    public_reply: bool = True
    actions: list[dict[str, Any]] = Field(default_factory=list)
    shared: bool = False


class MacroOut(BaseModel):
    id: int
    name: str
    shared: bool
    body_template: str
    public_reply: bool
    actions: list[Any]
    usage_count: int

    @classmethod
    def of(cls, macro: Macro) -> MacroOut:
        return cls(
            id=macro.id,
            name=macro.name,
            shared=macro.owner_id is None,
            body_template=macro.body_template,
            public_reply=macro.public_reply,
            actions=list(macro.actions),
            usage_count=macro.usage_count,
        )


class MacroPreviewOut(BaseModel):
    body: str
    public_reply: bool
    changes: dict[str, Any]
    digest: str = Field(description="pass as preview_digest when applying to apply exactly this")


class MacroApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preview_digest: str | None = None


class EscalationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: str
    tier: str | None = None
    minutes_after_breach: int = 0
    notify: list[str] = Field(default_factory=list)
    slack_webhook_url: str | None = None
    page_on_call: bool = False
    paging_url: str | None = None
    paging_routing_key: str | None = None
    is_active: bool = True


class EscalationOut(BaseModel):
    id: int
    priority: str
    tier: str | None
    minutes_after_breach: int
    notify: list[str]
    slack_webhook_url: str | None
    page_on_call: bool
    paging_url: str | None
    has_routing_key: bool = False
    is_active: bool = True

    @classmethod
    def of(cls, rule: EscalationRule) -> EscalationOut:
        return cls(
            id=rule.id,
            priority=rule.priority,
            tier=rule.tier,
            minutes_after_breach=rule.minutes_after_breach,
            notify=list(rule.notify),
            slack_webhook_url=rule.slack_webhook_url,
            page_on_call=rule.page_on_call,
            paging_url=rule.paging_url,
            has_routing_key=bool(rule.paging_routing_key),
            is_active=rule.is_active,
        )
