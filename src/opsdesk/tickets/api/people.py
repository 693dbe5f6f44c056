"""People: the customers' contacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from opsdesk.tickets.schemas import PersonCreate, PersonList, PersonOut, PersonPatch
from opsdesk.tickets.service import people
from opsdesk.web.auth import ApiActor
from opsdesk.web.pagination import decode_after_id, encode_after_id
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1/people", tags=["people"])


@router.post("", status_code=201)
def create_person(body: PersonCreate, actor: ApiActor, session: DbSession) -> PersonOut:
    return PersonOut.of(people.create_person(session, actor, body.model_dump(exclude_unset=True)))


@router.get("")
def list_people(
    actor: ApiActor,
    session: DbSession,
    q: Annotated[str | None, Query(description="part of a name or email")] = None,
    account_id: int | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PersonList:
    rows = people.list_people(
        session, actor, query=q, account_id=account_id, after_id=decode_after_id(cursor), limit=limit + 1
    )
    items = rows[:limit]
    next_cursor = encode_after_id(items[-1].id) if len(rows) > limit else None
    return PersonList(items=[PersonOut.of(person) for person in items], next_cursor=next_cursor)


@router.get("/{person_id}")
def get_person(person_id: int, actor: ApiActor, session: DbSession) -> PersonOut:
    return PersonOut.of(people.access_person(session, actor, person_id))


@router.patch("/{person_id}")
def update_person(person_id: int, body: PersonPatch, actor: ApiActor, session: DbSession) -> PersonOut:
    person = people.access_person(session, actor, person_id)
    return PersonOut.of(people.update_person(session, actor, person, body.model_dump(exclude_unset=True)))


@router.delete("/{person_id}", status_code=204, response_class=Response)
def delete_person(person_id: int, actor: ApiActor, session: DbSession) -> Response:
    people.delete_person(session, actor, people.access_person(session, actor, person_id))
    return Response(status_code=204)
