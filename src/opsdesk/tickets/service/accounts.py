"""Accounts (customer companies): create, change, list, delete, with their email domains.

Invariants: an email domain belongs to at most one account; MRR is integer minor units with an
ISO currency; the owner is an active CSM, lead or admin. Contractors see only accounts with
tickets in their groups (anything else answers not-found) and never payment details (plan, MRR):
:func:`may_see_payment` tells the API what to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, has_permission, is_group_scoped, require
from opsdesk.errors import ConflictError, FieldProblem, NotFoundError, ValidationFailedError
from opsdesk.money import Money
from opsdesk.tickets.enums import AccountTier
from opsdesk.tickets.models import Account, AccountDomain, Person, Ticket

FIELDS = frozenset(
    {
        "name",
        "tier",
        "plan_name",
        "mrr_amount_minor",
        "currency",
        "renewal_on",
        "owner_id",
        "is_hot",
        "notes",
        "domains",
    }
)
OWNER_ROLES = frozenset({"csm", "lead", "admin"})


def may_see_payment(actor: Actor) -> bool:
    return has_permission(actor, Permission.PAYMENT_READ)


def _visible_to_contractor(actor: Actor) -> Any:
    group_ids = actor.user.group_ids if actor.user is not None else []
    return exists().where(Ticket.account_id == Account.id, Ticket.group_id.in_(group_ids or [-1]))


def access_account(session: Session, actor: Actor, account_id: int) -> Account:
    require(actor, Permission.ACCOUNT_READ)
    statement = select(Account).where(Account.id == account_id)
    if is_group_scoped(actor):
        statement = statement.where(_visible_to_contractor(actor))
    account = session.scalars(statement).first()
    if account is None:
        raise NotFoundError(f"account {account_id} not found")
    return account


def list_accounts(
    session: Session,
    actor: Actor,
    *,
    query: str | None = None,
    tier: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Account]:
    require(actor, Permission.ACCOUNT_READ)
    statement = select(Account).order_by(Account.id).limit(limit)
    if is_group_scoped(actor):
        statement = statement.where(_visible_to_contractor(actor))
    if query:
        statement = statement.where(func.lower(Account.name).contains(query.strip().lower()))
    if tier:
        statement = statement.where(Account.tier == tier)
    if after_id is not None:
        statement = statement.where(Account.id > after_id)
    return list(session.scalars(statement).unique())


def _validate(session: Session, values: Mapping[str, Any], account: Account | None) -> dict[str, Any]:
    problems: list[FieldProblem] = []
    unknown = set(values) - FIELDS
    for key in sorted(unknown):
        problems.append(FieldProblem((key,), "not a field of an account", "unknown_field"))
    cleaned: dict[str, Any] = {}
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name or len(name) > 200:
            problems.append(FieldProblem(("name",), "must be 1 to 200 characters"))
        cleaned["name"] = name
    if "tier" in values:
        if values["tier"] not in {member.value for member in AccountTier}:
            problems.append(
                FieldProblem(("tier",), "must be one of " + ", ".join(m.value for m in AccountTier))
            )
        cleaned["tier"] = values["tier"]
    if "plan_name" in values:
        cleaned["plan_name"] = (str(values["plan_name"]).strip() or None) if values["plan_name"] else None
    if "mrr_amount_minor" in values or "currency" in values:
        amount = values.get("mrr_amount_minor", account.mrr_amount_minor if account else 0)
        currency = values.get("currency", account.currency if account else "USD")
        try:
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise ValueError("must be a whole, non-negative number of minor units")
            money = Money(amount, str(currency))
            cleaned["mrr_amount_minor"] = money.amount_minor
            cleaned["currency"] = money.currency
        except (ValueError, TypeError) as error:
            field = "currency" if "currency" in str(error).lower() else "mrr_amount_minor"
            problems.append(FieldProblem((field,), str(error)))
    if "renewal_on" in values:
        raw = values["renewal_on"]
        if raw is None or isinstance(raw, date):
            cleaned["renewal_on"] = raw
        else:
            try:
                cleaned["renewal_on"] = date.fromisoformat(str(raw))
            except ValueError:
                problems.append(FieldProblem(("renewal_on",), "must be a date as YYYY-MM-DD"))
    if "owner_id" in values:
        owner_id = values["owner_id"]
        if owner_id is not None:
            owner = session.get(User, owner_id)
            if owner is None or not owner.is_active or owner.role not in OWNER_ROLES:
                problems.append(FieldProblem(("owner_id",), "must be an active CSM, lead or admin"))
        cleaned["owner_id"] = owner_id
    if "is_hot" in values:
        cleaned["is_hot"] = bool(values["is_hot"])
    if "notes" in values:
        cleaned["notes"] = str(values["notes"] or "")
    if "domains" in values:
        domains = sorted(
            {str(domain).strip().lower() for domain in values["domains"] or [] if str(domain).strip()}
        )
        for domain in domains:
            if "." not in domain or "@" in domain or " " in domain:
                problems.append(FieldProblem(("domains",), f"{domain} is not an email domain"))
            else:
                owner_account = session.scalar(
                    select(AccountDomain.account_id).where(AccountDomain.domain == domain)
                )
                if owner_account is not None and (account is None or owner_account != account.id):
                    problems.append(
                        FieldProblem(("domains",), f"{domain} belongs to account {owner_account}")
                    )
        cleaned["domains"] = domains
    if problems:
        raise ValidationFailedError("the account is not valid", fields=problems)
    return cleaned


def create_account(session: Session, actor: Actor, values: Mapping[str, Any]) -> Account:
    require(actor, Permission.ACCOUNT_WRITE)
    if "name" not in values:
        raise ValidationFailedError(
            "the account is not valid", fields=[FieldProblem(("name",), "is required")]
        )
    cleaned = _validate(session, values, None)
    domains: Sequence[str] = cleaned.pop("domains", [])
    account = Account(**cleaned)
    account.domains = [AccountDomain(domain=domain) for domain in domains]
    session.add(account)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="account",
        entity_id=account.id,
        action="created",
        new={"name": account.name},
    )
    return account


def update_account(session: Session, actor: Actor, account: Account, values: Mapping[str, Any]) -> Account:
    require(actor, Permission.ACCOUNT_WRITE)
    cleaned = _validate(session, values, account)
    changes: dict[str, tuple[Any, Any]] = {}
    if "domains" in cleaned:
        old_domains = sorted(entry.domain for entry in account.domains)
        new_domains = cleaned.pop("domains")
        if old_domains != new_domains:
            changes["domains"] = (old_domains, new_domains)
            account.domains = [entry for entry in account.domains if entry.domain in new_domains] + [
                AccountDomain(domain=domain) for domain in new_domains if domain not in old_domains
            ]
    for key, value in cleaned.items():
        if getattr(account, key) != value:
            changes[key] = (getattr(account, key), value)
            setattr(account, key, value)
    if changes:
        session.flush()
        audit.record_changes(session, actor, entity_type="account", entity_id=account.id, changes=changes)
    return account


def delete_account(session: Session, actor: Actor, account: Account) -> None:
    """Delete an account with no tickets; its people stay, without the account."""
    require(actor, Permission.ACCOUNT_WRITE)
    if session.scalar(select(Ticket.id).where(Ticket.account_id == account.id).limit(1)) is not None:
        raise ConflictError(f"account {account.id} has tickets; it cannot be deleted")
    session.query(Person).filter(Person.primary_account_id == account.id).update(
        {Person.primary_account_id: None}, synchronize_session=False
    )
    audit.record(
        session,
        actor,
        entity_type="account",
        entity_id=account.id,
        action="deleted",
        old={"name": account.name},
    )
    session.delete(account)
    session.flush()
