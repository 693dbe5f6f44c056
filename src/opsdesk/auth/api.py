"""The auth API: browser sessions, who am I, staff users, groups and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth import service
from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Role
from opsdesk.auth.login import attempt_login
from opsdesk.auth.models import Group
from opsdesk.auth.schemas import (
    GroupCreate,
    GroupOut,
    GroupPatch,
    IssuedTokenOut,
    LoginIn,
    SessionOut,
    TokenCreate,
    TokenOut,
    UserCreate,
    UserOut,
    UserPatch,
)
from opsdesk.auth.sessions import revoke_session
from opsdesk.errors import NotFoundError
from opsdesk.web.auth import (
    ApiActor,
    api_actor,
    client_address,
    set_session_cookie,
    settings_of,
    sign_in,
    sign_out_cookie,
)
from opsdesk.web.problems import problem_response
from opsdesk.web.sessions import DbSession, request_session

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/session", response_model=SessionOut, responses={401: {}, 429: {}})
def create_session(body: LoginIn, request: Request, session: Session = Depends(request_session)) -> Response:
    """Sign in with email and password; the answer sets the session cookie and gives its CSRF
    token. Rate-limited per client address and per email."""
    outcome = attempt_login(
        session,
        email=body.email,
        password=body.password,
        ip_address=client_address(request),
        limit=settings_of(request).login_attempts_per_minute,
    )
    if outcome.user is None or outcome.error is not None:
        # Answer rather than raise: the recorded attempt must commit for the limit to count it.
        error = outcome.error
        assert error is not None
        return problem_response(
            request, error.status, error.title, error.detail, error.code, [], headers=error.headers
        )
    started = sign_in(request, session, outcome.user)
    payload = SessionOut(
        user=UserOut.of(outcome.user),
        csrf_token=started.web_session.csrf_token,
        expires_at=started.web_session.expires_at,
    )
    response = JSONResponse(payload.model_dump(mode="json"))
    set_session_cookie(request, response, started)
    return response


@router.get("/session", response_model=SessionOut)
def read_session(request: Request, actor: Actor = Depends(api_actor)) -> SessionOut:
    """The browser session the request was made with, and its CSRF token for unsafe requests."""
    web_session = getattr(request.state, "web_session", None)
    if web_session is None or actor.user is None:
        raise NotFoundError("this request was not made with a browser session")
    return SessionOut(
        user=UserOut.of(actor.user), csrf_token=web_session.csrf_token, expires_at=web_session.expires_at
    )


@router.delete("/session", status_code=204, response_class=Response)
def delete_session(
    request: Request, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> Response:
    """Sign out the browser session the request was made with."""
    del actor
    response = Response(status_code=204)
    web_session = getattr(request.state, "web_session", None)
    if web_session is not None:
        revoke_session(session, web_session)
        sign_out_cookie(response)
    return response


@router.get("/me", response_model=UserOut)
def me(actor: Actor = Depends(api_actor)) -> UserOut:
    assert actor.user is not None
    return UserOut.of(actor.user)


# ---------------------------------------------------------------- users


@router.get("/users", tags=["users"])
def list_users(
    actor: ApiActor, session: DbSession, role: Role | None = None, active: bool | None = None
) -> list[UserOut]:
    rows = service.list_users(session, actor, role=role.value if role else None, active=active)
    return [UserOut.of(user) for user in rows]


@router.post("/users", status_code=201, tags=["users"])
def create_user(body: UserCreate, actor: ApiActor, session: DbSession) -> UserOut:
    user = service.create_user(
        session,
        actor,
        email=body.email,
        name=body.name,
        role=body.role.value,
        password=body.password,
        time_zone=body.time_zone,
        languages=body.languages,
        skills=body.skills,
        capacity=body.capacity,
        group_ids=body.group_ids,
        vendor=body.vendor,
        seniority=body.seniority,
    )
    return UserOut.of(user)


@router.get("/users/{user_id}", tags=["users"])
def get_user(user_id: int, actor: ApiActor, session: DbSession) -> UserOut:
    return UserOut.of(service.access_user(session, actor, user_id))


@router.patch("/users/{user_id}", tags=["users"])
def update_user(user_id: int, body: UserPatch, actor: ApiActor, session: DbSession) -> UserOut:
    user = service.access_user(session, actor, user_id)
    service.update_user(session, actor, user, body.model_dump(mode="json", exclude_unset=True))
    session.refresh(user)
    return UserOut.of(user)


@router.delete("/users/{user_id}", status_code=204, response_class=Response, tags=["users"])
def deactivate_user(user_id: int, actor: ApiActor, session: DbSession) -> Response:
    """Deactivate a staff member (their history stays; their sessions end, tokens stop working)."""
    service.update_user(session, actor, service.access_user(session, actor, user_id), {"is_active": False})
    return Response(status_code=204)


# ---------------------------------------------------------------- groups


def _group_out(session: Session, group: Group) -> GroupOut:
    return GroupOut.of(group, service.group_member_ids(session, [group.id])[group.id])


@router.get("/groups", tags=["groups"])
def list_groups(actor: ApiActor, session: DbSession) -> list[GroupOut]:
    groups = service.list_groups(session, actor)
    members = service.group_member_ids(session, [group.id for group in groups])
    return [GroupOut.of(group, members[group.id]) for group in groups]


@router.post("/groups", status_code=201, tags=["groups"])
def create_group(body: GroupCreate, actor: ApiActor, session: DbSession) -> GroupOut:
    group = service.create_group(session, actor, name=body.name, description=body.description)
    if body.member_ids:
        service.update_group(session, actor, group, {"member_ids": body.member_ids})
    return _group_out(session, group)


@router.get("/groups/{group_id}", tags=["groups"])
def get_group(group_id: int, actor: ApiActor, session: DbSession) -> GroupOut:
    return _group_out(session, service.access_group(session, actor, group_id))


@router.patch("/groups/{group_id}", tags=["groups"])
def update_group(group_id: int, body: GroupPatch, actor: ApiActor, session: DbSession) -> GroupOut:
    group = service.access_group(session, actor, group_id)
    service.update_group(session, actor, group, body.model_dump(exclude_unset=True))
    return _group_out(session, group)


@router.delete("/groups/{group_id}", status_code=204, response_class=Response, tags=["groups"])
def delete_group(group_id: int, actor: ApiActor, session: DbSession) -> Response:
    service.delete_group(session, actor, service.access_group(session, actor, group_id))
    return Response(status_code=204)


# ---------------------------------------------------------------- API tokens


@router.get("/tokens", tags=["tokens"])
def list_tokens(actor: ApiActor, session: DbSession, user_id: int | None = None) -> list[TokenOut]:
    """Your tokens (admins: anyone's with ``user_id``). Secrets are never shown again."""
    assert actor.user is not None
    user = service.access_user(session, actor, user_id) if user_id is not None else actor.user
    return [TokenOut.of(token) for token in service.list_tokens(session, actor, user)]


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(body: TokenCreate, actor: ApiActor, session: DbSession) -> IssuedTokenOut:
    """A new API token; the secret is in this answer only."""
    assert actor.user is not None
    user = service.access_user(session, actor, body.user_id) if body.user_id is not None else actor.user
    issued = service.issue_token(session, actor, user, name=body.name)
    return IssuedTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response, tags=["tokens"])
def revoke_token(token_id: int, actor: ApiActor, session: DbSession) -> Response:
    service.revoke_token(session, actor, token_id)
    return Response(status_code=204)
