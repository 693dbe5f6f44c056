"""Staff users, groups and API tokens."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Row, Table, bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from opsdesk import clock, config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Availability, Role
from opsdesk.auth.models import ApiToken, Group, GroupMembership, User
from opsdesk.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from opsdesk.auth.permissions import Permission, require
from opsdesk.auth.sessions import revoke_sessions_of
from opsdesk.auth.tokens import digest, new_token
from opsdesk.direct_insert import attach_as_loaded, held_by_session
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


@dataclass(frozen=True, slots=True)
class TokenUser:
    user: User
    token_id: int


_TOKENS: Table = ApiToken.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_USER_KEYS = tuple(column.key for column in _USERS.c)
# Built once, the hot path of every API call: one indexed lookup of the digest that brings the
# active user's row along (a plain Core statement; the user object is attached as loaded, with
# its group memberships loaded on first use: only group-scoped roles need them).
_TOKEN_AND_USER = (
    select(_TOKENS.c.id.label("token_id"), _TOKENS.c.last_used_at.label("token_last_used_at"), *_USERS.c)
    .select_from(_TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id))
    .where(
        _TOKENS.c.token_digest == bindparam("digest"),
        _TOKENS.c.revoked_at.is_(None),
        _USERS.c.is_active.is_(True),
    )
)


# The live tokens this process has seen, by digest, each valid at the configuration generation it
# was read at: revoking or deleting a token, and any change of its user but the two below, bump
# the generation in the same transaction (migration core_05), so no process serves a revoked
# token once the revocation committed. Misses are not kept (an unknown digest is asked for
# again each time).
_live_tokens: dict[str, tuple[tuple[str, int], Row[Any]]] = {}
# When this process last touched each token's last_used_at (the cached row keeps the old time).
_touched: dict[int, datetime] = {}
_tokens_lock = threading.Lock()
MAX_CACHED_TOKENS = 10_000
# Columns of the user that change without bumping the generation (agents go on and off shift all
# day): a cached row's values may be old, so the attached user loads them on first use.
_NOT_CACHED_USER_KEYS = ("availability", "updated_at")


def find_token(connection: Connection | Session, secret: str) -> Row[Any] | None:
    """The row of a live token of an active user, with the user's columns (None otherwise).
    Readable on any connection: a write request reads it before taking the write lock.

    One indexed lookup the first time a process sees a token, then none while the configuration
    generation (read once per transaction anyway) stays the same."""
    key = digest(secret)
    current = (
        config_cache.generation(connection)
        if isinstance(connection, Session)
        else config_cache.generation_on(connection)
    )
    entry = _live_tokens.get(key)
    if entry is not None and entry[0] == current:
        return entry[1]
    found = connection.execute(_TOKEN_AND_USER, {"digest": key}).first()
    if found is not None:
        with _tokens_lock:
            if len(_live_tokens) >= MAX_CACHED_TOKENS:
                _live_tokens.clear()
                _touched.clear()
            _live_tokens[key] = (current, found)
    return found


def token_user(session: Session, found: Row[Any]) -> TokenUser:
    """The user of a row from :func:`find_token`, in ``session`` without a query."""
    values = found._mapping
    user = held_by_session(session, User, values["id"])
    if user is None:
        user = attach_as_loaded(session, User, {key: values[key] for key in _USER_KEYS})
        session.expire(user, _NOT_CACHED_USER_KEYS)
    return TokenUser(user=user, token_id=values["token_id"])


def last_use_is_stale(found: Row[Any]) -> bool:
    """Whether the token's ``last_used_at`` should be touched (at most once a minute)."""
    values = found._mapping
    last_used_at = values["token_last_used_at"]
    touched = _touched.get(values["token_id"])
    if touched is not None and (last_used_at is None or touched > last_used_at):
        last_used_at = touched
    return last_used_at is None or clock.now() - last_used_at > LAST_USED_RESOLUTION


def touch_last_used(session: Session, token_id: int) -> None:
    """Best effort: a read request that cannot take SQLite's write lock right now skips it."""
    now = clock.now()
    try:
        with session.begin_nested():
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    except OperationalError:
        return
    _touched[token_id] = now


