"""SLA API: a ticket's targets, the breaching/breached views, calendars and policies."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.sla import calendars, deadlines, policies, queries
from opsdesk.sla.schemas import (
    CalendarIn,
    CalendarOut,
    DeadlineIn,
    PolicyIn,
    PolicyOut,
    SlaItemList,
    SlaItemOut,
    SlaViewList,
    SlaViewRowOut,
)
from opsdesk.web.auth import api_actor
from opsdesk.web.sessions import request_session

router = APIRouter(prefix="/api/v1", tags=["sla"])


@router.get("/tickets/{ticket_id}/sla", response_model=SlaItemList)
def ticket_sla(
    ticket_id: int, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> SlaItemList:
    """Each SLA target of the ticket: active / paused / achieved / breached, due time, time left."""
    return SlaItemList(items=[SlaItemOut.of(item) for item in queries.ticket_sla(session, actor, ticket_id)])


@router.post("/tickets/{ticket_id}/sla/deadlines", response_model=SlaItemOut, status_code=201)
def add_deadline(
    ticket_id: int,
    body: DeadlineIn,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> SlaItemOut:
    """Set a fixed deadline on the ticket: a target due at ``due_at`` that breaches like any other
    and is achieved when the ticket is solved."""
    target = deadlines.add_deadline(
        session, actor, ticket_id, metric=body.metric, due_at=body.due_at, reason=body.reason
    )
    return SlaItemOut.of(queries.item_of(target, clock.now()))


@router.get("/sla/breaching", response_model=SlaViewList)
def breaching(
    within_minutes: int = Query(60, ge=1, le=7 * 24 * 60),
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> SlaViewList:
    """Targets breaching in the next ``within_minutes`` (an hour by default), soonest first."""
    rows = queries.breaching_soon(session, actor, within=timedelta(minutes=within_minutes))
    return SlaViewList(items=[SlaViewRowOut.of(row) for row in rows])


@router.get("/sla/breached", response_model=SlaViewList)
def breached(actor: Actor = Depends(api_actor), session: Session = Depends(request_session)) -> SlaViewList:
    """Unsolved tickets with a breached target."""
    return SlaViewList(items=[SlaViewRowOut.of(row) for row in queries.breached(session, actor)])


@router.get("/sla/calendars", response_model=list[CalendarOut])
def list_calendars(
    actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[CalendarOut]:
    return [CalendarOut.of(row) for row in calendars.list_calendars(session, actor)]


@router.post("/sla/calendars", response_model=CalendarOut, status_code=201)
def create_calendar(
    body: CalendarIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> CalendarOut:
    return CalendarOut.of(calendars.save_calendar(session, actor, **body.model_dump()))


@router.put("/sla/calendars/{calendar_id}", response_model=CalendarOut)
def replace_calendar(
    calendar_id: int,
    body: CalendarIn,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> CalendarOut:
    return CalendarOut.of(
        calendars.save_calendar(session, actor, calendar_id=calendar_id, **body.model_dump())
    )


@router.get("/sla/policies", response_model=list[PolicyOut])
def list_policies(
    actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[PolicyOut]:
    return [PolicyOut.of(policy) for policy in policies.list_policies(session, actor)]


@router.post("/sla/policies", response_model=PolicyOut, status_code=201)
def create_policy(
    body: PolicyIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> PolicyOut:
    """Create a policy (validated first; it applies to tickets whose targets start afterwards)."""
    return PolicyOut.of(policies.save_policy(session, actor, **body.model_dump()))


@router.put("/sla/policies/{policy_id}", response_model=PolicyOut)
def replace_policy(
    policy_id: int,
    body: PolicyIn,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> PolicyOut:
    return PolicyOut.of(policies.save_policy(session, actor, policy_id=policy_id, **body.model_dump()))
