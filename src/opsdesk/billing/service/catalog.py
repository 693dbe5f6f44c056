"""Products, prices, billing customers and new subscriptions: the catalog and who buys from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing.enums import Interval, PaymentTerms, PricingModel, ProviderName, SubscriptionStatus
from opsdesk.billing.errors import BillingNotFoundError, InvalidBillingRequestError
from opsdesk.billing.events import SubscriptionChanged
from opsdesk.billing.models import BillingCustomer, BillingPrice, BillingProduct, Subscription
from opsdesk.billing.periods import add_interval
from opsdesk.errors import ConflictError, FieldProblem
from opsdesk.money import validate_currency
from opsdesk.tickets.models import Account, Person


def _choice(value: str, allowed: type[object], name: str, problems: list[FieldProblem]) -> None:
    values = {member.value for member in allowed}  # type: ignore[attr-defined]
    if value not in values:
        problems.append(FieldProblem((name,), "must be one of " + ", ".join(sorted(values))))


def _currency(value: str, problems: list[FieldProblem]) -> str:
    try:
        return validate_currency(value)
    except ValueError:
        problems.append(FieldProblem(("currency",), f"{value!r} is not an ISO 4217 currency code"))
        return value


def create_product(
    session: Session, actor: Actor, *, code: str, name: str, description: str = ""
) -> BillingProduct:
    require(actor, Permission.BILLING_WRITE)
    if not code.strip() or not name.strip():
        raise InvalidBillingRequestError(
            "the product is not valid",
            fields=[FieldProblem(("code" if not code.strip() else "name",), "must not be empty")],
        )
    if session.scalar(select(BillingProduct.id).where(BillingProduct.code == code.strip())) is not None:
        raise ConflictError(f"a product with code {code.strip()} already exists")
    product = BillingProduct(code=code.strip(), name=name.strip(), description=description)
    session.add(product)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="billing_product",
        entity_id=product.id,
        action="created",
        new={"code": product.code, "name": product.name},
    )
    return product


def create_price(
    session: Session,
    actor: Actor,
    product: BillingProduct,
    *,
    nickname: str,
    interval: str,
    pricing_model: str,
    unit_amount_minor: int,
    currency: str,
    stripe_price_id: str | None = None,
) -> BillingPrice:
    require(actor, Permission.BILLING_WRITE)
    problems: list[FieldProblem] = []
    _choice(interval, Interval, "interval", problems)
    _choice(pricing_model, PricingModel, "pricing_model", problems)
    code = _currency(currency, problems)
    if unit_amount_minor < 0:
        problems.append(FieldProblem(("unit_amount_minor",), "must not be negative"))
    if problems:
        raise InvalidBillingRequestError("the price is not valid", fields=problems)
    price = BillingPrice(
        product_id=product.id,
        nickname=nickname,
        interval=interval,
        pricing_model=pricing_model,
        unit_amount_minor=unit_amount_minor,
        currency=code,
        stripe_price_id=stripe_price_id,
    )
    session.add(price)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="billing_price",
        entity_id=price.id,
        action="created",
        new={"product": product.code, "amount_minor": unit_amount_minor, "currency": code},
    )
    return price


def create_customer(
    session: Session,
    actor: Actor,
    account: Account,
    *,
    email: str,
    currency: str,
    name: str | None = None,
    person: Person | None = None,
    provider: str = ProviderName.LOCAL.value,
    stripe_customer_id: str | None = None,
    payment_terms: str = PaymentTerms.CARD.value,
    po_number: str | None = None,
    card_brand: str | None = None,
    card_last4: str | None = None,
    tos_version: str | None = None,
    tos_accepted_at: datetime | None = None,
    tos_accepted_ip: str | None = None,
) -> BillingCustomer:
    require(actor, Permission.BILLING_WRITE)
    problems: list[FieldProblem] = []
    code = _currency(currency, problems)
    _choice(provider, ProviderName, "provider", problems)
    _choice(payment_terms, PaymentTerms, "payment_terms", problems)
    if "@" not in email:
        problems.append(FieldProblem(("email",), "not an email address"))
    if payment_terms != PaymentTerms.CARD and not (po_number or "").strip() and provider == "local":
        problems.append(FieldProblem(("po_number",), "net terms need a purchase order number"))
    if problems:
        raise InvalidBillingRequestError("the billing customer is not valid", fields=problems)
    customer = BillingCustomer(
        account_id=account.id,
        person_id=person.id if person is not None else None,
        name=name or account.name,
        email=email.strip().lower(),
        currency=code,
        provider=provider,
        stripe_customer_id=stripe_customer_id,
        payment_terms=payment_terms,
        po_number=po_number,
        card_brand=card_brand,
        card_last4=card_last4,
        card_state="valid",
        credit_balance_minor=0,
        tos_version=tos_version,
        tos_accepted_at=tos_accepted_at,
        tos_accepted_ip=tos_accepted_ip,
    )
    session.add(customer)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="billing_customer",
        entity_id=customer.id,
        action="created",
        new={"account_id": account.id, "currency": code, "provider": provider},
    )
    return customer


def create_subscription(
    session: Session,
    actor: Actor,
    customer: BillingCustomer,
    price: BillingPrice,
    *,
    seats: int = 1,
    start: datetime | None = None,
    trial_days: int = 0,
    stripe_subscription_id: str | None = None,
) -> Subscription:
    require(actor, Permission.BILLING_WRITE)
    problems: list[FieldProblem] = []
    if seats < 1:
        problems.append(FieldProblem(("seats",), "must be at least 1"))
    if price.currency != customer.currency:
        problems.append(
            FieldProblem(
                ("price_id",), f"the price is in {price.currency}, the customer pays in {customer.currency}"
            )
        )
    if not price.is_active:
        problems.append(FieldProblem(("price_id",), "the price is no longer sold"))
    if problems:
        raise InvalidBillingRequestError("the subscription is not valid", fields=problems)
    begin = start or clock.now()
    status = SubscriptionStatus.TRIALING if trial_days > 0 else SubscriptionStatus.ACTIVE
    subscription = Subscription(
        customer_id=customer.id,
        price_id=price.id,
        status=status.value,
        seats=seats,
        current_period_start=begin,
        current_period_end=add_interval(begin, price.interval),
        billing_cycle_anchor=begin,
        stripe_subscription_id=stripe_subscription_id,
    )
    session.add(subscription)
    session.flush()
    session.refresh(subscription)
    audit.record(
        session,
        actor,
        entity_type="subscription",
        entity_id=subscription.id,
        action="created",
        new={"price_id": price.id, "seats": seats, "status": status.value},
    )
    bus.publish(session, SubscriptionChanged(subscription.id, {"status": (None, status.value)}))
    return subscription


def get_price(session: Session, price_id: int) -> BillingPrice:
    price = session.get(BillingPrice, price_id)
    if price is None:
        raise InvalidBillingRequestError(
            "unknown price", fields=[FieldProblem(("price_id",), f"price {price_id} does not exist")]
        )
    return price


def customer_for_account(session: Session, account_id: int) -> BillingCustomer | None:
    return session.scalars(
        select(BillingCustomer).where(BillingCustomer.account_id == account_id).order_by(BillingCustomer.id)
    ).first()


def require_customer(session: Session, customer_id: int) -> BillingCustomer:
    customer = session.get(BillingCustomer, customer_id)
    if customer is None:
        raise BillingNotFoundError(f"billing customer {customer_id} not found")
    return customer
