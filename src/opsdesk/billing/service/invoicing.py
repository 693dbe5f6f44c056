"""Invoices: the month-end run, invoicing pending proration now, enterprise invoices on net terms
with PO numbers and reminders, collection by card, and credit notes.

The month-end run works in set-based batches (one query for the due subscriptions, bulk inserts
for invoices, lines, payments and audit rows) so 100,000 subscriptions take seconds on SQLite;
a single subscription's renewal runs through exactly the same code with a one-element batch.
Stripe customers are invoiced by Stripe itself; opsdesk mirrors those through webhooks.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing import dunning_schedule, invoice_math, invoice_reminders, tax
from opsdesk.billing.bulk import insert_rows, table_of, update_rows
from opsdesk.billing.enums import (
    BILLABLE_STATUSES,
    InvoiceLineKind,
    InvoiceStatus,
    PaymentStatus,
    PaymentTerms,
    PricingModel,
    ProviderName,
    SubscriptionStatus,
)
from opsdesk.billing.errors import InvalidBillingRequestError
from opsdesk.billing.events import InvoiceFinalized
from opsdesk.billing.invoice_document import InvoiceDocument, render_invoice
from opsdesk.billing.models import (
    BillingCustomer,
    BillingPrice,
    BillingProduct,
    CreditNote,
    Invoice,
    InvoiceLine,
    Payment,
    Subscription,
)
from opsdesk.billing.periods import next_period_end
from opsdesk.billing.providers import BillingProvider, provider_for
from opsdesk.billing.service import notices
from opsdesk.billing.service.dunning import FailedCharge, notify_failures
from opsdesk.billing.service.taxes import TaxContext, location_of
from opsdesk.errors import FieldProblem
from opsdesk.money import Money

BATCH = 5_000


@dataclass(frozen=True, slots=True)
class RunResult:
    invoices: int
    paid: int
    failed: int
    canceled: int
    amount_by_currency: dict[str, int]


def _due_at(issued: datetime, terms: str) -> datetime:
    return issued + timedelta(days=PaymentTerms(terms).days)


def run_invoicing(
    session: Session,
    actor: Actor,
    *,
    subscription_ids: list[int] | None = None,
    provider: BillingProvider | None = None,
) -> RunResult:
    """Invoice every local-ledger subscription whose period has ended, advance its period and
    collect card payments. Subscriptions set to cancel at period end are canceled instead."""
    require(actor, Permission.BILLING_WRITE)
    now = clock.now()
    query = (
        select(
            Subscription.id,
            Subscription.customer_id,
            Subscription.status,
            Subscription.seats,
            Subscription.current_period_start,
            Subscription.current_period_end,
            Subscription.cancel_at_period_end,
            Subscription.price_id,
            BillingPrice.unit_amount_minor,
            BillingPrice.pricing_model,
            BillingPrice.interval,
            BillingPrice.currency,
            BillingPrice.nickname,
            BillingProduct.name,
            BillingCustomer.payment_terms,
            BillingCustomer.po_number,
            BillingCustomer.card_state,
            BillingCustomer.stripe_customer_id,
            BillingCustomer.card_brand,
            BillingCustomer.card_last4,
            Subscription.past_due_since,
            Subscription.billing_cycle_anchor,
            BillingCustomer.tax_country,
            BillingCustomer.tax_region,
            BillingCustomer.tax_exempt,
            BillingCustomer.vat_id,
        )
        .join(BillingPrice, BillingPrice.id == Subscription.price_id)
        .join(BillingProduct, BillingProduct.id == BillingPrice.product_id)
        .join(BillingCustomer, BillingCustomer.id == Subscription.customer_id)
        .where(
            Subscription.status.in_(BILLABLE_STATUSES),
            Subscription.current_period_end <= now,
            Subscription.paused_at.is_(None),
            BillingCustomer.provider == ProviderName.LOCAL.value,
        )
        .order_by(Subscription.id)
    )
    if subscription_ids is not None:
        query = query.where(Subscription.id.in_(subscription_ids))
    rows = list(session.execute(query))
    totals: dict[str, int] = defaultdict(int)
    result = RunResult(0, 0, 0, 0, totals)
    chosen = provider or provider_for(ProviderName.LOCAL.value)
    taxes = TaxContext.load(session)
    for start in range(0, len(rows), BATCH):
        result = _run_batch(session, actor, rows[start : start + BATCH], now, chosen, result, taxes)
    return result


def _run_batch(
    session: Session,
    actor: Actor,
    rows: list[Any],
    now: datetime,
    provider: BillingProvider,
    so_far: RunResult,
    taxes: TaxContext,
) -> RunResult:
    """One batch: compose invoices in memory, charge cards, then write everything with Core
    executemany (no per-row ORM work: 100,000 subscriptions must invoice in seconds)."""
    subscription_ids = [row.id for row in rows]
    customer_ids = sorted({row.customer_id for row in rows})
    pending: dict[int | None, list[tuple[int, int]]] = defaultdict(list)
    for line_id, subscription_id, amount in session.execute(
        select(InvoiceLine.id, InvoiceLine.subscription_id, InvoiceLine.amount_minor).where(
            InvoiceLine.invoice_id.is_(None), InvoiceLine.subscription_id.in_(subscription_ids)
        )
    ):
        pending[subscription_id].append((line_id, amount))
    balances: dict[int, int] = {}
    # A loop, not dict(result): a Result has keys() and would be taken for a mapping.
    for customer_id, balance in session.execute(
        select(BillingCustomer.id, BillingCustomer.credit_balance_minor).where(
            BillingCustomer.id.in_(customer_ids)
        )
    ):
        balances[customer_id] = balance
    starting_balances = dict(balances)
    invoice_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    payment_rows: list[dict[str, Any]] = []
    subscription_updates: list[dict[str, Any]] = []
    failures: list[FailedCharge] = []
    canceled = paid = 0
    first_retry = dunning_schedule.after_failed_attempt(1, now)
    decisions: dict[tuple[Any, ...], tuple[tax.Rate | None, str | None]] = {}
    pending_taxed: dict[int, tuple[int, int, int | None]] = {}
    for row in rows:
        if row.cancel_at_period_end:
            subscription_updates.append(
                {
                    "id": row.id,
                    "status": SubscriptionStatus.CANCELED.value,
                    "canceled_at": now,
                    "current_period_start": row.current_period_start,
                    "current_period_end": row.current_period_end,
                    "past_due_since": None,
                    "updated_at": now,
                }
            )
            canceled += 1
            continue
        period_start = row.current_period_end
        anchor = row.billing_cycle_anchor or row.current_period_start
        period_end = next_period_end(anchor, period_start, row.interval)
        quantity = row.seats if row.pricing_model == PricingModel.PER_SEAT else 1
        amount = row.unit_amount_minor * quantity
        description = f"{row.seats} x {row.name} ({row.nickname})"
        location = (row.tax_country, row.tax_region, row.tax_exempt, row.vat_id)
        decision = decisions.get(location)
        if decision is None:
            decision = decisions[location] = taxes.decide(tax.TaxLocation(*location), now.date())
        rate, tax_note = decision
        rate_id = rate.id if rate is not None else None
        taxed = tax.tax_line(amount, rate)
        line_amounts = [taxed.amount]
        tax_total = taxed.tax
        for line_id, pending_amount in pending.get(row.id, []):
            taxed_pending = tax.tax_line(pending_amount, rate)
            pending_taxed[line_id] = (taxed_pending.amount, taxed_pending.tax, rate_id)
            line_amounts.append(taxed_pending.amount)
            tax_total += taxed_pending.tax
        money = invoice_math.totals(line_amounts, tax=tax_total, credit_balance=balances[row.customer_id])
        balances[row.customer_id] += money.balance_change
        number = f"OD-{row.id}-{period_start:%Y%m%d}"
        status = InvoiceStatus.OPEN.value if money.amount_due > 0 else InvoiceStatus.PAID.value
        invoice = {
            "number": number,
            "customer_id": row.customer_id,
            "subscription_id": row.id,
            "status": status,
            "currency": row.currency,
            "subtotal_amount_minor": money.subtotal,
            "tax_amount_minor": money.tax,
            "total_amount_minor": money.total,
            "credit_applied_amount_minor": money.credit_applied,
            "amount_paid_minor": 0,
            "amount_due_minor": money.amount_due,
            "payment_terms": row.payment_terms,
            "po_number": row.po_number,
            "period_start": period_start,
            "period_end": period_end,
            "issued_at": now,
            "due_at": _due_at(now, row.payment_terms),
            "paid_at": now if money.amount_due == 0 else None,
            "payment_attempts": 0,
            "next_payment_attempt_at": None,
            "last_failure_code": None,
            "reminders_sent": [],
            "tax_note": tax_note,
            "created_at": now,
        }
        subscription_status = (
            SubscriptionStatus.ACTIVE.value if row.status == SubscriptionStatus.TRIALING else row.status
        )
        past_due_since = row.past_due_since
        if row.payment_terms == PaymentTerms.CARD and money.amount_due > 0:
            outcome = provider.charge(
                customer_ref=row.stripe_customer_id,
                invoice_ref=None,
                amount_minor=money.amount_due,
                currency=row.currency,
                card_state=row.card_state,
                idempotency_key=f"opsdesk-invoice-{number}-attempt-1",
            )
            payment_rows.append(
                {
                    "number": number,
                    "customer_id": row.customer_id,
                    "status": PaymentStatus.SUCCEEDED.value
                    if outcome.succeeded
                    else PaymentStatus.FAILED.value,
                    "amount_minor": money.amount_due,
                    "currency": row.currency,
                    "refunded_amount_minor": 0,
                    "reserved_amount_minor": 0,
                    "failure_code": outcome.failure_code,
                    "failure_message": outcome.failure_message,
                    "card_brand": row.card_brand,
                    "card_last4": row.card_last4,
                    "stripe_charge_id": outcome.external_id if outcome.succeeded else None,
                    "created_at": now,
                }
            )
            invoice["payment_attempts"] = 1
            if outcome.succeeded:
                invoice.update(
                    status=InvoiceStatus.PAID.value,
                    amount_paid_minor=money.amount_due,
                    amount_due_minor=0,
                    paid_at=now,
                )
                paid += 1
            else:
                invoice.update(
                    next_payment_attempt_at=first_retry.retry_at, last_failure_code=outcome.failure_code
                )
                subscription_status = first_retry.next_status
                past_due_since = past_due_since or now
                failures.append(
                    FailedCharge(
                        number,
                        row.id,
                        row.customer_id,
                        money.amount_due,
                        row.currency,
                        outcome.failure_code,
                        row.status,
                    )
                )
        invoice_rows.append(invoice)
        line_rows.append(
            {
                "number": number,
                "subscription_id": row.id,
                "customer_id": row.customer_id,
                "kind": InvoiceLineKind.SUBSCRIPTION.value,
                "description": description,
                "price_id": row.price_id,
                "quantity": quantity,
                "amount_minor": taxed.amount,
                "tax_amount_minor": taxed.tax,
                "tax_rate_id": rate_id,
                "currency": row.currency,
                "period_start": period_start,
                "period_end": period_end,
                "created_at": now,
            }
        )
        subscription_updates.append(
            {
                "id": row.id,
                "status": subscription_status,
                "canceled_at": None,
                "current_period_start": period_start,
                "current_period_end": period_end,
                "past_due_since": past_due_since,
                "updated_at": now,
            }
        )
    connection = session.connection()
    invoice_ids: dict[str, int] = {}
    if invoice_rows:
        insert_rows(connection, Invoice, invoice_rows)
        numbers = [invoice["number"] for invoice in invoice_rows]
        for start in range(0, len(numbers), 500):
            for invoice_id, number in session.execute(
                select(Invoice.id, Invoice.number).where(Invoice.number.in_(numbers[start : start + 500]))
            ):
                invoice_ids[number] = invoice_id
        for line in line_rows:
            line["invoice_id"] = invoice_ids[line.pop("number")]
        insert_rows(connection, InvoiceLine, line_rows)
        for payment in payment_rows:
            payment["invoice_id"] = invoice_ids[payment.pop("number")]
        if payment_rows:
            insert_rows(connection, Payment, payment_rows)
        by_subscription = {
            invoice["subscription_id"]: invoice_ids[invoice["number"]] for invoice in invoice_rows
        }
        pending_updates = [
            {
                "b_id": line_id,
                "invoice_id": by_subscription[subscription_id],
                "b_amount": pending_taxed[line_id][0],
                "b_tax": pending_taxed[line_id][1],
                "b_rate": pending_taxed[line_id][2],
            }
            for subscription_id, entries in pending.items()
            if subscription_id in by_subscription
            for line_id, _ in entries
        ]
        if pending_updates:
            lines_table = table_of(InvoiceLine)
            connection.execute(
                lines_table.update()
                .where(lines_table.c.id == bindparam("b_id"))
                .values(
                    invoice_id=bindparam("invoice_id"),
                    amount_minor=bindparam("b_amount"),
                    tax_amount_minor=bindparam("b_tax"),
                    tax_rate_id=bindparam("b_rate"),
                ),
                pending_updates,
            )
    update_rows(connection, Subscription, subscription_updates)
    changed_balances = [
        {"b_id": customer_id, "credit_balance_minor": balance}
        for customer_id, balance in balances.items()
        if balance != starting_balances[customer_id]
    ]
    if changed_balances:
        customers = table_of(BillingCustomer)
        connection.execute(
            customers.update()
            .where(customers.c.id == bindparam("b_id"))
            .values(credit_balance_minor=bindparam("credit_balance_minor")),
            changed_balances,
        )
    _audit_bulk(session, actor, "invoice", list(invoice_ids.values()), "issued")
    if failures:
        notify_failures(session, actor, failures, invoice_ids, now)
    totals = so_far.amount_by_currency
    for invoice in invoice_rows:
        totals[invoice["currency"]] += invoice["total_amount_minor"]
    session.expire_all()
    for invoice_id in invoice_ids.values():
        bus.publish(session, InvoiceFinalized(invoice_id))
    return RunResult(
        so_far.invoices + len(invoice_rows),
        so_far.paid + paid,
        so_far.failed + len(failures),
        so_far.canceled + canceled,
        totals,
    )


def _audit_bulk(session: Session, actor: Actor, entity_type: str, ids: list[int], action: str) -> None:
    if not ids:
        return
    now = clock.now()
    insert_rows(
        session.connection(),
        AuditEvent,
        [
            {
                "entity_type": entity_type,
                "entity_id": entity_id,
                "action": action,
                "actor_kind": actor.kind.value,
                "actor_id": actor.actor_id,
                "actor_name": actor.name,
                "via": actor.via,
                "created_at": now,
            }
            for entity_id in ids
        ],
    )


def collect_invoice(
    session: Session, actor: Actor, invoice: Invoice, *, provider: BillingProvider | None = None
) -> Payment:
    """Charge the customer's card for what the invoice still owes (first attempt or a retry)."""
    require(actor, Permission.BILLING_WRITE)
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due_minor <= 0:
        raise InvalidBillingRequestError(
            f"invoice {invoice.number} owes nothing", fields=[FieldProblem(("invoice_id",), "not open")]
        )
    customer = invoice.customer
    chosen = provider or provider_for(customer.provider)
    attempt = invoice.payment_attempts + 1
    outcome = chosen.charge(
        customer_ref=customer.stripe_customer_id,
        invoice_ref=invoice.stripe_invoice_id,
        amount_minor=invoice.amount_due_minor,
        currency=invoice.currency,
        card_state=customer.card_state,
        idempotency_key=f"opsdesk-invoice-{invoice.id}-attempt-{attempt}",
    )
    now = clock.now()
    payment = Payment(
        customer_id=customer.id,
        invoice_id=invoice.id,
        status=PaymentStatus.SUCCEEDED.value if outcome.succeeded else PaymentStatus.FAILED.value,
        amount_minor=invoice.amount_due_minor,
        currency=invoice.currency,
        refunded_amount_minor=0,
        reserved_amount_minor=0,
        failure_code=outcome.failure_code,
        failure_message=outcome.failure_message,
        card_brand=customer.card_brand,
        card_last4=customer.card_last4,
        stripe_charge_id=outcome.external_id if outcome.succeeded else None,
        created_at=now,
    )
    session.add(payment)
    session.flush()
    if outcome.succeeded:
        mark_paid(session, actor, invoice, payment.amount_minor, attempts=attempt)
    else:
        from opsdesk.billing.service.dunning import record_failed_attempt

        invoice.payment_attempts = attempt - 1
        record_failed_attempt(session, actor, invoice, outcome.failure_code, now)
    return payment