def user_for_token(session: Session, secret: str) -> TokenUser | None:
    """The active user behind a token, touching the token's ``last_used_at`` in ``session``
    when it is stale (see :func:`find_token`, :func:`token_user`)."""
    found = find_token(session, secret)
    if found is None:
        return None
    if last_use_is_stale(found):
        touch_last_used(session, found._mapping["token_id"])
    return token_user(session, found)


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


# ---------------------------------------------------------------- managing staff and groups

USER_FIELDS = frozenset(
    {
        "name",
        "role",
        "password",
        "time_zone",
        "languages",
        "skills",
        "capacity",
        "group_ids",
        "vendor",
        "seniority",
        "is_active",
        "availability",
    }
)


def list_users(
    session: Session, actor: Actor, *, role: str | None = None, active: bool | None = None
) -> list[User]:
    require(actor, Permission.USER_READ)
    statement = select(User).order_by(User.id)
    if role:
        statement = statement.where(User.role == role)
    if active is not None:
        statement = statement.where(User.is_active.is_(active))
    return list(session.scalars(statement))


def access_user(session: Session, actor: Actor, user_id: int) -> User:
    """A staff member: anyone with user.read, and everyone may see themselves."""
    if actor.user is None or actor.user.id != user_id:
        require(actor, Permission.USER_READ)
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


def update_user(session: Session, actor: Actor, user: User, values: Mapping[str, Any]) -> User:
    """Change a staff member. Admins change anyone; a user may change their own name, time zone,
    languages, availability and password. Deactivating ends their sessions and tokens' use."""
    own_fields = {"name", "time_zone", "languages", "availability", "password"}
    is_self = actor.user is not None and actor.user.id == user.id
    if not (is_self and set(values) <= own_fields):
        require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    for key in sorted(set(values) - USER_FIELDS):
        problems.append(FieldProblem((key,), "not a field of a user", "unknown_field"))
    cleaned: dict[str, Any] = {}
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name or len(name) > 200:
            problems.append(FieldProblem(("name",), "must be 1 to 200 characters"))
        cleaned["name"] = name
    if "role" in values:
        if values["role"] not in {member.value for member in Role}:
            problems.append(FieldProblem(("role",), "must be one of " + ", ".join(m.value for m in Role)))
        elif is_self and values["role"] != user.role:
            problems.append(FieldProblem(("role",), "you cannot change your own role"))
        cleaned["role"] = values["role"]
    if "is_active" in values:
        if is_self and not values["is_active"]:
            problems.append(FieldProblem(("is_active",), "you cannot deactivate yourself"))
        cleaned["is_active"] = bool(values["is_active"])
    if "password" in values:
        password = str(values["password"] or "")
        if len(password) < MIN_PASSWORD_LENGTH:
            problems.append(FieldProblem(("password",), f"must be at least {MIN_PASSWORD_LENGTH} characters"))
    if "capacity" in values:
        capacity = values["capacity"]
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            problems.append(FieldProblem(("capacity",), "must be a whole number, not negative"))
        cleaned["capacity"] = capacity
    if "availability" in values:
        if values["availability"] not in {member.value for member in Availability}:
            problems.append(
                FieldProblem(("availability",), "must be one of " + ", ".join(m.value for m in Availability))
            )
        cleaned["availability"] = values["availability"]
    for key in ("time_zone", "vendor", "seniority"):
        if key in values:
            cleaned[key] = values[key]
    if "time_zone" in cleaned:
        try:
            ZoneInfo(str(cleaned["time_zone"]))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(FieldProblem(("time_zone",), "not a known time zone"))
    for key in ("languages", "skills"):
        if key in values:
            cleaned[key] = sorted({str(item).strip() for item in values[key] or [] if str(item).strip()})
    group_ids: list[int] | None = None
    if "group_ids" in values:
        group_ids = sorted({int(item) for item in values["group_ids"] or []})
        for group_id in group_ids:
            if session.get(Group, group_id) is None:
                problems.append(FieldProblem(("group_ids",), f"group {group_id} does not exist"))
    if problems:
        raise ValidationFailedError("the user is not valid", fields=problems)
    changes: dict[str, tuple[Any, Any]] = {}
    for key, value in cleaned.items():
        if getattr(user, key) != value:
            changes[key] = (getattr(user, key), value)
            setattr(user, key, value)
    if "password" in values:
        user.password_hash = hash_password(str(values["password"]))
        changes["password"] = ("***", "***")
    if group_ids is not None and sorted(user.group_ids) != group_ids:
        changes["group_ids"] = (sorted(user.group_ids), group_ids)
        user.memberships = [m for m in user.memberships if m.group_id in group_ids] + [
            GroupMembership(group_id=group_id, user_id=user.id)
            for group_id in group_ids
            if group_id not in user.group_ids
        ]
    if not changes:
        return user
    session.flush()
    if changes.get("is_active", (None, True))[1] is False or "password" in changes:
        revoke_sessions_of(session, user.id)
    audit.record_changes(session, actor, entity_type="user", entity_id=user.id, changes=changes)
    return user


