"""Disputes: inquiries and chargebacks, each with a ticket opened automatically whose deadline is
the evidence due time; the evidence packet assembled as a PDF and submitted through the provider;
the outcome and fee recorded.

A fully refunded charge cannot be disputed (recording one by hand is refused); a chargeback
blocks refunds on its charge until it is won (see :mod:`opsdesk.billing.refund_rules`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing import evidence_packet, refund_rules
from opsdesk.billing.enums import (
    CLOSED_DISPUTE_STATUSES,
    DISPUTE_EVIDENCE_TEXT_FIELDS,
    DisputeReason,
    DisputeStatus,
)
from opsdesk.billing.errors import DisputeRefusedError, InvalidBillingRequestError
from opsdesk.billing.events import DisputeClosed, DisputeOpened
from opsdesk.billing.models import BillingCustomer, Dispute, Invoice, Payment, Refund, Subscription
from opsdesk.billing.providers import BillingProvider, provider_for
from opsdesk.billing.service import dispute_deadlines, notices
from opsdesk.errors import FieldProblem
from opsdesk.money import Money
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Message, Ticket

STRIPE_ACTOR = Actor.integration("Stripe", via="stripe")


@dataclass(frozen=True, slots=True)
class DisputeFacts:
    """What the provider (or the bank's letter) says about a new dispute."""

    external_id: str | None
    charge_ref: str | None
    amount_minor: int
    currency: str
    reason: str
    status: str
    evidence_due_at: datetime | None
    fee_amount_minor: int = 0


def _validate(facts: DisputeFacts) -> None:
    problems: list[FieldProblem] = []
    if facts.reason not in {member.value for member in DisputeReason}:
        problems.append(FieldProblem(("reason",), "not one of Stripe's dispute reasons"))
    if facts.status not in {member.value for member in DisputeStatus}:
        problems.append(FieldProblem(("status",), "not one of Stripe's dispute statuses"))
    if facts.amount_minor <= 0:
        problems.append(FieldProblem(("amount_minor",), "must be greater than zero"))
    if problems:
        raise InvalidBillingRequestError("the dispute is not valid", fields=problems)


def open_dispute(
    session: Session,
    actor: Actor,
    facts: DisputeFacts,
    *,
    payment: Payment | None = None,
    mirrored: bool = False,
    ticket: Ticket | None = None,
) -> Dispute:
    """Record a dispute and open its ticket (or link the customer's ticket about it, when there
    already is one). ``mirrored``: it already exists at the provider, so it is recorded even on a
    fully refunded charge (with a warning), never dropped."""
    require(actor, Permission.TICKET_WRITE)
    _validate(facts)
    if facts.external_id:
        existing = session.scalars(
            select(Dispute).where(Dispute.stripe_dispute_id == facts.external_id)
        ).first()
        if existing is not None:
            return existing
    if payment is None and facts.charge_ref:
        payment = session.scalars(select(Payment).where(Payment.stripe_charge_id == facts.charge_ref)).first()
    fully_refunded = payment is not None and not refund_rules.may_dispute(
        payment.amount_minor, payment.refunded_amount_minor
    )
    if fully_refunded and not mirrored:
        raise DisputeRefusedError("a fully refunded charge cannot be disputed")
    customer = session.get(BillingCustomer, payment.customer_id) if payment is not None else None
    dispute = Dispute(
        payment_id=payment.id if payment is not None else None,
        customer_id=customer.id if customer is not None else None,
        stripe_dispute_id=facts.external_id,
        stripe_charge_id=facts.charge_ref,
        status=facts.status,
        reason=facts.reason,
        amount_minor=facts.amount_minor,
        currency=facts.currency.upper(),
        fee_amount_minor=facts.fee_amount_minor,
        evidence={},
        evidence_due_at=facts.evidence_due_at,
    )
    session.add(dispute)
    session.flush()
    opened = ticket is None
    ticket = ticket if ticket is not None else _open_ticket(session, actor, dispute, customer, fully_refunded)
    dispute.ticket_id = ticket.id
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="dispute",
        entity_id=dispute.id,
        action="opened",
        new={
            "status": dispute.status,
            "reason": dispute.reason,
            "amount_minor": dispute.amount_minor,
            "currency": dispute.currency,
            "evidence_due_at": facts.evidence_due_at,
        },
        ticket_id=dispute.ticket_id,
    )
    bus.publish(session, DisputeOpened(dispute.id, dispute.ticket_id, dispute.evidence_due_at))
    if opened and customer is not None:
        # The ticket opsdesk opened is addressed to the customer: tell them (dispute macro).
        notices.reply_on_ticket(
            session,
            actor,
            ticket,
            "dispute_opened",
            customer=customer,
            amount=Money(dispute.amount_minor, dispute.currency).format(),
            amount_minor=dispute.amount_minor,
            currency=dispute.currency,
            reason=dispute.reason.replace("_", " "),
            charged_on=f"{payment.created_at:%Y-%m-%d}" if payment is not None else "",
        )
    return dispute


