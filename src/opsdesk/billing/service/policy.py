"""Billing policy an admin sets in the product: refund limits by role and currency, where the
net of a plan change goes, and FX rates so reports can total in one currency.

Roles and refunds: agents, contractors and billing specialists issue refunds up to their role's
limit in the payment's currency (no limit row: everything needs approval); leads and admins
approve, so their refunds need no approval.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Role
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing.enums import ProrationBehavior
from opsdesk.billing.errors import InvalidBillingRequestError
from opsdesk.billing.models import BillingSetting, FxRate, RefundLimit
from opsdesk.errors import FieldProblem
from opsdesk.money import Money, minor_digits, validate_currency

REFUND_ROLES: frozenset[str] = frozenset({"agent", "contractor", "billing", "lead", "admin"})
APPROVER_ROLES: frozenset[str] = frozenset({"lead", "admin"})
LIMITED_ROLES: frozenset[str] = frozenset({"agent", "contractor", "billing"})
PRORATION_SETTING = "proration_behavior"
DISPUTE_MARGIN_SETTING = "dispute_deadline_margin_hours"
DEFAULT_DISPUTE_MARGIN_HOURS = 24
MAX_DISPUTE_MARGIN_HOURS = 24 * 14


def set_refund_limit(
    session: Session, actor: Actor, *, role: str, currency: str, limit_amount_minor: int
) -> RefundLimit:
    """Admins only: the largest refund ``role`` may issue without approval, in ``currency``."""
    require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    if role not in LIMITED_ROLES:
        problems.append(FieldProblem(("role",), "must be one of " + ", ".join(sorted(LIMITED_ROLES))))
    if limit_amount_minor < 0:
        problems.append(FieldProblem(("limit_amount_minor",), "must not be negative"))
    try:
        code = validate_currency(currency)
    except ValueError:
        problems.append(FieldProblem(("currency",), "not an ISO 4217 currency code"))
        code = currency
    if problems:
        raise InvalidBillingRequestError("the refund limit is not valid", fields=problems)
    row = session.scalars(
        select(RefundLimit).where(RefundLimit.role == role, RefundLimit.currency == code)
    ).first()
    old = row.limit_amount_minor if row is not None else None
    if row is None:
        row = RefundLimit(role=role, currency=code, limit_amount_minor=limit_amount_minor)
        session.add(row)
    else:
        row.limit_amount_minor = limit_amount_minor
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="refund_limit",
        entity_id=row.id,
        action="updated",
        field=f"{role}:{code}",
        old=old,
        new=limit_amount_minor,
    )
    return row


def refund_limit(session: Session, role: str | None, currency: str) -> int | None:
    """The actor's limit in minor units; ``0`` when the role has none for the currency."""
    if role is None:
        return None  # rules and integrations act within the call that runs them
    limit = session.scalar(
        select(RefundLimit.limit_amount_minor).where(
            RefundLimit.role == role, RefundLimit.currency == currency
        )
    )
    return int(limit) if limit is not None else 0


def proration_behavior(session: Session) -> str:
    value = session.scalar(select(BillingSetting.value).where(BillingSetting.key == PRORATION_SETTING))
    return value or ProrationBehavior.NEXT_INVOICE.value


def set_proration_behavior(session: Session, actor: Actor, value: str) -> None:
    require(actor, Permission.USER_MANAGE)
    allowed = {member.value for member in ProrationBehavior}
    if value not in allowed:
        raise InvalidBillingRequestError(
            "unknown proration behaviour",
            fields=[FieldProblem(("proration_behavior",), "must be one of " + ", ".join(sorted(allowed)))],
        )
    row = session.scalars(select(BillingSetting).where(BillingSetting.key == PRORATION_SETTING)).first()
    old = row.value if row is not None else None
    if row is None:
        session.add(BillingSetting(key=PRORATION_SETTING, value=value))
    else:
        row.value = value
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="billing_setting",
        entity_id=None,
        action="updated",
        field=PRORATION_SETTING,
        old=old,
        new=value,
    )


def dispute_deadline_margin_hours(session: Session) -> int:
    """How long before the bank's evidence deadline a dispute ticket is due (admin-set, 24 h)."""
    value = session.scalar(select(BillingSetting.value).where(BillingSetting.key == DISPUTE_MARGIN_SETTING))
    return int(value) if value is not None else DEFAULT_DISPUTE_MARGIN_HOURS


def set_dispute_deadline_margin_hours(session: Session, actor: Actor, hours: int) -> None:
    """Admins only: 0 to 336 hours (two weeks; Stripe gives 7 to 21 days to respond)."""
    require(actor, Permission.USER_MANAGE)
    if not 0 <= hours <= MAX_DISPUTE_MARGIN_HOURS:
        raise InvalidBillingRequestError(
            "the safety margin is not valid",
            fields=[
                FieldProblem(
                    ("dispute_deadline_margin_hours",), f"must be 0 to {MAX_DISPUTE_MARGIN_HOURS} hours"
                )
            ],
        )
    row = session.scalars(select(BillingSetting).where(BillingSetting.key == DISPUTE_MARGIN_SETTING)).first()
    old = int(row.value) if row is not None else None
    if row is None:
        session.add(BillingSetting(key=DISPUTE_MARGIN_SETTING, value=str(hours)))
    else:
        row.value = str(hours)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="billing_setting",
        entity_id=None,
        action="updated",
        field=DISPUTE_MARGIN_SETTING,
        old=old,
        new=hours,
    )