def list_groups(session: Session, actor: Actor) -> list[Group]:
    require(actor, Permission.TICKET_READ)
    return list(session.scalars(select(Group).order_by(Group.name)))


def access_group(session: Session, actor: Actor, group_id: int) -> Group:
    require(actor, Permission.TICKET_READ)
    group = session.get(Group, group_id)
    if group is None:
        raise NotFoundError(f"group {group_id} not found")
    return group


def group_member_ids(session: Session, group_ids: Sequence[int]) -> dict[int, list[int]]:
    """Member ids of several groups in one query."""
    members: dict[int, list[int]] = {group_id: [] for group_id in group_ids}
    if group_ids:
        rows = session.execute(
            select(GroupMembership.group_id, GroupMembership.user_id)
            .where(GroupMembership.group_id.in_(list(group_ids)))
            .order_by(GroupMembership.user_id)
        )
        for group_id, user_id in rows:
            members[group_id].append(user_id)
    return members


def update_group(session: Session, actor: Actor, group: Group, values: Mapping[str, Any]) -> Group:
    require(actor, Permission.GROUP_MANAGE)
    problems: list[FieldProblem] = []
    for key in sorted(set(values) - {"name", "description", "member_ids"}):
        problems.append(FieldProblem((key,), "not a field of a group", "unknown_field"))
    changes: dict[str, tuple[Any, Any]] = {}
    name = group.name
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name or len(name) > 120:
            problems.append(FieldProblem(("name",), "must be 1 to 120 characters"))
        else:
            clash = session.scalar(select(Group.id).where(Group.name == name))
            if clash is not None and clash != group.id:
                problems.append(FieldProblem(("name",), f"a group named {name} exists"))
    member_ids: list[int] | None = None
    if "member_ids" in values:
        member_ids = sorted({int(item) for item in values["member_ids"] or []})
        for user_id in member_ids:
            if session.get(User, user_id) is None:
                problems.append(FieldProblem(("member_ids",), f"user {user_id} does not exist"))
    if problems:
        raise ValidationFailedError("the group is not valid", fields=problems)
    if name != group.name:
        changes["name"] = (group.name, name)
        group.name = name
    if "description" in values and values["description"] != group.description:
        changes["description"] = (group.description, str(values["description"] or ""))
        group.description = str(values["description"] or "")
    if member_ids is not None:
        current = group_member_ids(session, [group.id])[group.id]
        if current != member_ids:
            changes["member_ids"] = (current, member_ids)
            group.memberships = [m for m in group.memberships if m.user_id in member_ids] + [
                GroupMembership(group_id=group.id, user_id=user_id)
                for user_id in member_ids
                if user_id not in current
            ]
    if changes:
        session.flush()
        session.expire_all()
        audit.record_changes(session, actor, entity_type="group", entity_id=group.id, changes=changes)
    return group


def delete_group(session: Session, actor: Actor, group: Group) -> None:
    """Delete a group; its tickets become ungrouped (their trail keeps the old group)."""
    require(actor, Permission.GROUP_MANAGE)
    audit.record(
        session, actor, entity_type="group", entity_id=group.id, action="deleted", old={"name": group.name}
    )
    session.delete(group)
    session.flush()


def list_tokens(session: Session, actor: Actor, user: User) -> list[ApiToken]:
    require(actor, Permission.TOKEN_OWN)
    if actor.user is not None and actor.user.id != user.id:
        require(actor, Permission.USER_MANAGE)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def user_by_email(session: Session, email: str) -> User:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise NotFoundError(f"no user with email {email.strip().lower()}")
    return user
