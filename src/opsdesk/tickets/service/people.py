"""Finding and creating the people who write to support, and placing them in accounts.

Emails are stored lower-cased; a new person whose email domain belongs to an account joins it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.errors import FieldProblem, ValidationFailedError
from opsdesk.tickets.models import AccountDomain, Person, PersonEmail


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


def person_by_email(session: Session, email: str) -> Person | None:
    normalized = normalize_email(email)
    return session.scalars(select(Person).join(PersonEmail).where(PersonEmail.email == normalized)).first()


def account_id_for_domain(session: Session, domain: str) -> int | None:
    return session.scalar(select(AccountDomain.account_id).where(AccountDomain.domain == domain.lower()))


def find_or_create_person(
    session: Session, actor: Actor, email: str, name: str | None = None, *, language: str | None = None
) -> Person:
    """The person with this email, created (and placed in the domain's account) if new."""
    normalized = normalize_email(email)
    existing = person_by_email(session, normalized)
    if existing is not None:
        return existing
    display_name = (name or "").strip() or normalized.split("@", 1)[0]
    person = Person(
        name=display_name[:200],
        language=language,
        primary_account_id=account_id_for_domain(session, email_domain(normalized)),
    )
    person.emails.append(PersonEmail(email=normalized, is_primary=True))
    session.add(person)
    session.flush()
    audit.record(session, actor, entity_type="person", entity_id=person.id, action="created", new=normalized)
    return person
