"""Dunning: what happens after a card payment fails, until it is paid or the subscription ends.

Schedule in :mod:`opsdesk.billing.dunning_schedule`: ``past_due`` with retries, then ``unpaid``,
then canceled. Each failure emails the customer (through the outbox) and puts the reason, in
words a customer understands, on the account's open ticket as an internal note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.automation.models import Macro
from opsdesk.billing import dunning_schedule
from opsdesk.billing.bulk import table_of
from opsdesk.billing.enums import InvoiceStatus, ProviderName, SubscriptionStatus
from opsdesk.billing.events import PaymentFailed, SubscriptionCanceled
from opsdesk.billing.failure_reasons import explain_failure
from opsdesk.billing.models import BillingCustomer, Invoice, Payment, Subscription
from opsdesk.billing.providers import BillingProvider
from opsdesk.billing.service import notices
from opsdesk.money import Money
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Ticket


def record_failed_attempt(
    session: Session, actor: Actor, invoice: Invoice, failure_code: str | None, now: datetime
) -> None:
    """Count the failed attempt and move the subscription along the dunning schedule."""
    attempt = invoice.payment_attempts + 1
    invoice.payment_attempts = attempt
    invoice.last_failure_code = failure_code
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    first_failed_at = (subscription.past_due_since if subscription is not None else None) or now
    step = dunning_schedule.after_failed_attempt(attempt, first_failed_at)
    invoice.next_payment_attempt_at = step.retry_at
    reason = explain_failure(failure_code)
    if subscription is not None and subscription.status != step.next_status:
        old = subscription.status
        subscription.status = step.next_status
        if subscription.past_due_since is None:
            subscription.past_due_since = now
        session.flush()
        audit.record_changes(
            session,
            actor,
            entity_type="subscription",
            entity_id=subscription.id,
            changes={"status": (old, step.next_status)},
            reason=f"payment failed: {failure_code}",
        )
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="invoice",
        entity_id=invoice.id,
        action="payment_failed",
        new={
            "attempt": attempt,
            "failure_code": failure_code,
            "next_attempt_at": step.retry_at.isoformat() if step.retry_at else None,
        },
    )
    customer = invoice.customer
    amount = Money(invoice.amount_due_minor, invoice.currency).format()
    notices.email_customer(
        session,
        customer,
        step.email_template,
        idempotency_key=f"dunning:{invoice.id}:{attempt}",
        subject=f"Payment for invoice {invoice.number} failed",
        first_name=notices.first_name(customer),
        amount=amount,
        amount_minor=invoice.amount_due_minor,
        currency=invoice.currency,
        invoice=invoice.number,
        reason=reason,
        retry_on=f"{step.retry_at:%Y-%m-%d}" if step.retry_at else "-",
    )
    ticket = notices.open_ticket_of(session, customer)
    if ticket is not None:
        notices.note_on_ticket(
            session,
            ticket,
            f"Payment of {amount} for invoice {invoice.number} failed (attempt {attempt} of "
            f"{dunning_schedule.total_attempts()}). In the customer's words: {reason}",
        )
    payment_id = session.scalar(
        select(Payment.id).where(Payment.invoice_id == invoice.id).order_by(Payment.id.desc()).limit(1)
    )
    bus.publish(session, PaymentFailed(payment_id or 0, invoice.subscription_id, failure_code))


@dataclass(frozen=True, slots=True)
class FailedCharge:
    """A first charge attempt that failed during the invoice run."""

    invoice_number: str
    subscription_id: int
    customer_id: int
    amount_due_minor: int
    currency: str
    failure_code: str | None
    previous_status: str


def notify_failures(
    session: Session, actor: Actor, failures: list[FailedCharge], invoice_ids: dict[str, int], now: datetime
) -> None:
    """The side effects of first failures from the bulk invoice run (whose rows already carry the
    new statuses and retry times): audit rows, customer emails, notes on open tickets, events.
    Set-based like the run, with the same schedule and texts as :func:`record_failed_attempt`."""
    step = dunning_schedule.after_failed_attempt(1, now)
    customers = {
        customer.id: customer
        for customer in session.scalars(
            select(BillingCustomer).where(BillingCustomer.id.in_({item.customer_id for item in failures}))
        )
    }
    tickets_by_account: dict[int, int] = {}
    for ticket_id, account_id in session.execute(
        select(Ticket.id, Ticket.account_id)
        .where(
            Ticket.account_id.in_({customer.account_id for customer in customers.values()}),
            Ticket.status.in_(UNSOLVED_STATUSES),
        )
        .order_by(Ticket.updated_at, Ticket.id)
    ):
        if account_id is not None:
            tickets_by_account[account_id] = ticket_id  # the most recently updated wins
    payment_ids = {
        invoice_id: payment_id
        for payment_id, invoice_id in session.execute(
            select(Payment.id, Payment.invoice_id).where(
                Payment.invoice_id.in_([invoice_ids[item.invoice_number] for item in failures])
            )
        )
    }
    audit_rows: list[dict[str, object]] = []
    macros: dict[str, Macro | None] = {}
    for item in failures:
        invoice_id = invoice_ids[item.invoice_number]
        customer = customers[item.customer_id]
        reason = explain_failure(item.failure_code)
        amount = Money(item.amount_due_minor, item.currency).format()
        common = {
            "actor_kind": actor.kind.value,
            "actor_id": actor.actor_id,
            "actor_name": actor.name,
            "via": actor.via,
            "created_at": now,
        }
        audit_rows.append(
            {
                "entity_type": "invoice",
                "entity_id": invoice_id,
                "action": "payment_failed",
                "new_value": {
                    "attempt": 1,
                    "failure_code": item.failure_code,
                    "next_attempt_at": step.retry_at.isoformat() if step.retry_at else None,
                },
                **common,
            }
        )
        if item.previous_status != step.next_status:
            audit_rows.append(
                {
                    "entity_type": "subscription",
                    "entity_id": item.subscription_id,
                    "action": "updated",
                    "field": "status",
                    "old_value": item.previous_status,
                    "new_value": step.next_status,
                    "reason": f"payment failed: {item.failure_code}",
                    **common,
                }
            )
        notices.email_customer(
            session,
            customer,
            step.email_template,
            idempotency_key=f"dunning:{invoice_id}:1",
            subject=f"Payment for invoice {item.invoice_number} failed",
            macros=macros,
            first_name=notices.first_name(customer),
            amount=amount,
            amount_minor=item.amount_due_minor,
            currency=item.currency,
            invoice=item.invoice_number,
            reason=reason,
            retry_on=f"{step.retry_at:%Y-%m-%d}" if step.retry_at else "-",
        )
        open_ticket_id = tickets_by_account.get(customer.account_id)
        ticket = session.get(Ticket, open_ticket_id) if open_ticket_id is not None else None
        if ticket is not None:
            notices.note_on_ticket(
                session,
                ticket,
                f"Payment of {amount} for invoice {item.invoice_number} failed (attempt 1 of "
                f"{dunning_schedule.total_attempts()}). In the customer's words: {reason}",
            )
        bus.publish(
            session, PaymentFailed(payment_ids.get(invoice_id, 0), item.subscription_id, item.failure_code)
        )
    session.connection().execute(table_of(AuditEvent).insert(), audit_rows)
    session.flush()


def run_dunning(session: Session, actor: Actor, *, provider: BillingProvider | None = None) -> dict[str, int]:
    """Retry payments that are due and cancel subscriptions unpaid for too long."""
    from opsdesk.billing.service.invoicing import collect_invoice

    now = clock.now()
    retries = session.scalars(
        select(Invoice)
        .join(BillingCustomer, BillingCustomer.id == Invoice.customer_id)
        .where(
            Invoice.status == InvoiceStatus.OPEN.value,
            Invoice.next_payment_attempt_at.is_not(None),
            Invoice.next_payment_attempt_at <= now,
            BillingCustomer.provider == ProviderName.LOCAL.value,
        )
        .order_by(Invoice.id)
    ).all()
    paid = 0
    for invoice in retries:
        payment = collect_invoice(session, actor, invoice, provider=provider)
        paid += payment.status == "succeeded"
    retry_days = sum(dunning_schedule.RETRY_AFTER_DAYS)
    cutoff = now - timedelta(days=retry_days + dunning_schedule.CANCEL_AFTER_UNPAID_DAYS)
    overdue = session.scalars(
        select(Subscription).where(
            Subscription.status == SubscriptionStatus.UNPAID.value,
            Subscription.past_due_since.is_not(None),
            Subscription.past_due_since <= cutoff,
        )
    ).all()
    for subscription in overdue:
        subscription.status = SubscriptionStatus.CANCELED.value
        subscription.canceled_at = now
        open_invoices = session.scalars(
            select(Invoice).where(
                Invoice.subscription_id == subscription.id, Invoice.status == InvoiceStatus.OPEN.value
            )
        ).all()
        for invoice in open_invoices:
            invoice.status = InvoiceStatus.UNCOLLECTIBLE.value
            invoice.next_payment_attempt_at = None
        session.flush()
        audit.record_changes(
            session,
            actor,
            entity_type="subscription",
            entity_id=subscription.id,
            changes={"status": (SubscriptionStatus.UNPAID.value, SubscriptionStatus.CANCELED.value)},
            reason="unpaid after the dunning schedule",
        )
        notices.email_customer(
            session,
            subscription.customer,
            "subscription_canceled_unpaid",
            idempotency_key=f"dunning-cancel:{subscription.id}",
            subject="Your subscription was canceled",
            first_name=notices.first_name(subscription.customer),
            invoice=", ".join(invoice.number for invoice in open_invoices) or "-",
        )
        bus.publish(session, SubscriptionCanceled(subscription.id, at_period_end=False))
    return {"retried": len(retries), "paid": paid, "canceled": len(overdue)}


def failure_summary(session: Session, customer_id: int) -> str | None:
    """The latest failed payment's reason in customer words, while its invoice is still open."""
    row = session.execute(
        select(Payment.failure_code)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(
            Payment.customer_id == customer_id,
            Payment.status == "failed",
            Invoice.status == InvoiceStatus.OPEN.value,
        )
        .order_by(Payment.id.desc())
        .limit(1)
    ).first()
    return explain_failure(row[0]) if row is not None else None
