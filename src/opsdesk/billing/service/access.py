"""Loading billing objects for an actor: the only way a handler gets one.

Payment details (payments, invoices, refunds, disputes, cards) need ``payment.read``, which
contractors never hold; an object the actor may not see answers not-found or permission denied
before anything about it is revealed.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing.errors import BillingNotFoundError
from opsdesk.billing.models import (
    BillingCustomer,
    Dispute,
    Invoice,
    Payment,
    Refund,
    Subscription,
)
from opsdesk.db import Base

ModelT = TypeVar("ModelT", bound=Base)


def _load(session: Session, model: type[ModelT], object_id: int, label: str, for_update: bool) -> ModelT:
    # FOR UPDATE OF the object's own table: its eager-loaded relations are outer joins, which
    # PostgreSQL cannot lock. SQLite ignores it; its writers already hold the database lock.
    found = session.get(model, object_id, with_for_update={"of": model} if for_update else None)
    if found is None:
        raise BillingNotFoundError(f"{label} {object_id} not found")
    return found


def access_customer(session: Session, actor: Actor, customer_id: int) -> BillingCustomer:
    require(actor, Permission.ACCOUNT_READ)
    return _load(session, BillingCustomer, customer_id, "billing customer", False)


def access_subscription(
    session: Session, actor: Actor, subscription_id: int, *, for_update: bool = False
) -> Subscription:
    require(actor, Permission.ACCOUNT_READ)
    return _load(session, Subscription, subscription_id, "subscription", for_update)


def access_invoice(session: Session, actor: Actor, invoice_id: int, *, for_update: bool = False) -> Invoice:
    require(actor, Permission.PAYMENT_READ)
    return _load(session, Invoice, invoice_id, "invoice", for_update)


def access_payment(session: Session, actor: Actor, payment_id: int, *, for_update: bool = False) -> Payment:
    require(actor, Permission.PAYMENT_READ)
    return _load(session, Payment, payment_id, "payment", for_update)


def access_refund(session: Session, actor: Actor, refund_id: int, *, for_update: bool = False) -> Refund:
    require(actor, Permission.PAYMENT_READ)
    return _load(session, Refund, refund_id, "refund", for_update)


def access_dispute(session: Session, actor: Actor, dispute_id: int, *, for_update: bool = False) -> Dispute:
    require(actor, Permission.PAYMENT_READ)
    return _load(session, Dispute, dispute_id, "dispute", for_update)
