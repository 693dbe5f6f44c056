"""Cancel now (with a prorated refund or credit, or without) or at period end; pause; resume;
reactivate a subscription set to cancel at period end.

A cancellation now with a refund refunds the unused part of the period from the payment of the
current period's invoice, through :func:`issue_refund` so the refund rules and limits apply
(it may wait for a lead's approval); with a credit, the unused part goes to the balance.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing.enums import CancelMode, PaymentStatus, PricingModel, RefundReason, SubscriptionStatus
from opsdesk.billing.errors import InvalidBillingRequestError, SubscriptionChangeRefusedError
from opsdesk.billing.events import SubscriptionCanceled, SubscriptionChanged
from opsdesk.billing.models import CreditNote, Invoice, Payment, Refund, Subscription
from opsdesk.billing.proration import PricedQuantity, unused_amount_minor
from opsdesk.billing.providers import BillingProvider, provider_for
from opsdesk.billing.service import notices
from opsdesk.billing.service.invoicing import issue_credit
from opsdesk.billing.service.refunds import issue_refund
from opsdesk.errors import FieldProblem
from opsdesk.money import Money
from opsdesk.tickets.models import Ticket


@dataclass(frozen=True, slots=True)
class Cancellation:
    subscription: Subscription
    unused_amount_minor: int
    refund: Refund | None = None
    credit: CreditNote | None = None


def unused_value(subscription: Subscription) -> int:
    now = clock.now()
    if not subscription.current_period_start <= now < subscription.current_period_end:
        return 0
    price = subscription.price
    return unused_amount_minor(
        PricedQuantity(
            price.unit_amount_minor, subscription.seats, price.pricing_model == PricingModel.PER_SEAT
        ),
        int(subscription.current_period_start.timestamp()),
        int(subscription.current_period_end.timestamp()),
        int(now.timestamp()),
    )


def cancel_subscription(
    session: Session,
    actor: Actor,
    subscription: Subscription,
    *,
    mode: str,
    ticket: Ticket | None = None,
    provider: BillingProvider | None = None,
) -> Cancellation:
    require(actor, Permission.BILLING_WRITE)
    if mode not in {member.value for member in CancelMode}:
        raise InvalidBillingRequestError(
            "unknown cancellation mode",
            fields=[
                FieldProblem(("mode",), "must be one of " + ", ".join(member.value for member in CancelMode))
            ],
        )
    if subscription.status == SubscriptionStatus.CANCELED:
        raise SubscriptionChangeRefusedError(f"subscription {subscription.id} is already canceled")
    chosen = provider or provider_for(subscription.customer.provider)
    at_period_end = mode == CancelMode.AT_PERIOD_END
    key = f"opsdesk-cancel-{subscription.id}-{mode}"
    if at_period_end:
        if subscription.cancel_at_period_end:
            raise SubscriptionChangeRefusedError("the subscription already ends at period end")
        chosen.cancel_subscription(
            subscription_ref=subscription.stripe_subscription_id, at_period_end=True, idempotency_key=key
        )
        subscription.cancel_at_period_end = True
        session.flush()
        audit.record_changes(
            session,
            actor,
            entity_type="subscription",
            entity_id=subscription.id,
            changes={"cancel_at_period_end": (False, True)},
            ticket_id=ticket.id if ticket is not None else None,
        )
        bus.publish(session, SubscriptionCanceled(subscription.id, at_period_end=True))
        _tell(session, actor, ticket, subscription, at_period_end=True, unused=0, refund=None, credit=None)
        return Cancellation(subscription, 0)
    unused = unused_value(subscription) if subscription.status != SubscriptionStatus.TRIALING else 0
    refund: Refund | None = None
    credit: CreditNote | None = None
    if mode == CancelMode.NOW_WITH_REFUND and unused > 0:
        payment = _current_period_payment(session, subscription)
        if payment is None:
            raise SubscriptionChangeRefusedError(
                "no captured payment for the current period to refund; cancel with a credit instead"
            )
        refund = issue_refund(
            session,
            actor,
            payment,
            amount_minor=min(unused, payment.refundable_amount_minor),
            reason=RefundReason.CANCELLATION.value,
            ticket=ticket,
            provider=chosen,
        )
    elif mode == CancelMode.NOW_WITH_CREDIT and unused > 0:
        credit = issue_credit(
            session,
            actor,
            subscription.customer,
            amount_minor=unused,
            reason=f"Unused time on canceled subscription {subscription.id}",
            ticket_id=ticket.id if ticket is not None else None,
        )
    chosen.cancel_subscription(
        subscription_ref=subscription.stripe_subscription_id, at_period_end=False, idempotency_key=key
    )
    old = subscription.status
    subscription.status = SubscriptionStatus.CANCELED.value
    subscription.canceled_at = clock.now()
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="subscription",
        entity_id=subscription.id,
        changes={"status": (old, SubscriptionStatus.CANCELED.value)},
        ticket_id=ticket.id if ticket is not None else None,
        reason=f"{mode}; unused {unused}",
    )
    bus.publish(session, SubscriptionCanceled(subscription.id, at_period_end=False))
    _tell(
        session, actor, ticket, subscription, at_period_end=False, unused=unused, refund=refund, credit=credit
    )
    return Cancellation(subscription, unused, refund, credit)


def _tell(
    session: Session,
    actor: Actor,
    ticket: Ticket | None,
    subscription: Subscription,
    *,
    at_period_end: bool,
    unused: int,
    refund: Refund | None,
    credit: CreditNote | None,
) -> None:
    """The cancellation macro on the ticket the cancellation came from (nothing without one)."""
    if ticket is None:
        return
    currency = subscription.price.currency
    if at_period_end:
        when = f"ends on {subscription.current_period_end:%Y-%m-%d}, at the end of the period you paid for"
        money = "You keep full access until then and will not be charged again."
    else:
        when = "is canceled as of today"
        if refund is not None:
            money = f"We are refunding {Money(refund.amount_minor, currency).format()} for the unused time."
        elif credit is not None:
            credited = Money(credit.amount_minor, currency).format()
            money = f"The unused time, {credited}, is credited to your account."
        else:
            money = "No further charges will be made."
    amount_minor = (
        refund.amount_minor if refund is not None else credit.amount_minor if credit is not None else 0
    )
    notices.reply_on_ticket(
        session,
        actor,
        ticket,
        "subscription_canceled",
        customer=subscription.customer,
        plan=f"{subscription.price.product.name} ({subscription.price.nickname})",
        when=when,
        money=money,
        amount=Money(amount_minor, currency).format(),
        amount_minor=amount_minor,
        currency=currency,
        unused=Money(unused, currency).format(),
    )


def _current_period_payment(session: Session, subscription: Subscription) -> Payment | None:
    return session.scalars(
        select(Payment)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(
            Invoice.subscription_id == subscription.id,
            Payment.status == PaymentStatus.SUCCEEDED.value,
            Payment.refunded_amount_minor + Payment.reserved_amount_minor < Payment.amount_minor,
        )
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(1)
    ).first()


def set_paused(
    session: Session,
    actor: Actor,
    subscription: Subscription,
    *,
    paused: bool,
    provider: BillingProvider | None = None,
) -> Subscription:
    """Pause collection (no invoices while paused) or resume it."""
    require(actor, Permission.BILLING_WRITE)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise SubscriptionChangeRefusedError("a canceled subscription cannot be paused or resumed")
    if (subscription.paused_at is not None) == paused:
        raise SubscriptionChangeRefusedError(
            "the subscription is already " + ("paused" if paused else "running")
        )
    chosen = provider or provider_for(subscription.customer.provider)
    chosen.set_paused(
        subscription_ref=subscription.stripe_subscription_id,
        paused=paused,
        idempotency_key=f"opsdesk-pause-{subscription.id}-{paused}-{int(clock.now().timestamp())}",
    )
    old = subscription.paused_at
    subscription.paused_at = clock.now() if paused else None
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="subscription",
        entity_id=subscription.id,
        changes={"paused_at": (old, subscription.paused_at)},
    )
    bus.publish(session, SubscriptionChanged(subscription.id, {"paused": (not paused, paused)}))
    return subscription


def reactivate(
    session: Session, actor: Actor, subscription: Subscription, *, provider: BillingProvider | None = None
) -> Subscription:
    """Undo a cancellation at period end (as at Stripe, a canceled subscription stays canceled)."""
    require(actor, Permission.BILLING_WRITE)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise SubscriptionChangeRefusedError("a canceled subscription cannot be reactivated; start a new one")
    if not subscription.cancel_at_period_end:
        raise SubscriptionChangeRefusedError("the subscription is not set to cancel")
    chosen = provider or provider_for(subscription.customer.provider)
    chosen.undo_cancel_at_period_end(
        subscription_ref=subscription.stripe_subscription_id,
        idempotency_key=f"opsdesk-reactivate-{subscription.id}-{int(clock.now().timestamp())}",
    )
    subscription.cancel_at_period_end = False
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="subscription",
        entity_id=subscription.id,
        changes={"cancel_at_period_end": (True, False)},
    )
    bus.publish(session, SubscriptionChanged(subscription.id, {"cancel_at_period_end": (True, False)}))
    return subscription