def _open_ticket(
    session: Session, actor: Actor, dispute: Dispute, customer: BillingCustomer | None, fully_refunded: bool
) -> Ticket:
    kind = "Inquiry" if dispute.is_inquiry else "Chargeback"
    amount = Money(dispute.amount_minor, dispute.currency).format()
    due = f"{dispute.evidence_due_at:%Y-%m-%d %H:%M} UTC" if dispute.evidence_due_at else "not given"
    who = customer.name if customer is not None else "unknown customer"
    lines = [
        f"{kind} opened by the cardholder's bank: {dispute.reason.replace('_', ' ')}, {amount}.",
        f"Customer: {who}. Charge: {dispute.stripe_charge_id or 'not linked'}.",
        f"Evidence is due by {due}. Assemble and submit the evidence packet from the billing panel.",
    ]
    if fully_refunded:
        lines.append("Warning: this charge was already fully refunded; answer with the refund as evidence.")
    email = customer.email if customer is not None else "disputes@billing.invalid"
    ticket = tickets.create_ticket(
        session,
        actor,
        tickets.NewTicket(
            subject=f"{kind}: {dispute.reason.replace('_', ' ')} — {amount} — {who}",
            body_text="\n".join(lines),
            requester_email=email,
            requester_name=customer.name if customer is not None else None,
            priority="urgent" if not dispute.is_inquiry else "high",
            type="problem",
            category="billing",
            tags=["billing", "dispute"],
        ),
    )
    if customer is not None and ticket.account_id != customer.account_id:
        tickets.update_ticket(session, actor, ticket, {"account_id": customer.account_id})
    return ticket


def update_from_provider(
    session: Session,
    actor: Actor,
    dispute: Dispute,
    *,
    status: str,
    evidence_due_at: datetime | None,
    fee_amount_minor: int | None,
) -> Dispute:
    if status not in {member.value for member in DisputeStatus}:
        raise InvalidBillingRequestError("unknown dispute status", fields=[FieldProblem(("status",), status)])
    changes: dict[str, tuple[object, object]] = {}
    if dispute.status != status:
        changes["status"] = (dispute.status, status)
        dispute.status = status
    if evidence_due_at is not None and dispute.evidence_due_at != evidence_due_at:
        changes["evidence_due_at"] = (dispute.evidence_due_at, evidence_due_at)
        dispute.evidence_due_at = evidence_due_at
    if fee_amount_minor is not None and dispute.fee_amount_minor != fee_amount_minor:
        changes["fee_amount_minor"] = (dispute.fee_amount_minor, fee_amount_minor)
        dispute.fee_amount_minor = fee_amount_minor
    if not changes:
        return dispute
    if status in CLOSED_DISPUTE_STATUSES and dispute.closed_at is None:
        dispute.closed_at = clock.now()
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="dispute",
        entity_id=dispute.id,
        changes=changes,
        ticket_id=dispute.ticket_id,
    )
    if "status" in changes and status in CLOSED_DISPUTE_STATUSES:
        _note_outcome(session, dispute)
        bus.publish(session, DisputeClosed(dispute.id, status))
    return dispute


def record_outcome(
    session: Session, actor: Actor, dispute: Dispute, *, status: str, fee_amount_minor: int
) -> Dispute:
    """The bank's decision on a local-ledger dispute (Stripe disputes close through webhooks)."""
    require(actor, Permission.BILLING_WRITE)
    if status not in CLOSED_DISPUTE_STATUSES:
        raise InvalidBillingRequestError(
            "an outcome closes the dispute",
            fields=[
                FieldProblem(("status",), "must be one of " + ", ".join(sorted(CLOSED_DISPUTE_STATUSES)))
            ],
        )
    if dispute.closed_at is not None:
        raise DisputeRefusedError(f"dispute {dispute.id} is already closed ({dispute.status})")
    if fee_amount_minor < 0:
        raise InvalidBillingRequestError(
            "the fee is not valid", fields=[FieldProblem(("fee_amount_minor",), "must not be negative")]
        )
    return update_from_provider(
        session, actor, dispute, status=status, evidence_due_at=None, fee_amount_minor=fee_amount_minor
    )


