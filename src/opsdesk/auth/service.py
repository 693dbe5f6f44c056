"""Staff users, groups and API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Role
from opsdesk.auth.models import ApiToken, Group, GroupMembership, User
from opsdesk.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from opsdesk.auth.permissions import Permission, require
from opsdesk.auth.tokens import digest, new_token
from opsdesk.errors import ConflictError, FieldProblem, NotFoundError, ValidationFailedError

# Writing last_used_at on every request would turn each read into a write; once a minute is
# precise enough for "last used" and keeps token checks read-only almost always.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: ApiToken
    secret: str


def _normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    local, _, domain = cleaned.rpartition("@")
    if not local or "." not in domain or " " in cleaned:
        raise ValidationFailedError(
            f"{email!r} is not an email address", fields=[FieldProblem(("email",), "not an email address")]
        )
    return cleaned


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    time_zone: str = "UTC",
    languages: Sequence[str] = ("en",),
    skills: Sequence[str] = (),
    capacity: int = 20,
    group_ids: Sequence[int] = (),
    vendor: str | None = None,
    seniority: int = 1,
) -> User:
    require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    normalized = _normalize_email(email)
    if role not in {member.value for member in Role}:
        problems.append(
            FieldProblem(("role",), "must be one of " + ", ".join(member.value for member in Role))
        )
    if not name.strip():
        problems.append(FieldProblem(("name",), "must not be empty"))
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        problems.append(FieldProblem(("password",), f"must be at least {MIN_PASSWORD_LENGTH} characters"))
    if capacity < 0:
        problems.append(FieldProblem(("capacity",), "must not be negative"))
    if problems:
        raise ValidationFailedError("the user is not valid", fields=problems)
    if session.scalar(select(User.id).where(User.email == normalized)) is not None:
        raise ConflictError(f"a user with email {normalized} already exists")
    user = User(
        email=normalized,
        name=name.strip(),
        role=role,
        password_hash=hash_password(password) if password else None,
        time_zone=time_zone,
        languages=list(languages),
        skills=list(skills),
        capacity=capacity,
        vendor=vendor,
        seniority=seniority,
        is_active=True,
    )
    session.add(user)
    session.flush()
    for group_id in group_ids:
        if session.get(Group, group_id) is None:
            raise ValidationFailedError(
                "unknown group", fields=[FieldProblem(("group_ids",), f"group {group_id} does not exist")]
            )
        session.add(GroupMembership(group_id=group_id, user_id=user.id))
    session.flush()
    session.refresh(user)
    audit.record(
        session,
        actor,
        entity_type="user",
        entity_id=user.id,
        action="created",
        new={"email": normalized, "role": role},
    )
    return user


def create_group(session: Session, actor: Actor, *, name: str, description: str = "") -> Group:
    require(actor, Permission.GROUP_MANAGE)
    if not name.strip():
        raise ValidationFailedError(
            "the group is not valid", fields=[FieldProblem(("name",), "must not be empty")]
        )
    if session.scalar(select(Group.id).where(Group.name == name.strip())) is not None:
        raise ConflictError(f"a group named {name.strip()} already exists")
    group = Group(name=name.strip(), description=description)
    session.add(group)
    session.flush()
    audit.record(
        session, actor, entity_type="group", entity_id=group.id, action="created", new={"name": group.name}
    )
    return group


def add_member(session: Session, actor: Actor, group: Group, user: User) -> None:
    require(actor, Permission.GROUP_MANAGE)
    if group.id in user.group_ids:
        return
    session.add(GroupMembership(group_id=group.id, user_id=user.id))
    session.flush()
    session.expire(user, ["memberships"])
    audit.record(
        session,
        actor,
        entity_type="group",
        entity_id=group.id,
        action="member_added",
        new={"user_id": user.id},
    )


def authenticate_password(session: Session, email: str, password: str) -> User | None:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


def issue_token(session: Session, actor: Actor, user: User, *, name: str = "") -> IssuedToken:
    """A new token for ``user``: admins for anyone, everyone else only for themselves."""
    require(actor, Permission.TOKEN_OWN)
    if actor.user is not None and actor.user.id != user.id:
        require(actor, Permission.USER_MANAGE)
    secret = new_token()
    token = ApiToken(user_id=user.id, name=name, token_digest=digest(secret), prefix=secret[:10])
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="api_token",
        entity_id=token.id,
        action="created",
        new={"user_id": user.id, "name": name},
    )
    return IssuedToken(token=token, secret=secret)


def user_for_token(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The active user behind a token, touching ``last_used_at`` at most once a minute."""
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_digest == digest(secret), ApiToken.revoked_at.is_(None))
    ).first()
    if token is None or not token.user.is_active:
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    return token.user, token


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (
        actor.user is not None and token.user_id != actor.user.id and actor.user.role != Role.ADMIN
    ):
        raise NotFoundError(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        session.flush()
        audit.record(session, actor, entity_type="api_token", entity_id=token.id, action="revoked")
    return token
