"""Finding and creating the people who write to support, and placing them in accounts.

Emails are stored lower-cased; a new person whose email domain belongs to an account joins it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, delete, exists, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, is_group_scoped, require
from opsdesk.direct_insert import attach_as_loaded, held_by_session, unattached
from opsdesk.errors import ConflictError, FieldProblem, NotFoundError, ValidationFailedError
from opsdesk.tickets.models import (
    Account,
    AccountDomain,
    Person,
    PersonAccount,
    PersonEmail,
    PersonExternalId,
    Ticket,
)


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    local, _, domain = cleaned.rpartition("@")
    if not local or not domain or "." not in domain or " " in cleaned:
        raise ValidationFailedError(
            f"{email!r} is not an email address", fields=[FieldProblem(("email",), "not an email address")]
        )
    return cleaned


def email_domain(email: str) -> str:
    return email.rpartition("@")[2]


# Plain Core statements on the tables (not the mapped classes): no ORM machinery. Built once:
# every new ticket runs these (building a statement costs more than running it).
_PEOPLE: Table = Person.__table__  # type: ignore[assignment]
_PERSON_EMAILS: Table = PersonEmail.__table__  # type: ignore[assignment]
_MATCHED_EMAIL = _PERSON_EMAILS.alias("matched_email")
# The person holding an email, with all their emails (one row each, in the collection's order):
# one statement where the ORM's load with its eager collection takes two and costs several times
# as much. The person's other collections load if someone asks.
_PERSON_BY_EMAIL = (
    select(
        *_PEOPLE.c,
        _PERSON_EMAILS.c.id.label("email_id"),
        _PERSON_EMAILS.c.email.label("email_address"),
        _PERSON_EMAILS.c.is_primary.label("email_is_primary"),
    )
    .select_from(
        _MATCHED_EMAIL.join(_PEOPLE, _PEOPLE.c.id == _MATCHED_EMAIL.c.person_id).join(
            _PERSON_EMAILS, _PERSON_EMAILS.c.person_id == _PEOPLE.c.id
        )
    )
    .where(_MATCHED_EMAIL.c.email == bindparam("email"))
    .order_by(_PERSON_EMAILS.c.id)
)
_PERSON_KEYS = tuple(column.key for column in _PEOPLE.c)
_ACCOUNT_FOR_DOMAIN = select(AccountDomain.account_id).where(AccountDomain.domain == bindparam("domain"))
# A new requester: the account that owns their email's domain is looked up inside the INSERT
# (one statement, one round trip, where the lookup and the INSERT took two).
_INSERT_PERSON = (
    insert(_PEOPLE)
    .values(primary_account_id=_ACCOUNT_FOR_DOMAIN.scalar_subquery())
    .returning(_PEOPLE.c.id, _PEOPLE.c.primary_account_id)
)
_DELETE_PERSON = delete(_PEOPLE).where(_PEOPLE.c.id == bindparam("person_id"))
_INSERT_EMAIL = {
    name: dialect.insert(_PERSON_EMAILS)
    .on_conflict_do_nothing(index_elements=["email"])
    .returning(_PERSON_EMAILS.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


def person_by_email(session: Session, email: str) -> Person | None:
    rows = session.execute(_PERSON_BY_EMAIL, {"email": normalize_email(email)}).all()
    if not rows:
        return None
    first = rows[0]._mapping
    person_id = first["id"]
    held = held_by_session(session, Person, person_id)
    if held is not None:
        return held  # with whatever this transaction changed on it
    emails = [
        unattached(
            PersonEmail,
            {
                "id": row.email_id,
                "person_id": person_id,
                "email": row.email_address,
                "is_primary": row.email_is_primary,
            },
        )
        for row in rows
    ]
    return attach_as_loaded(session, Person, {key: first[key] for key in _PERSON_KEYS}, emails=emails)


def account_id_for_domain(session: Session, domain: str) -> int | None:
    return session.scalar(_ACCOUNT_FOR_DOMAIN, {"domain": domain.lower()})


def find_or_create_person(
    session: Session, actor: Actor, email: str, name: str | None = None, *, language: str | None = None
) -> Person:
    """The person with this email, created (and placed in the domain's account) if new."""
    normalized = normalize_email(email)
    existing = person_by_email(session, normalized)
    if existing is not None:
        return existing
    display_name = (name or "").strip() or normalized.split("@", 1)[0]
    person = _insert_person(
        session,
        name=display_name[:200],
        language=language,
        domain=email_domain(normalized),
        email=normalized,
    )
    if person is None:
        # A concurrent request created this person first (PostgreSQL lets the email insert wait
        # for it, then skip the duplicate): use theirs.
        winner = person_by_email(session, normalized)
        if winner is None:
            raise ConflictError(f"the person with {normalized!r} was being created concurrently; retry")
        return winner
    audit.record(session, actor, entity_type="person", entity_id=person.id, action="created", new=normalized)
    return person


def _insert_person(
    session: Session, *, name: str, language: str | None, domain: str, email: str
) -> Person | None:
    """Insert a person (in the account of their email's ``domain``, if one has it) and their
    primary email with two Core statements, and hand the session the ORM object as if it had
    been loaded (no unit-of-work flush, no savepoint). None when another transaction holds the
    email: the person row is taken back."""
    now = clock.now()
    values: dict[str, Any] = {"name": name, "language": language, "created_at": now, "updated_at": now}
    person_id, values["primary_account_id"] = session.execute(
        _INSERT_PERSON, {**values, "domain": domain.lower()}
    ).one()
    email_id = session.execute(
        _INSERT_EMAIL[session.get_bind().dialect.name],
        {"person_id": person_id, "email": email, "is_primary": True},
    ).scalar()
    if email_id is None:
        session.execute(_DELETE_PERSON, {"person_id": person_id})
        return None
    entry = unattached(
        PersonEmail, {"id": email_id, "person_id": person_id, "email": email, "is_primary": True}
    )
    return attach_as_loaded(
        session,
        Person,
        {"id": person_id, "phone": None, "time_zone": None, **values},
        emails=[entry],
        external_ids=[],
        other_accounts=[],
    )


# ---------------------------------------------------------------- managing people

PERSON_FIELDS = frozenset(
    {"name", "emails", "phone", "language", "time_zone", "primary_account_id", "external_ids", "account_ids"}
)


def _person_visible_to_contractor(actor: Actor) -> Any:
    group_ids = actor.user.group_ids if actor.user is not None else []
    return exists().where(Ticket.requester_id == Person.id, Ticket.group_id.in_(group_ids or [-1]))


def access_person(session: Session, actor: Actor, person_id: int) -> Person:
    """The person if the actor may see them (contractors: requesters of their groups' tickets)."""
    require(actor, Permission.PEOPLE_READ)
    statement = select(Person).where(Person.id == person_id)
    if is_group_scoped(actor):
        statement = statement.where(_person_visible_to_contractor(actor))
    person = session.scalars(statement).first()
    if person is None:
        raise NotFoundError(f"person {person_id} not found")
    return person


def list_people(
    session: Session,
    actor: Actor,
    *,
    query: str | None = None,
    account_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Person]:
    require(actor, Permission.PEOPLE_READ)
    statement = select(Person).order_by(Person.id).limit(limit)
    if is_group_scoped(actor):
        statement = statement.where(_person_visible_to_contractor(actor))
    if query:
        needle = query.strip().lower()
        statement = statement.where(
            or_(
                func.lower(Person.name).contains(needle),
                Person.id.in_(select(PersonEmail.person_id).where(PersonEmail.email.contains(needle))),
            )
        )
    if account_id is not None:
        statement = statement.where(Person.primary_account_id == account_id)
    if after_id is not None:
        statement = statement.where(Person.id > after_id)
    return list(session.scalars(statement).unique())


def _validate_person(session: Session, values: Mapping[str, Any], person: Person | None) -> dict[str, Any]:
    problems: list[FieldProblem] = []
    for key in sorted(set(values) - PERSON_FIELDS):
        problems.append(FieldProblem((key,), "not a field of a person", "unknown_field"))
    cleaned: dict[str, Any] = {}
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name or len(name) > 200:
            problems.append(FieldProblem(("name",), "must be 1 to 200 characters"))
        cleaned["name"] = name
    if "emails" in values:
        emails: list[str] = []
        for index, raw in enumerate(values["emails"] or []):
            try:
                email = normalize_email(str(raw))
            except ValidationFailedError:
                problems.append(FieldProblem(("emails", index), "not an email address"))
                continue
            owner = session.scalar(select(PersonEmail.person_id).where(PersonEmail.email == email))
            if owner is not None and (person is None or owner != person.id):
                problems.append(FieldProblem(("emails", index), f"{email} belongs to person {owner}"))
            if email not in emails:
                emails.append(email)
        if not emails and not problems:
            problems.append(FieldProblem(("emails",), "at least one email is required"))
        cleaned["emails"] = emails
    for key, limit in (("phone", 40), ("language", 16), ("time_zone", 64)):
        if key in values:
            value = str(values[key]).strip() if values[key] else None
            if value is not None and len(value) > limit:
                problems.append(FieldProblem((key,), f"must be at most {limit} characters"))
            cleaned[key] = value
    if cleaned.get("time_zone"):
        try:
            ZoneInfo(cleaned["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(FieldProblem(("time_zone",), "not a known time zone"))
    if "primary_account_id" in values:
        account_id = values["primary_account_id"]
        if account_id is not None and session.get(Account, account_id) is None:
            problems.append(FieldProblem(("primary_account_id",), f"account {account_id} does not exist"))
        cleaned["primary_account_id"] = account_id
    if "account_ids" in values:
        account_ids = sorted({int(item) for item in values["account_ids"] or []})
        for account_id in account_ids:
            if session.get(Account, account_id) is None:
                problems.append(FieldProblem(("account_ids",), f"account {account_id} does not exist"))
        cleaned["account_ids"] = account_ids
    if "external_ids" in values:
        external: dict[str, str] = {}
        for system, external_id in dict(values["external_ids"] or {}).items():
            if not str(system).strip() or not str(external_id).strip():
                problems.append(FieldProblem(("external_ids", str(system)), "must not be empty"))
                continue
            owner = session.scalar(
                select(PersonExternalId.person_id).where(
                    PersonExternalId.system == str(system), PersonExternalId.external_id == str(external_id)
                )
            )
            if owner is not None and (person is None or owner != person.id):
                problems.append(FieldProblem(("external_ids", str(system)), f"belongs to person {owner}"))
            external[str(system)] = str(external_id)
        cleaned["external_ids"] = external
    if problems:
        raise ValidationFailedError("the person is not valid", fields=problems)
    return cleaned


def _apply_collections(person: Person, cleaned: dict[str, Any], changes: dict[str, tuple[Any, Any]]) -> None:
    if "emails" in cleaned:
        old = [entry.email for entry in person.emails]
        new = cleaned.pop("emails")
        if old != new:
            changes["emails"] = (old, new)
            kept = {entry.email: entry for entry in person.emails if entry.email in new}
            person.emails = [kept.get(email) or PersonEmail(email=email) for email in new]
            for index, entry in enumerate(person.emails):
                entry.is_primary = index == 0
    if "external_ids" in cleaned:
        old_ids = {entry.system: entry.external_id for entry in person.external_ids}
        new_ids = cleaned.pop("external_ids")
        if old_ids != new_ids:
            changes["external_ids"] = (old_ids, new_ids)
            person.external_ids = [
                PersonExternalId(system=system, external_id=value)
                for system, value in sorted(new_ids.items())
            ]
    if "account_ids" in cleaned:
        old_accounts = sorted(entry.account_id for entry in person.other_accounts)
        new_accounts = cleaned.pop("account_ids")
        if old_accounts != new_accounts:
            changes["account_ids"] = (old_accounts, new_accounts)
            person.other_accounts = [
                entry for entry in person.other_accounts if entry.account_id in new_accounts
            ] + [
                PersonAccount(account_id=account_id)
                for account_id in new_accounts
                if account_id not in old_accounts
            ]


def create_person(session: Session, actor: Actor, values: Mapping[str, Any]) -> Person:
    require(actor, Permission.PEOPLE_WRITE)
    if not values.get("emails"):
        raise ValidationFailedError(
            "the person is not valid", fields=[FieldProblem(("emails",), "is required")]
        )
    cleaned = _validate_person(session, values, None)
    if "name" not in cleaned:
        cleaned["name"] = cleaned["emails"][0].split("@", 1)[0]
    if "primary_account_id" not in cleaned:
        cleaned["primary_account_id"] = account_id_for_domain(session, email_domain(cleaned["emails"][0]))
    person = Person(
        name=cleaned.pop("name"),
        phone=cleaned.pop("phone", None),
        language=cleaned.pop("language", None),
        time_zone=cleaned.pop("time_zone", None),
        primary_account_id=cleaned.pop("primary_account_id"),
    )
    _apply_collections(person, cleaned, {})
    session.add(person)
    session.flush()
    audit.record(
        session, actor, entity_type="person", entity_id=person.id, action="created", new=person.primary_email
    )
    return person


def update_person(session: Session, actor: Actor, person: Person, values: Mapping[str, Any]) -> Person:
    require(actor, Permission.PEOPLE_WRITE)
    cleaned = _validate_person(session, values, person)
    changes: dict[str, tuple[Any, Any]] = {}
    _apply_collections(person, cleaned, changes)
    for key, value in cleaned.items():
        if getattr(person, key) != value:
            changes[key] = (getattr(person, key), value)
            setattr(person, key, value)
    if changes:
        session.flush()
        audit.record_changes(session, actor, entity_type="person", entity_id=person.id, changes=changes)
    return person


def delete_person(session: Session, actor: Actor, person: Person) -> None:
    """Delete a person who requested no tickets (erasure of requesters is the privacy domain's)."""
    require(actor, Permission.PEOPLE_WRITE)
    if session.scalar(select(Ticket.id).where(Ticket.requester_id == person.id).limit(1)) is not None:
        raise ConflictError(f"person {person.id} has tickets; they cannot be deleted")
    audit.record(
        session, actor, entity_type="person", entity_id=person.id, action="deleted", old=person.primary_email
    )
    session.delete(person)
    session.flush()
