"""Brands: the addresses, names, signatures and receipt text the team answers under.

Invariants: a support address belongs to one brand; the receipt template may use only
``{name}``, ``{ticket_id}`` and ``{subject}`` (checked when saved, so sending never fails on it);
bad input raises with every problem and changes nothing; every change is audited.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels.errors import ChannelSettingNotFoundError, InvalidInboundError
from opsdesk.channels.models import EmailBrand
from opsdesk.errors import FieldProblem
from opsdesk.tickets.service.people import normalize_email

RECEIPT_PLACEHOLDERS = ("name", "ticket_id", "subject")
DEFAULT_RECEIPT = (
    "Hello {name},\n\n"
    'we received your request "{subject}" and opened ticket #{ticket_id}. '
    "Reply to this email to add to it.\n"
)


@dataclass(frozen=True, slots=True)
class BrandValues:
    name: str
    support_address: str
    from_name: str = ""
    from_address: str = ""
    signature: str = ""
    receipt_template: str = ""


def template_problem(template: str) -> str | None:
    """Why a receipt template cannot be used, or None."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        return f"is not a valid template: {error} (write {{{{ and }}}} for literal braces)"
    unknown = sorted({field for field in fields if field not in RECEIPT_PLACEHOLDERS})
    if unknown:
        allowed = ", ".join("{" + name + "}" for name in RECEIPT_PLACEHOLDERS)
        return (
            f"uses unknown placeholders {', '.join('{' + name + '}' for name in unknown)}; allowed: {allowed}"
        )
    return None


def render_receipt(template: str, *, name: str, ticket_id: int, subject: str) -> str:
    return (template or DEFAULT_RECEIPT).format(name=name, ticket_id=ticket_id, subject=subject)


def _clean(
    session: Session, values: BrandValues, brand_id: int | None
) -> tuple[BrandValues, list[FieldProblem]]:
    problems: list[FieldProblem] = []
    name = values.name.strip()
    if not name:
        problems.append(FieldProblem(("name",), "must not be empty"))
    elif len(name) > 120:
        problems.append(FieldProblem(("name",), "must be at most 120 characters"))
    else:
        other = session.scalar(select(EmailBrand.id).where(EmailBrand.name == name))
        if other is not None and other != brand_id:
            problems.append(FieldProblem(("name",), f"a brand named {name!r} exists"))
    support = ""
    try:
        support = normalize_email(values.support_address)
    except Exception:
        problems.append(FieldProblem(("support_address",), "is not an email address"))
    if support:
        other = session.scalar(select(EmailBrand.id).where(EmailBrand.support_address == support))
        if other is not None and other != brand_id:
            problems.append(FieldProblem(("support_address",), f"{support} belongs to another brand"))
    sender = ""
    if values.from_address.strip():
        try:
            sender = normalize_email(values.from_address)
        except Exception:
            problems.append(FieldProblem(("from_address",), "is not an email address"))
    if len(values.from_name.strip()) > 200:
        problems.append(FieldProblem(("from_name",), "must be at most 200 characters"))
    if values.receipt_template.strip():
        reason = template_problem(values.receipt_template)
        if reason is not None:
            problems.append(FieldProblem(("receipt_template",), reason))
    cleaned = BrandValues(
        name=name,
        support_address=support,
        from_name=values.from_name.strip() or name,
        from_address=sender,
        signature=values.signature.strip(),
        receipt_template=values.receipt_template.strip(),
    )
    return cleaned, problems


def _public(brand: EmailBrand) -> dict[str, str]:
    return {
        "name": brand.name,
        "support_address": brand.support_address,
        "from_address": brand.from_address,
        "from_name": brand.from_name,
        "signature": brand.signature,
        "receipt_template": brand.receipt_template,
    }


def create_brand(session: Session, actor: Actor, values: BrandValues) -> EmailBrand:
    require(actor, Permission.CHANNEL_MANAGE)
    cleaned, problems = _clean(session, values, None)
    if problems:
        raise InvalidInboundError("the brand is not valid", fields=problems)
    brand = EmailBrand(
        name=cleaned.name,
        support_address=cleaned.support_address,
        from_address=cleaned.from_address,
        from_name=cleaned.from_name,
        signature=cleaned.signature,
        receipt_template=cleaned.receipt_template,
    )
    session.add(brand)
    session.flush()
    audit.record(
        session, actor, entity_type="email_brand", entity_id=brand.id, action="created", new=_public(brand)
    )
    return brand


def add_brand(
    session: Session, actor: Actor, *, name: str, support_address: str, from_name: str, signature: str = ""
) -> EmailBrand:
    return create_brand(
        session,
        actor,
        BrandValues(name=name, support_address=support_address, from_name=from_name, signature=signature),
    )


def update_brand(session: Session, actor: Actor, brand_id: int, values: BrandValues) -> EmailBrand:
    require(actor, Permission.CHANNEL_MANAGE)
    brand = access_brand(session, actor, brand_id)
    cleaned, problems = _clean(session, values, brand.id)
    if problems:
        raise InvalidInboundError("the brand is not valid", fields=problems)
    before = _public(brand)
    brand.name = cleaned.name
    brand.support_address = cleaned.support_address
    brand.from_address = cleaned.from_address
    brand.from_name = cleaned.from_name
    brand.signature = cleaned.signature
    brand.receipt_template = cleaned.receipt_template
    session.flush()
    after = _public(brand)
    changed = {key: value for key, value in after.items() if before[key] != value}
    if changed:
        audit.record(
            session,
            actor,
            entity_type="email_brand",
            entity_id=brand.id,
            action="updated",
            old={key: before[key] for key in changed},
            new=changed,
        )
    return brand


def list_brands(session: Session, actor: Actor) -> list[EmailBrand]:
    require(actor, Permission.CHANNEL_READ)
    return list(session.scalars(select(EmailBrand).order_by(EmailBrand.name)))


def access_brand(session: Session, actor: Actor, brand_id: int) -> EmailBrand:
    require(actor, Permission.CHANNEL_READ)
    brand = session.get(EmailBrand, brand_id)
    if brand is None:
        raise ChannelSettingNotFoundError(f"brand {brand_id} does not exist")
    return brand


def brand_addresses(session: Session) -> list[str]:
    """Every brand's support address (the SMTP receiver accepts mail for them)."""
    return list(session.scalars(select(EmailBrand.support_address)))