def mark_paid(
    session: Session, actor: Actor, invoice: Invoice, amount_minor: int, *, attempts: int | None = None
) -> None:
    now = clock.now()
    invoice.amount_paid_minor += amount_minor
    invoice.amount_due_minor = (
        invoice.total_amount_minor - invoice.credit_applied_amount_minor - invoice.amount_paid_minor
    )
    if invoice.amount_due_minor <= 0:
        invoice.amount_due_minor = 0
        invoice.status = InvoiceStatus.PAID.value
        invoice.paid_at = now
        invoice.next_payment_attempt_at = None
    if attempts is not None:
        invoice.payment_attempts = attempts
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="invoice",
        entity_id=invoice.id,
        action="payment_recorded",
        new={"amount_minor": amount_minor, "status": invoice.status},
    )
    if invoice.status == InvoiceStatus.PAID and invoice.subscription_id is not None:
        subscription = session.get(Subscription, invoice.subscription_id)
        if subscription is not None and subscription.status in (
            SubscriptionStatus.PAST_DUE.value,
            SubscriptionStatus.UNPAID.value,
        ):
            old = subscription.status
            subscription.status = SubscriptionStatus.ACTIVE.value
            subscription.past_due_since = None
            session.flush()
            audit.record_changes(
                session,
                actor,
                entity_type="subscription",
                entity_id=subscription.id,
                changes={"status": (old, subscription.status)},
                reason="invoice paid",
            )


