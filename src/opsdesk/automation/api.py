"""Automation API: triggers and automations, macros (preview and apply), the escalation matrix."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.automation import escalations, macros, rules
from opsdesk.automation.schemas import (
    EscalationIn,
    EscalationOut,
    MacroApplyIn,
    MacroIn,
    MacroOut,
    MacroPreviewOut,
    RuleIn,
    RuleOut,
)
from opsdesk.tickets.service import access_ticket
from opsdesk.web.auth import api_actor
from opsdesk.web.sessions import request_session

router = APIRouter(prefix="/api/v1", tags=["automation"])


class MacroApplied(BaseModel):
    ticket_id: int
    message_id: int | None
    status: str
    tags: list[str]


@router.get("/rules", response_model=list[RuleOut])
def list_rules(
    kind: str | None = None, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[RuleOut]:
    return [RuleOut.of(rule) for rule in rules.list_rules(session, actor, kind)]


@router.post("/rules", response_model=RuleOut, status_code=201)
def create_rule(
    body: RuleIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> RuleOut:
    """Create a trigger or automation; validated completely before it is saved."""
    return RuleOut.of(rules.save_rule(session, actor, **body.model_dump()))


@router.put("/rules/{rule_id}", response_model=RuleOut)
def replace_rule(
    rule_id: int, body: RuleIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> RuleOut:
    return RuleOut.of(rules.save_rule(session, actor, rule_id=rule_id, **body.model_dump()))


@router.get("/macros", response_model=list[MacroOut])
def list_macros(
    actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[MacroOut]:
    """Shared macros and your own, most used first."""
    return [MacroOut.of(macro) for macro in macros.visible_macros(session, actor)]


@router.post("/macros", response_model=MacroOut, status_code=201)
def create_macro(
    body: MacroIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> MacroOut:
    return MacroOut.of(macros.save_macro(session, actor, **body.model_dump()))


@router.post("/tickets/{ticket_id}/macros/{macro_id}/preview", response_model=MacroPreviewOut)
def preview_macro(
    ticket_id: int,
    macro_id: int,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> MacroPreviewOut:
    """Exactly what applying the macro would send and change; changes nothing."""
    ticket = access_ticket(session, actor, ticket_id)
    preview = macros.preview_macro(session, actor, ticket, macros.access_macro(session, actor, macro_id))
    return MacroPreviewOut(
        body=preview.body, public_reply=preview.public_reply, changes=preview.changes, digest=preview.digest
    )


@router.post("/tickets/{ticket_id}/macros/{macro_id}/apply", response_model=MacroApplied)
def apply_macro(
    ticket_id: int,
    macro_id: int,
    body: MacroApplyIn | None = None,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> MacroApplied:
    """Apply the macro; with ``preview_digest`` (from the preview) 409 unless exactly that is sent."""
    ticket = access_ticket(session, actor, ticket_id, for_update=True)
    message = macros.apply_macro(
        session,
        actor,
        ticket,
        macros.access_macro(session, actor, macro_id),
        preview_digest=body.preview_digest if body is not None else None,
    )
    return MacroApplied(
        ticket_id=ticket.id,
        message_id=message.id if message is not None else None,
        status=ticket.status,
        tags=list(ticket.tags),
    )


@router.get("/escalations", response_model=list[EscalationOut])
def list_escalations(
    actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[EscalationOut]:
    return [EscalationOut.of(rule) for rule in escalations.list_escalations(session, actor)]


@router.post("/escalations", response_model=EscalationOut, status_code=201)
def create_escalation(
    body: EscalationIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> EscalationOut:
    return EscalationOut.of(escalations.save_escalation(session, actor, **body.model_dump()))


@router.put("/escalations/{rule_id}", response_model=EscalationOut)
def replace_escalation(
    rule_id: int,
    body: EscalationIn,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> EscalationOut:
    """Replace a matrix row (validated first; a missing routing key keeps the stored one)."""
    return EscalationOut.of(escalations.save_escalation(session, actor, rule_id=rule_id, **body.model_dump()))


@router.delete("/escalations/{rule_id}", status_code=204, response_model=None)
def delete_escalation(
    rule_id: int, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> None:
    escalations.delete_escalation(session, actor, rule_id)