def _note_outcome(session: Session, dispute: Dispute) -> None:
    ticket = session.get(Ticket, dispute.ticket_id) if dispute.ticket_id else None
    if ticket is None or ticket.status == "closed":
        return
    fee = Money(dispute.fee_amount_minor, dispute.currency).format()
    tickets.add_message(
        session,
        Actor.system("billing"),
        ticket,
        public=False,
        body_text=f"The dispute closed: {dispute.status.replace('_', ' ')}. Fee: {fee}.",
    )


# ---------------------------------------------------------------- evidence


def suggested_evidence(session: Session, dispute: Dispute) -> dict[str, str]:
    """Stripe evidence text fields opsdesk can fill from what it knows."""
    customer = session.get(BillingCustomer, dispute.customer_id) if dispute.customer_id else None
    fields: dict[str, str] = {}
    if customer is not None:
        fields["customer_name"] = customer.name
        fields["customer_email_address"] = customer.email
        if customer.tos_accepted_ip:
            fields["customer_purchase_ip"] = customer.tos_accepted_ip
        subscription = session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer.id)
            .order_by(Subscription.id.desc())
        ).first()
        if subscription is not None:
            fields["product_description"] = (
                f"{subscription.price.product.name} subscription ({subscription.price.nickname}), "
                f"{subscription.seats} seat(s), billed per {subscription.price.interval}."
            )
            fields["service_date"] = f"{subscription.current_period_start:%Y-%m-%d}"
        if customer.tos_accepted_at:
            fields["refund_policy_disclosure"] = (
                f"The customer accepted terms of service version {customer.tos_version} on "
                f"{customer.tos_accepted_at:%Y-%m-%d %H:%M} UTC, which include the refund policy."
            )
    fields["uncategorized_text"] = (
        "See the attached evidence packet: invoices, receipts, usage, terms and the conversation."
    )
    return fields


def build_packet(session: Session, dispute: Dispute) -> evidence_packet.EvidencePacket:
    customer = session.get(BillingCustomer, dispute.customer_id) if dispute.customer_id else None
    amount = Money(dispute.amount_minor, dispute.currency).format()
    facts = [
        ("Dispute", dispute.stripe_dispute_id or f"opsdesk #{dispute.id}"),
        ("Charge", dispute.stripe_charge_id or "-"),
        ("Reason", dispute.reason.replace("_", " ")),
        ("Amount", amount),
        ("Evidence due", f"{dispute.evidence_due_at:%Y-%m-%d %H:%M} UTC" if dispute.evidence_due_at else "-"),
    ]
    if customer is None:
        return evidence_packet.EvidencePacket(f"Evidence for dispute {dispute.id}", facts, [], [], [], [], [])
    terms = [
        ("Customer", customer.name),
        ("Email", customer.email),
        ("Terms of service version", customer.tos_version or "not recorded"),
        (
            "Accepted at",
            f"{customer.tos_accepted_at:%Y-%m-%d %H:%M} UTC" if customer.tos_accepted_at else "not recorded",
        ),
        ("Accepted from IP", customer.tos_accepted_ip or "not recorded"),
    ]
    invoices = session.scalars(
        select(Invoice).where(Invoice.customer_id == customer.id).order_by(Invoice.id.desc()).limit(24)
    ).all()
    invoice_rows = [
        [
            invoice.number,
            f"{invoice.period_start:%Y-%m-%d} - {invoice.period_end:%Y-%m-%d}"
            if invoice.period_start and invoice.period_end
            else f"{invoice.issued_at:%Y-%m-%d}"
            if invoice.issued_at
            else "-",
            "; ".join(
                f"{line.description}: {Money(line.amount_minor, line.currency).format()}"
                for line in invoice.lines
            ),
            Money(invoice.total_amount_minor, invoice.currency).format(),
            invoice.status,
        ]
        for invoice in invoices
    ]
    payments = session.scalars(
        select(Payment)
        .where(Payment.customer_id == customer.id, Payment.status == "succeeded")
        .order_by(Payment.id.desc())
        .limit(24)
    ).all()
    receipt_rows = [
        [
            f"{payment.created_at:%Y-%m-%d}",
            payment.stripe_charge_id or f"#{payment.id}",
            Money(payment.amount_minor, payment.currency).format(),
            Money(payment.refunded_amount_minor, payment.currency).format(),
            f"{payment.card_brand or ''} •••• {payment.card_last4}" if payment.card_last4 else "-",
        ]
        for payment in payments
    ]
    subscriptions = session.scalars(select(Subscription).where(Subscription.customer_id == customer.id)).all()
    usage = [
        (
            f"Subscription {subscription.id}",
            f"{subscription.price.product.name} ({subscription.price.nickname}), "
            f"{subscription.seats} seat(s), "
            f"{subscription.status}, since {subscription.created_at:%Y-%m-%d}, current period "
            f"{subscription.current_period_start:%Y-%m-%d} - {subscription.current_period_end:%Y-%m-%d}",
        )
        for subscription in subscriptions
    ]
    refunds = session.scalars(
        select(Refund)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Payment.customer_id == customer.id, Refund.status == "succeeded")
    ).all()
    usage.extend(
        (
            f"Refund {refund.id}",
            f"{Money(refund.amount_minor, refund.currency).format()} "
            f"({refund.reason.replace('_', ' ')}) on {refund.created_at:%Y-%m-%d}",
        )
        for refund in refunds
    )
    messages = session.execute(
        select(Message.created_at, Message.author_kind, Message.body_text, Ticket.subject)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(
            Ticket.account_id == customer.account_id,
            Message.is_public.is_(True),
            Ticket.id != (dispute.ticket_id or 0),
        )
        .order_by(Message.created_at, Message.id)
        .limit(200)
    ).all()
    conversation = [
        (
            f"{created:%Y-%m-%d %H:%M} UTC · {subject}",
            "Customer" if kind == "customer" else "Support",
            text[:4000],
        )
        for created, kind, text, subject in messages
    ]
    return evidence_packet.EvidencePacket(
        f"Evidence for dispute {dispute.stripe_dispute_id or dispute.id} — {customer.name}",
        facts,
        terms,
        invoice_rows,
        receipt_rows,
        usage,
        conversation,
    )