def record_bank_payment(
    session: Session, actor: Actor, invoice: Invoice, *, amount_minor: int, reference: str
) -> Payment:
    """A wire or cheque for an invoice on net terms."""
    require(actor, Permission.BILLING_WRITE)
    if invoice.status != InvoiceStatus.OPEN:
        raise InvalidBillingRequestError(
            f"invoice {invoice.number} is {invoice.status}",
            fields=[FieldProblem(("invoice_id",), "not open")],
        )
    if amount_minor <= 0 or amount_minor > invoice.amount_due_minor:
        raise InvalidBillingRequestError(
            "the amount is not valid",
            fields=[FieldProblem(("amount_minor",), f"must be between 1 and {invoice.amount_due_minor}")],
        )
    payment = Payment(
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
        status=PaymentStatus.SUCCEEDED.value,
        amount_minor=amount_minor,
        currency=invoice.currency,
        refunded_amount_minor=0,
        reserved_amount_minor=0,
        failure_message=None,
        stripe_charge_id=None,
        created_at=clock.now(),
    )
    session.add(payment)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="payment",
        entity_id=payment.id,
        action="bank_payment_recorded",
        new={"invoice": invoice.number, "amount_minor": amount_minor, "reference": reference},
    )
    mark_paid(session, actor, invoice, amount_minor)
    return payment


