"""Stripe webhooks: verified, stored verbatim before processing, processed once per event id.

:func:`receive_event` runs in its own transaction and only stores; :func:`process_event` runs
in the next one and updates opsdesk's mirror. A repeat delivery of a processed event changes
nothing; a failed one is retried by Stripe's next delivery (its stored row says why it failed).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.billing import webhook_signature
from opsdesk.billing.enums import PaymentStatus, RefundStatus, SubscriptionStatus, WebhookEventStatus
from opsdesk.billing.errors import WebhookSignatureError
from opsdesk.billing.failure_reasons import explain_failure
from opsdesk.billing.models import (
    BillingCustomer,
    Dispute,
    Invoice,
    InvoiceLine,
    Payment,
    Refund,
    StripeEvent,
    Subscription,
)
from opsdesk.billing.service import disputes, notices
from opsdesk.billing.service.disputes import STRIPE_ACTOR, DisputeFacts
from opsdesk.money import Money


def parse_verified(payload: bytes, signature_header: str | None, secret: str | None) -> dict[str, Any]:
    """The event, if the signature is good; :class:`WebhookSignatureError` (400) otherwise."""
    if not secret:
        raise WebhookSignatureError("webhooks are not configured: set OPSDESK_STRIPE_WEBHOOK_SECRET")
    try:
        webhook_signature.verify(payload, signature_header, secret, int(clock.now().timestamp()))
    except webhook_signature.SignatureError as error:
        raise WebhookSignatureError(str(error)) from error
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise WebhookSignatureError("the payload is not JSON") from error
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise WebhookSignatureError("the payload is not a Stripe event")
    return event


def receive_event(session: Session, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Store the event; ``(row, False)`` when this event id was already processed."""
    stored = session.scalars(select(StripeEvent).where(StripeEvent.event_id == event["id"])).first()
    if stored is not None:
        return stored, stored.status in (WebhookEventStatus.RECEIVED, WebhookEventStatus.FAILED)
    stored = StripeEvent(
        event_id=event["id"],
        event_type=event["type"],
        payload=event,
        status=WebhookEventStatus.RECEIVED.value,
        received_at=clock.now(),
    )
    session.add(stored)
    session.flush()
    return stored, True


def mark_failed(session: Session, event_id: str, error: str) -> None:
    stored = session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).one()
    stored.status = WebhookEventStatus.FAILED.value
    stored.error = error[:2000]
    session.flush()


def process_event(session: Session, event_id: str) -> str:
    stored = session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).one()
    if stored.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
        return stored.status
    handler = _HANDLERS.get(stored.event_type)
    obj: dict[str, Any] = stored.payload.get("data", {}).get("object", {})
    if handler is None:
        stored.status = WebhookEventStatus.IGNORED.value
    else:
        handler(session, obj)
        stored.status = WebhookEventStatus.PROCESSED.value
    stored.error = None
    stored.processed_at = clock.now()
    session.flush()
    return stored.status