def evidence_pdf(session: Session, actor: Actor, dispute: Dispute) -> bytes:
    require(actor, Permission.PAYMENT_READ)
    return evidence_packet.render_pdf(build_packet(session, dispute))


def submit_evidence(
    session: Session,
    actor: Actor,
    dispute: Dispute,
    *,
    fields: dict[str, str] | None = None,
    provider: BillingProvider | None = None,
) -> Dispute:
    """Assemble the packet, send it with the evidence fields, and record what was sent."""
    require(actor, Permission.BILLING_WRITE)
    if dispute.status not in {DisputeStatus.NEEDS_RESPONSE.value, DisputeStatus.WARNING_NEEDS_RESPONSE.value}:
        raise DisputeRefusedError(f"dispute {dispute.id} is {dispute.status}; evidence cannot be submitted")
    unknown = sorted(set(fields or {}) - set(DISPUTE_EVIDENCE_TEXT_FIELDS))
    if unknown:
        raise InvalidBillingRequestError(
            "unknown evidence fields",
            fields=[FieldProblem(("fields", name), "not a Stripe evidence field") for name in unknown],
        )
    evidence = {
        **suggested_evidence(session, dispute),
        **{k: v for k, v in (fields or {}).items() if v.strip()},
    }
    pdf = evidence_packet.render_pdf(build_packet(session, dispute))
    customer = session.get(BillingCustomer, dispute.customer_id) if dispute.customer_id else None
    chosen = provider or provider_for(customer.provider if customer is not None else "stripe")
    submitted = chosen.submit_dispute_evidence(
        dispute_ref=dispute.stripe_dispute_id,
        evidence=evidence,
        packet_pdf=pdf,
        idempotency_key=f"opsdesk-evidence-{dispute.id}",
    )
    old_status = dispute.status
    dispute.evidence = evidence
    dispute.evidence_submitted_at = clock.now()
    dispute.evidence_packet_sha256 = hashlib.sha256(pdf).hexdigest()
    dispute.stripe_evidence_file_id = submitted.file_id
    dispute.status = (
        DisputeStatus.WARNING_UNDER_REVIEW.value if dispute.is_inquiry else DisputeStatus.UNDER_REVIEW.value
    )
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="dispute",
        entity_id=dispute.id,
        action="evidence_submitted",
        old=old_status,
        new={
            "status": dispute.status,
            "fields": sorted(evidence),
            "packet_sha256": dispute.evidence_packet_sha256,
        },
        ticket_id=dispute.ticket_id,
    )
    dispute_deadlines.meet_evidence_deadline(session, dispute, actor)
    ticket = session.get(Ticket, dispute.ticket_id) if dispute.ticket_id else None
    if ticket is not None and ticket.status != "closed":
        tickets.add_message(
            session,
            actor,
            ticket,
            public=False,
            body_text=f"Evidence submitted ({len(pdf)} byte packet, fields: {', '.join(sorted(evidence))}).",
        )
    return dispute


def list_disputes(
    session: Session, actor: Actor, *, status: str | None = None, limit: int = 100
) -> list[Dispute]:
    require(actor, Permission.PAYMENT_READ)
    query = select(Dispute).order_by(
        Dispute.evidence_due_at.is_(None), Dispute.evidence_due_at, Dispute.id.desc()
    )
    if status:
        query = query.where(Dispute.status == status)
    return list(session.scalars(query.limit(limit)))