@dataclass(frozen=True, slots=True)
class ManualLine:
    description: str
    quantity: int
    unit_amount_minor: int


def create_invoice(
    session: Session,
    actor: Actor,
    customer: BillingCustomer,
    *,
    lines: list[ManualLine],
    tax_amount_minor: int | None = None,
    po_number: str | None = None,
    payment_terms: str | None = None,
    include_pending_for: Subscription | None = None,
) -> Invoice:
    """An invoice now: enterprise seats on net terms with a PO, one-off charges, or pending
    proration lines invoiced immediately. Card-terms invoices are collected right away.
    Tax is computed per line from the customer's tax location (``tax_amount_minor=None``), or
    given by hand for the whole invoice."""
    require(actor, Permission.BILLING_WRITE)
    terms = payment_terms or customer.payment_terms
    problems: list[FieldProblem] = []
    if customer.provider != ProviderName.LOCAL:
        # Stripe invoices its own customers; opsdesk mirrors those invoices through webhooks.
        problems.append(
            FieldProblem(("customer_id",), "this customer is billed by Stripe: invoice them in Stripe")
        )
    if terms not in {member.value for member in PaymentTerms}:
        problems.append(FieldProblem(("payment_terms",), "unknown payment terms"))
    elif terms != PaymentTerms.CARD and not (po_number or customer.po_number):
        problems.append(FieldProblem(("po_number",), "net terms need a purchase order number"))
    if tax_amount_minor is not None and tax_amount_minor < 0:
        problems.append(FieldProblem(("tax_amount_minor",), "must not be negative"))
    for index, line in enumerate(lines):
        if line.quantity < 1:
            problems.append(FieldProblem(("lines", index, "quantity"), "must be at least 1"))
        if not line.description.strip():
            problems.append(FieldProblem(("lines", index, "description"), "must not be empty"))
    pending: list[InvoiceLine] = []
    if include_pending_for is not None:
        pending = list(
            session.scalars(
                select(InvoiceLine).where(
                    InvoiceLine.invoice_id.is_(None), InvoiceLine.subscription_id == include_pending_for.id
                )
            )
        )
    if not lines and not pending:
        problems.append(FieldProblem(("lines",), "an invoice needs at least one line"))
    if problems:
        raise InvalidBillingRequestError("the invoice is not valid", fields=problems)
    now = clock.now()
    raw = [line.quantity * line.unit_amount_minor for line in lines] + [line.amount_minor for line in pending]
    rate: tax.Rate | None = None
    tax_note: str | None = None
    if tax_amount_minor is None:
        rate, tax_note = TaxContext.load(session).decide(location_of(customer), now.date())
    taxed = [tax.tax_line(amount, rate) for amount in raw]
    money = invoice_math.totals(
        [item.amount for item in taxed],
        tax=sum(item.tax for item in taxed) if tax_amount_minor is None else tax_amount_minor,
        credit_balance=customer.credit_balance_minor,
    )
    invoice = Invoice(
        number=f"OD-C{customer.id}-{now:%Y%m%d}-{secrets.token_hex(3)}",
        customer_id=customer.id,
        subscription_id=include_pending_for.id if include_pending_for is not None else None,
        status=InvoiceStatus.OPEN.value if money.amount_due > 0 else InvoiceStatus.PAID.value,
        currency=customer.currency,
        subtotal_amount_minor=money.subtotal,
        tax_amount_minor=money.tax,
        total_amount_minor=money.total,
        credit_applied_amount_minor=money.credit_applied,
        amount_paid_minor=0,
        amount_due_minor=money.amount_due,
        payment_terms=terms,
        po_number=po_number or customer.po_number,
        issued_at=now,
        due_at=_due_at(now, terms),
        paid_at=now if money.amount_due == 0 else None,
        reminders_sent=[],
        tax_note=tax_note,
    )
    session.add(invoice)
    session.flush()
    rate_id = rate.id if rate is not None else None
    for line, taxed_line in zip(lines, taxed, strict=False):
        session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                customer_id=customer.id,
                kind=InvoiceLineKind.ONE_OFF.value,
                description=line.description.strip(),
                quantity=line.quantity,
                amount_minor=taxed_line.amount,
                tax_amount_minor=taxed_line.tax,
                tax_rate_id=rate_id,
                currency=customer.currency,
            )
        )
    for pending_line, taxed_line in zip(pending, taxed[len(lines) :], strict=True):
        pending_line.invoice_id = invoice.id
        pending_line.amount_minor = taxed_line.amount
        pending_line.tax_amount_minor = taxed_line.tax
        pending_line.tax_rate_id = rate_id
    session.execute(
        update(BillingCustomer)
        .where(BillingCustomer.id == customer.id)
        .values(credit_balance_minor=BillingCustomer.credit_balance_minor + money.balance_change)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.refresh(customer)
    session.refresh(invoice)
    audit.record(
        session,
        actor,
        entity_type="invoice",
        entity_id=invoice.id,
        action="issued",
        new={
            "number": invoice.number,
            "total_minor": money.total,
            "terms": terms,
            "po_number": invoice.po_number,
        },
    )
    bus.publish(session, InvoiceFinalized(invoice.id))
    if terms == PaymentTerms.CARD and invoice.amount_due_minor > 0:
        collect_invoice(session, actor, invoice)
    return invoice


def invoice_pending_lines(
    session: Session, actor: Actor, customer: BillingCustomer, *, subscription: Subscription
) -> Invoice:
    return create_invoice(session, actor, customer, lines=[], include_pending_for=subscription)


def issue_credit(
    session: Session,
    actor: Actor,
    customer: BillingCustomer,
    *,
    amount_minor: int,
    reason: str,
    ticket_id: int | None = None,
    invoice_id: int | None = None,
) -> CreditNote:
    """Credit the customer's balance; the next invoices use it before charging the card."""
    require(actor, Permission.BILLING_WRITE)
    if amount_minor <= 0 or not reason.strip():
        raise InvalidBillingRequestError(
            "the credit is not valid",
            fields=[
                FieldProblem(
                    ("amount_minor" if amount_minor <= 0 else "reason",),
                    "must be greater than zero" if amount_minor <= 0 else "must not be empty",
                )
            ],
        )
    note = CreditNote(
        customer_id=customer.id,
        invoice_id=invoice_id,
        amount_minor=amount_minor,
        currency=customer.currency,
        reason=reason.strip(),
        ticket_id=ticket_id,
    )
    session.add(note)
    session.execute(
        update(BillingCustomer)
        .where(BillingCustomer.id == customer.id)
        .values(credit_balance_minor=BillingCustomer.credit_balance_minor + amount_minor)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.refresh(customer)
    audit.record(
        session,
        actor,
        entity_type="credit_note",
        entity_id=note.id,
        action="issued",
        new={"customer_id": customer.id, "amount_minor": amount_minor},
        ticket_id=ticket_id,
        reason=reason.strip(),
    )
    return note


def send_invoice_reminders(session: Session, actor: Actor) -> int:
    """Remind customers on net terms before and after due dates; each stage is sent once."""
    now = clock.now()
    invoices = session.scalars(
        select(Invoice).where(
            Invoice.status == InvoiceStatus.OPEN.value,
            Invoice.payment_terms != PaymentTerms.CARD.value,
            Invoice.due_at.is_not(None),
            Invoice.due_at <= now + timedelta(days=7),
        )
    ).all()
    sent = 0
    for invoice in invoices:
        assert invoice.due_at is not None
        stage = invoice_reminders.due_reminder(invoice.due_at, list(invoice.reminders_sent or []), now)
        if stage is None:
            continue
        key = (
            "invoice_reminder_after"
            if invoice_reminders.is_overdue_stage(stage)
            else "invoice_reminder_before"
        )
        notices.email_customer(
            session,
            invoice.customer,
            key,
            idempotency_key=f"invoice-reminder:{invoice.id}:{stage}",
            subject=f"Invoice {invoice.number}",
            invoice=invoice.number,
            amount=Money(invoice.amount_due_minor, invoice.currency).format(),
            po_number=invoice.po_number or "-",
            due_on=f"{invoice.due_at:%Y-%m-%d}",
        )
        invoice.reminders_sent = [*list(invoice.reminders_sent or []), stage]
        audit.record(
            session,
            actor,
            entity_type="invoice",
            entity_id=invoice.id,
            action="reminder_sent",
            new={"stage": stage},
        )
        sent += 1
    session.flush()
    return sent


def invoice_balances(invoice: Invoice) -> bool:
    return invoice_math.balances(
        [line.amount_minor for line in invoice.lines],
        subtotal=invoice.subtotal_amount_minor,
        tax=invoice.tax_amount_minor,
        total=invoice.total_amount_minor,
        credit_applied=invoice.credit_applied_amount_minor,
        amount_paid=invoice.amount_paid_minor,
        amount_due=invoice.amount_due_minor,
    )


def invoice_pdf(session: Session, actor: Actor, invoice: Invoice) -> bytes:
    """The invoice as a PDF (payment details: ``payment.read``)."""
    require(actor, Permission.PAYMENT_READ)
    customer = invoice.customer

    def money(amount: int) -> str:
        return Money(amount, invoice.currency).format()

    def day(value: datetime | None) -> str:
        return f"{value:%Y-%m-%d}" if value is not None else "-"

    facts = [
        ("Issued", day(invoice.issued_at)),
        ("Due", day(invoice.due_at)),
        (
            "Period",
            f"{day(invoice.period_start)} - {day(invoice.period_end)}" if invoice.period_start else "-",
        ),
        ("Payment terms", invoice.payment_terms.replace("_", " ")),
        ("Purchase order", invoice.po_number or "-"),
    ]
    lines = [[line.description, str(line.quantity), money(line.amount_minor)] for line in invoice.lines]
    totals = [
        ("Subtotal", money(invoice.subtotal_amount_minor)),
        (f"Tax ({invoice.tax_note})" if invoice.tax_note else "Tax", money(invoice.tax_amount_minor)),
        ("Total", money(invoice.total_amount_minor)),
        ("Credit applied", money(invoice.credit_applied_amount_minor)),
        ("Paid", money(invoice.amount_paid_minor)),
        ("Amount due", money(invoice.amount_due_minor)),
    ]
    return render_invoice(
        InvoiceDocument(invoice.number, invoice.status, customer.name, customer.email, facts, lines, totals)
    )