def _instant(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if isinstance(value, int | float) else None


def _dispute_fee(obj: dict[str, Any]) -> int | None:
    transactions = obj.get("balance_transactions") or []
    if not transactions:
        return None
    return sum(int(item.get("fee", 0)) for item in transactions if isinstance(item, dict))


def _dispute_created(session: Session, obj: dict[str, Any]) -> None:
    facts = DisputeFacts(
        external_id=obj["id"],
        charge_ref=obj.get("charge") if isinstance(obj.get("charge"), str) else None,
        amount_minor=int(obj["amount"]),
        currency=str(obj["currency"]).upper(),
        reason=str(obj.get("reason") or "general"),
        status=str(obj["status"]),
        evidence_due_at=_instant((obj.get("evidence_details") or {}).get("due_by")),
        fee_amount_minor=_dispute_fee(obj) or 0,
    )
    disputes.open_dispute(session, STRIPE_ACTOR, facts, mirrored=True)


def _dispute_updated(session: Session, obj: dict[str, Any]) -> None:
    dispute = session.scalars(select(Dispute).where(Dispute.stripe_dispute_id == obj["id"])).first()
    if dispute is None:
        _dispute_created(session, obj)
        return
    disputes.update_from_provider(
        session,
        STRIPE_ACTOR,
        dispute,
        status=str(obj["status"]),
        evidence_due_at=_instant((obj.get("evidence_details") or {}).get("due_by")),
        fee_amount_minor=_dispute_fee(obj),
    )


def _customer(session: Session, reference: Any) -> BillingCustomer | None:
    if not isinstance(reference, str):
        return None
    return session.scalars(
        select(BillingCustomer).where(BillingCustomer.stripe_customer_id == reference)
    ).first()


def _invoice(session: Session, reference: Any) -> Invoice | None:
    if not isinstance(reference, str):
        return None
    return session.scalars(select(Invoice).where(Invoice.stripe_invoice_id == reference)).first()


def _charge(session: Session, obj: dict[str, Any]) -> None:
    """charge.succeeded / charge.failed: mirror the charge once."""
    if session.scalars(select(Payment.id).where(Payment.stripe_charge_id == obj["id"])).first() is not None:
        return
    customer = _customer(session, obj.get("customer"))
    if customer is None:
        return  # a charge for someone opsdesk does not bill; reconciliation reports it
    invoice = _invoice(session, obj.get("invoice"))
    card = ((obj.get("payment_method_details") or {}).get("card")) or {}
    succeeded = obj.get("status") == "succeeded"
    payment = Payment(
        customer_id=customer.id,
        invoice_id=invoice.id if invoice is not None else None,
        status=PaymentStatus.SUCCEEDED.value if succeeded else PaymentStatus.FAILED.value,
        amount_minor=int(obj["amount"]),
        currency=str(obj["currency"]).upper(),
        refunded_amount_minor=int(obj.get("amount_refunded") or 0),
        reserved_amount_minor=0,
        failure_code=obj.get("failure_code"),
        failure_message=obj.get("failure_message"),
        card_brand=card.get("brand"),
        card_last4=card.get("last4"),
        stripe_charge_id=obj["id"],
        created_at=_instant(obj.get("created")) or clock.now(),
    )
    session.add(payment)
    session.flush()
    audit.record(
        session,
        STRIPE_ACTOR,
        entity_type="payment",
        entity_id=payment.id,
        action="mirrored",
        new={"charge": obj["id"], "status": payment.status, "amount_minor": payment.amount_minor},
    )
    if not succeeded:
        ticket = notices.open_ticket_of(session, customer)
        if ticket is not None:
            notices.note_on_ticket(
                session,
                ticket,
                f"A card payment of {Money(payment.amount_minor, payment.currency).format()} failed. "
                f"In the customer's words: {explain_failure(payment.failure_code)}",
            )


def _charge_refunded(session: Session, obj: dict[str, Any]) -> None:
    payment = session.scalars(select(Payment).where(Payment.stripe_charge_id == obj["id"])).first()
    if payment is None:
        _charge(session, obj)
        return
    for item in (obj.get("refunds") or {}).get("data") or []:
        if not isinstance(item, dict) or item.get("status") != "succeeded":
            continue
        known = session.scalars(select(Refund.id).where(Refund.stripe_refund_id == item["id"])).first()
        if known is None:
            session.add(
                Refund(
                    payment_id=payment.id,
                    amount_minor=int(item["amount"]),
                    currency=payment.currency,
                    reason=str(item.get("reason") or "requested_by_customer"),
                    note="made at Stripe",
                    status=RefundStatus.SUCCEEDED.value,
                    requested_by_name="Stripe",
                    stripe_refund_id=item["id"],
                )
            )
    refunded = int(obj.get("amount_refunded") or 0)
    if refunded > payment.refunded_amount_minor:
        old = payment.refunded_amount_minor
        payment.refunded_amount_minor = min(refunded, payment.amount_minor)
        audit.record_changes(
            session,
            STRIPE_ACTOR,
            entity_type="payment",
            entity_id=payment.id,
            changes={"refunded_amount_minor": (old, payment.refunded_amount_minor)},
        )
    session.flush()


def _invoice_mirror(session: Session, obj: dict[str, Any]) -> Invoice | None:
    """Create or update the mirror of a Stripe invoice (Stripe's numbers are the truth)."""
    customer = _customer(session, obj.get("customer"))
    if customer is None or not isinstance(obj.get("id"), str):
        return None
    invoice = _invoice(session, obj["id"])
    subscription_ref = obj.get("subscription") or (
        ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    subscription = (
        session.scalars(
            select(Subscription).where(Subscription.stripe_subscription_id == subscription_ref)
        ).first()
        if isinstance(subscription_ref, str)
        else None
    )
    total = int(obj.get("total") or 0)
    paid = int(obj.get("amount_paid") or 0)
    due = int(obj.get("amount_due") or 0) - paid if obj.get("status") != "paid" else 0
    taxes = obj.get("tax")
    if taxes is None:
        taxes = sum(
            int(item.get("amount", 0)) for item in obj.get("total_taxes") or [] if isinstance(item, dict)
        )
    po_number = next(
        (
            str(field.get("value"))
            for field in obj.get("custom_fields") or []
            if isinstance(field, dict) and str(field.get("name", "")).upper() in {"PO", "PO NUMBER"}
        ),
        None,
    )
    values: dict[str, Any] = {
        "status": str(obj.get("status") or "draft"),
        "currency": str(obj.get("currency") or customer.currency).upper(),
        "subtotal_amount_minor": int(obj.get("subtotal") or 0),
        "tax_amount_minor": int(taxes or 0),
        "total_amount_minor": total,
        "amount_paid_minor": paid,
        "amount_due_minor": max(due, 0),
        "credit_applied_amount_minor": total - paid - max(due, 0),
        "payment_terms": "card" if obj.get("collection_method") != "send_invoice" else "net_30",
        "po_number": po_number,
        "period_start": _instant(obj.get("period_start")),
        "period_end": _instant(obj.get("period_end")),
        "due_at": _instant(obj.get("due_date")),
        "payment_attempts": int(obj.get("attempt_count") or 0),
    }
    if invoice is None:
        invoice = Invoice(
            number=str(obj.get("number") or obj["id"]),
            customer_id=customer.id,
            subscription_id=subscription.id if subscription is not None else None,
            stripe_invoice_id=obj["id"],
            issued_at=_instant(obj.get("created")) or clock.now(),
            reminders_sent=[],
            **values,
        )
        session.add(invoice)
        session.flush()
        for line in (obj.get("lines") or {}).get("data") or []:
            if not isinstance(line, dict):
                continue
            period = line.get("period") or {}
            session.add(
                InvoiceLine(
                    invoice_id=invoice.id,
                    subscription_id=invoice.subscription_id,
                    customer_id=customer.id,
                    kind="proration" if line.get("proration") else "subscription",
                    description=str(line.get("description") or "")[:500],
                    quantity=int(line.get("quantity") or 1),
                    amount_minor=int(line.get("amount") or 0),
                    currency=invoice.currency,
                    period_start=_instant(period.get("start")),
                    period_end=_instant(period.get("end")),
                )
            )
        session.flush()
        audit.record(
            session,
            STRIPE_ACTOR,
            entity_type="invoice",
            entity_id=invoice.id,
            action="mirrored",
            new={"stripe_invoice_id": obj["id"], "status": invoice.status, "total_minor": total},
        )
        return invoice
    changes = {
        name: (getattr(invoice, name), value)
        for name, value in values.items()
        if getattr(invoice, name) != value
    }
    for name, (_, value) in changes.items():
        setattr(invoice, name, value)
    if changes.get("status", (None, None))[1] == "paid" and invoice.paid_at is None:
        invoice.paid_at = _instant((obj.get("status_transitions") or {}).get("paid_at")) or clock.now()
    session.flush()
    if changes:
        audit.record_changes(
            session, STRIPE_ACTOR, entity_type="invoice", entity_id=invoice.id, changes=changes
        )
    return invoice


def _invoice_paid(session: Session, obj: dict[str, Any]) -> None:
    invoice = _invoice(session, obj.get("id"))
    if invoice is None:
        _invoice_mirror(session, obj)
        return
    if invoice.status == "paid":
        return
    from opsdesk.billing.service.invoicing import mark_paid

    mark_paid(
        session, STRIPE_ACTOR, invoice, max(int(obj.get("amount_paid") or 0) - invoice.amount_paid_minor, 0)
    )


def _invoice_payment_failed(session: Session, obj: dict[str, Any]) -> None:
    invoice = _invoice(session, obj.get("id"))
    if invoice is None:
        return
    invoice.payment_attempts = int(obj.get("attempt_count") or invoice.payment_attempts)
    invoice.next_payment_attempt_at = _instant(obj.get("next_payment_attempt"))
    session.flush()
    audit.record(
        session,
        STRIPE_ACTOR,
        entity_type="invoice",
        entity_id=invoice.id,
        action="payment_failed",
        new={"attempt": invoice.payment_attempts},
    )


def _subscription_updated(session: Session, obj: dict[str, Any]) -> None:
    subscription = session.scalars(
        select(Subscription).where(Subscription.stripe_subscription_id == obj["id"])
    ).first()
    if subscription is None:
        return
    items = (obj.get("items") or {}).get("data") or [{}]
    first = items[0] if items and isinstance(items[0], dict) else {}
    new_values: dict[str, Any] = {
        "status": str(obj.get("status") or subscription.status),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end", subscription.cancel_at_period_end)),
    }
    if isinstance(first.get("quantity"), int):
        new_values["seats"] = first["quantity"]
    start = _instant(obj.get("current_period_start", first.get("current_period_start")))
    end = _instant(obj.get("current_period_end", first.get("current_period_end")))
    if start is not None and end is not None:
        new_values["current_period_start"] = start
        new_values["current_period_end"] = end
    if new_values["status"] not in {member.value for member in SubscriptionStatus}:
        # Stripe's incomplete_expired and paused have no opsdesk status of their own.
        new_values["status"] = (
            SubscriptionStatus.CANCELED.value
            if new_values["status"] == "incomplete_expired"
            else subscription.status
        )
    changes = {
        name: (getattr(subscription, name), value)
        for name, value in new_values.items()
        if getattr(subscription, name) != value
    }
    if not changes:
        return
    for name, (_, value) in changes.items():
        setattr(subscription, name, value)
    if changes.get("status", (None, None))[1] == SubscriptionStatus.CANCELED.value:
        subscription.canceled_at = clock.now()
    session.flush()
    audit.record_changes(
        session, STRIPE_ACTOR, entity_type="subscription", entity_id=subscription.id, changes=changes
    )


_HANDLERS = {
    "charge.dispute.created": _dispute_created,
    "charge.dispute.updated": _dispute_updated,
    "charge.dispute.closed": _dispute_updated,
    "charge.dispute.funds_withdrawn": _dispute_updated,
    "charge.dispute.funds_reinstated": _dispute_updated,
    "charge.succeeded": _charge,
    "charge.failed": _charge,
    "charge.refunded": _charge_refunded,
    "invoice.created": _invoice_mirror,
    "invoice.finalized": _invoice_mirror,
    "invoice.updated": _invoice_mirror,
    "invoice.voided": _invoice_mirror,
    "invoice.marked_uncollectible": _invoice_mirror,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.deleted": _subscription_updated,
}