def billing_settings(session: Session, actor: Actor) -> dict[str, Any]:
    require(actor, Permission.PAYMENT_READ)
    return {
        "proration_behavior": proration_behavior(session),
        "dispute_deadline_margin_hours": dispute_deadline_margin_hours(session),
        "seller_country": session.scalar(
            select(BillingSetting.value).where(BillingSetting.key == "seller_country")
        ),
    }


def update_settings(
    session: Session,
    actor: Actor,
    *,
    proration_behavior: str | None = None,
    dispute_deadline_margin_hours: int | None = None,
    seller_country: str | None = None,
) -> None:
    """Change the given settings; all are validated before any is written."""
    require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    allowed = {member.value for member in ProrationBehavior}
    if proration_behavior is not None and proration_behavior not in allowed:
        problems.append(FieldProblem(("proration_behavior",), "must be one of " + ", ".join(sorted(allowed))))
    if dispute_deadline_margin_hours is not None and not (
        0 <= dispute_deadline_margin_hours <= MAX_DISPUTE_MARGIN_HOURS
    ):
        problems.append(
            FieldProblem(("dispute_deadline_margin_hours",), f"must be 0 to {MAX_DISPUTE_MARGIN_HOURS} hours")
        )
    if seller_country is not None and not (
        len(seller_country.strip()) == 2 and seller_country.strip().isalpha()
    ):
        problems.append(FieldProblem(("seller_country",), "a two-letter ISO 3166 country code"))
    if problems:
        raise InvalidBillingRequestError("the billing settings are not valid", fields=problems)
    if proration_behavior is not None:
        set_proration_behavior(session, actor, proration_behavior)
    if dispute_deadline_margin_hours is not None:
        set_dispute_deadline_margin_hours(session, actor, dispute_deadline_margin_hours)
    if seller_country is not None:
        from opsdesk.billing.service.taxes import set_seller_country

        set_seller_country(session, actor, seller_country)


def record_fx_rate(
    session: Session, actor: Actor, *, base: str, quote: str, rate: Decimal, on: date
) -> FxRate:
    require(actor, Permission.BILLING_WRITE)
    if rate <= 0:
        raise InvalidBillingRequestError(
            "the rate is not valid", fields=[FieldProblem(("rate",), "must be greater than zero")]
        )
    base_code, quote_code = validate_currency(base), validate_currency(quote)
    row = session.scalars(
        select(FxRate).where(
            FxRate.base_currency == base_code, FxRate.quote_currency == quote_code, FxRate.rate_on == on
        )
    ).first()
    if row is None:
        row = FxRate(base_currency=base_code, quote_currency=quote_code, rate=rate, rate_on=on)
        session.add(row)
    else:
        row.rate = rate
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="fx_rate",
        entity_id=row.id,
        action="updated",
        field=f"{base_code}/{quote_code}",
        new=str(rate),
    )
    return row


def convert(session: Session, amount: Money, to_currency: str, on: date) -> Money:
    """``amount`` in ``to_currency`` at the latest rate on or before ``on`` (direct or inverse)."""
    target = validate_currency(to_currency)
    if amount.currency == target:
        return amount
    rate = _rate(session, amount.currency, target, on)
    if rate is None:
        raise InvalidBillingRequestError(
            f"no FX rate from {amount.currency} to {target} on or before {on.isoformat()}",
            fields=[FieldProblem(("currency",), "record an FX rate first")],
        )
    major = amount.to_decimal() * rate
    quantum = Decimal(1).scaleb(-minor_digits(target))
    return Money.from_decimal(major.quantize(quantum, rounding=ROUND_HALF_EVEN), target)


def _rate(session: Session, base: str, quote: str, on: date) -> Decimal | None:
    direct = session.scalar(
        select(FxRate.rate)
        .where(FxRate.base_currency == base, FxRate.quote_currency == quote, FxRate.rate_on <= on)
        .order_by(FxRate.rate_on.desc())
        .limit(1)
    )
    if direct is not None:
        return Decimal(direct)
    inverse = session.scalar(
        select(FxRate.rate)
        .where(FxRate.base_currency == quote, FxRate.quote_currency == base, FxRate.rate_on <= on)
        .order_by(FxRate.rate_on.desc())
        .limit(1)
    )
    return Decimal(1) / Decimal(inverse) if inverse is not None else None


def is_approver(actor: Actor) -> bool:
    return actor.user is not None and actor.user.role in {Role.LEAD.value, Role.ADMIN.value}
