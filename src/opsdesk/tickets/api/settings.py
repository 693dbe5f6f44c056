"""Admin settings of tickets: custom field definitions and custom statuses."""

from __future__ import annotations

from fastapi import APIRouter, Response

from opsdesk.tickets.schemas import (
    CustomFieldCreate,
    CustomFieldOut,
    CustomFieldPatch,
    StatusCreate,
    StatusOut,
    StatusPatch,
)
from opsdesk.tickets.service import custom_fields, statuses
from opsdesk.web.auth import ApiActor
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1", tags=["settings"])


@router.get("/custom-fields")
def list_custom_fields(
    actor: ApiActor, session: DbSession, include_inactive: bool = False
) -> list[CustomFieldOut]:
    return [
        CustomFieldOut.of(item)
        for item in custom_fields.list_definitions(session, actor, include_inactive=include_inactive)
    ]


@router.post("/custom-fields", status_code=201)
def create_custom_field(body: CustomFieldCreate, actor: ApiActor, session: DbSession) -> CustomFieldOut:
    return CustomFieldOut.of(custom_fields.create_definition(session, actor, body.model_dump(mode="json")))


@router.get("/custom-fields/{field_id}")
def get_custom_field(field_id: int, actor: ApiActor, session: DbSession) -> CustomFieldOut:
    return CustomFieldOut.of(custom_fields.access_definition(session, actor, field_id))


@router.patch("/custom-fields/{field_id}")
def update_custom_field(
    field_id: int, body: CustomFieldPatch, actor: ApiActor, session: DbSession
) -> CustomFieldOut:
    definition = custom_fields.access_definition(session, actor, field_id)
    return CustomFieldOut.of(
        custom_fields.update_definition(session, actor, definition, body.model_dump(exclude_unset=True))
    )


@router.delete("/custom-fields/{field_id}", status_code=204, response_class=Response)
def delete_custom_field(field_id: int, actor: ApiActor, session: DbSession) -> Response:
    """Retire the field: tickets keep their values; it no longer accepts new ones."""
    custom_fields.deactivate_definition(
        session, actor, custom_fields.access_definition(session, actor, field_id)
    )
    return Response(status_code=204)


@router.get("/statuses")
def list_statuses(actor: ApiActor, session: DbSession, include_inactive: bool = False) -> list[StatusOut]:
    return [
        StatusOut.of(item)
        for item in statuses.list_statuses(session, actor, include_inactive=include_inactive)
    ]


@router.post("/statuses", status_code=201)
def create_status(body: StatusCreate, actor: ApiActor, session: DbSession) -> StatusOut:
    return StatusOut.of(statuses.create_status(session, actor, body.model_dump(mode="json")))


@router.get("/statuses/{status_id}")
def get_status(status_id: int, actor: ApiActor, session: DbSession) -> StatusOut:
    return StatusOut.of(statuses.access_status(session, actor, status_id))


@router.patch("/statuses/{status_id}")
def update_status(status_id: int, body: StatusPatch, actor: ApiActor, session: DbSession) -> StatusOut:
    status = statuses.access_status(session, actor, status_id)
    return StatusOut.of(statuses.update_status(session, actor, status, body.model_dump(exclude_unset=True)))


@router.delete("/statuses/{status_id}", status_code=204, response_class=Response)
def delete_status(status_id: int, actor: ApiActor, session: DbSession) -> Response:
    """Retire the status: tickets that carry it keep it; it can no longer be chosen."""
    statuses.retire_status(session, actor, statuses.access_status(session, actor, status_id))
    return Response(status_code=204)
