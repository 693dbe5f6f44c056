"""Refunds: within the ledger's limits and the team's policy, with approval above the limit.

Rules (see :mod:`opsdesk.billing.refund_rules`): never more than captured minus refunded minus
what pending approvals reserve; never on a charge with an open or lost chargeback (an inquiry
stays refundable); within the role's limit a refund goes out at once, above it a lead approves.
The amount is reserved or counted with a guarded SQL update before the provider is called, so
two concurrent refunds can never together pass the captured amount; a provider failure raises
and the caller's transaction rolls everything back.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.billing import refund_rules
from opsdesk.billing.enums import PaymentStatus, RefundReason, RefundStatus
from opsdesk.billing.errors import InvalidBillingRequestError, RefundRefusedError
from opsdesk.billing.events import RefundApprovalRequested, RefundIssued
from opsdesk.billing.models import BillingCustomer, Dispute, Payment, Refund
from opsdesk.billing.providers import BillingProvider, provider_for
from opsdesk.billing.service import notices
from opsdesk.billing.service.policy import REFUND_ROLES, is_approver, refund_limit
from opsdesk.errors import FieldProblem
from opsdesk.money import Money
from opsdesk.tickets.models import Ticket


def _check_role(actor: Actor) -> None:
    if actor.user is not None and (not actor.user.is_active or actor.user.role not in REFUND_ROLES):
        raise PermissionDeniedError(f"{actor.name} ({actor.role}) may not refund payments")


def _card(payment: Payment) -> str:
    if payment.card_last4:
        return f"{(payment.card_brand or 'card').title()} card ending {payment.card_last4}"
    return "original payment method"


def dispute_statuses(session: Session, payment_id: int) -> list[str]:
    return list(session.scalars(select(Dispute.status).where(Dispute.payment_id == payment_id)))


def _guarded_add(session: Session, payment_id: int, *, refunded: int = 0, reserved: int = 0) -> bool:
    """Move the payment's counters in SQL, only if the result still fits in the captured amount."""
    result = session.execute(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.refunded_amount_minor + Payment.reserved_amount_minor + refunded + reserved
            <= Payment.amount_minor,
            Payment.reserved_amount_minor + reserved >= 0,
        )
        .values(
            refunded_amount_minor=Payment.refunded_amount_minor + refunded,
            reserved_amount_minor=Payment.reserved_amount_minor + reserved,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def issue_refund(
    session: Session,
    actor: Actor,
    payment: Payment,
    *,
    amount_minor: int,
    reason: str,
    note: str = "",
    ticket: Ticket | None = None,
    provider: BillingProvider | None = None,
) -> Refund:
    """Refund ``amount_minor`` of ``payment``: issued now, or queued for a lead's approval."""
    _check_role(actor)
    if reason not in {member.value for member in RefundReason}:
        raise InvalidBillingRequestError(
            "the refund is not valid",
            fields=[FieldProblem(("reason",), "must be one of " + ", ".join(m.value for m in RefundReason))],
        )
    session.refresh(payment)
    refusal = refund_rules.check_refund(
        amount=amount_minor,
        captured=payment.amount_minor,
        refunded=payment.refunded_amount_minor,
        reserved=payment.reserved_amount_minor,
        payment_succeeded=payment.status == PaymentStatus.SUCCEEDED,
        dispute_statuses=dispute_statuses(session, payment.id),
    )
    if refusal is not None:
        raise RefundRefusedError(refusal.message, fields=[FieldProblem((refusal.field,), refusal.message)])
    limit = refund_limit(session, actor.user.role if actor.user is not None else None, payment.currency)
    decision = refund_rules.decide(amount_minor, limit, may_approve=is_approver(actor) or actor.user is None)
    refund = Refund(
        payment_id=payment.id,
        amount_minor=amount_minor,
        currency=payment.currency,
        reason=reason,
        note=note,
        status=RefundStatus.PENDING_APPROVAL.value,
        ticket_id=ticket.id if ticket is not None else None,
        requested_by_id=actor.user_id,
        requested_by_name=actor.name,
    )
    session.add(refund)
    session.flush()
    amount = Money(amount_minor, payment.currency)
    if decision is refund_rules.RefundDecision.NEEDS_APPROVAL:
        if not _guarded_add(session, payment.id, reserved=amount_minor):
            raise RefundRefusedError("the amount is no longer available to refund")
        session.refresh(payment)
        audit.record(
            session,
            actor,
            entity_type="refund",
            entity_id=refund.id,
            action="approval_requested",
            new={"payment_id": payment.id, "amount_minor": amount_minor, "limit_minor": limit},
            ticket_id=refund.ticket_id,
            reason=note or reason,
        )
        bus.publish(session, RefundApprovalRequested(refund.id, amount_minor, payment.currency))
        if ticket is not None:
            notices.reply_on_ticket(
                session,
                actor,
                ticket,
                "refund_pending_approval",
                customer=payment.customer,
                amount=amount.format(),
                amount_minor=amount_minor,
                currency=payment.currency,
                reason=reason,
            )
        return refund
    if not _guarded_add(session, payment.id, refunded=amount_minor):
        raise RefundRefusedError("the amount is no longer available to refund")
    _send(session, actor, refund, payment, provider)
    if ticket is not None:
        notices.reply_on_ticket(
            session,
            actor,
            ticket,
            "refund_issued",
            customer=payment.customer,
            amount=amount.format(),
            amount_minor=amount_minor,
            currency=payment.currency,
            reason=reason,
            card=_card(payment),
        )
    return refund


def _send(
    session: Session, actor: Actor, refund: Refund, payment: Payment, provider: BillingProvider | None
) -> None:
    chosen = provider or provider_for(payment.customer.provider)
    answer = chosen.create_refund(
        charge_ref=payment.stripe_charge_id,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        reason=refund.reason,
        idempotency_key=f"opsdesk-refund-{refund.id}",
    )
    refund.stripe_refund_id = answer.external_id
    refund.status = RefundStatus.SUCCEEDED.value
    session.flush()
    session.refresh(payment)
    audit.record(
        session,
        actor,
        entity_type="refund",
        entity_id=refund.id,
        action="issued",
        new={
            "payment_id": payment.id,
            "amount_minor": refund.amount_minor,
            "currency": refund.currency,
            "provider_id": answer.external_id,
        },
        ticket_id=refund.ticket_id,
        reason=refund.note or refund.reason,
    )
    bus.publish(session, RefundIssued(refund.id, payment.id, refund.amount_minor, refund.currency))


def approve_refund(
    session: Session, actor: Actor, refund: Refund, *, note: str = "", provider: BillingProvider | None = None
) -> Refund:
    """A lead or admin approves a queued refund: the reservation becomes a refund."""
    if actor.user is not None and not is_approver(actor):
        raise PermissionDeniedError(f"{actor.name} ({actor.role}) may not approve refunds")
    if refund.status != RefundStatus.PENDING_APPROVAL:
        raise RefundRefusedError(f"refund {refund.id} is {refund.status}, not waiting for approval")
    payment = refund.payment
    blocking = refund_rules.blocking_dispute(dispute_statuses(session, payment.id))
    if blocking is not None:
        raise RefundRefusedError(f"the charge has a chargeback ({blocking}); reject this refund instead")
    if not _guarded_add(session, payment.id, refunded=refund.amount_minor, reserved=-refund.amount_minor):
        raise RefundRefusedError("the reserved amount is no longer available")
    refund.decided_by_id = actor.user_id
    refund.decided_at = clock.now()
    refund.decision_note = note or None
    _send(session, actor, refund, payment, provider)
    ticket = session.get(Ticket, refund.ticket_id) if refund.ticket_id else None
    if ticket is not None and ticket.status != "closed":
        notices.reply_on_ticket(
            session,
            actor,
            ticket,
            "refund_issued",
            customer=payment.customer,
            amount=Money(refund.amount_minor, refund.currency).format(),
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=refund.reason,
            card=_card(payment),
        )
    return refund


def reject_refund(session: Session, actor: Actor, refund: Refund, *, reason: str) -> Refund:
    if actor.user is not None and not is_approver(actor):
        raise PermissionDeniedError(f"{actor.name} ({actor.role}) may not reject refunds")
    if refund.status != RefundStatus.PENDING_APPROVAL:
        raise RefundRefusedError(f"refund {refund.id} is {refund.status}, not waiting for approval")
    if not reason.strip():
        raise InvalidBillingRequestError(
            "a reason is needed", fields=[FieldProblem(("reason",), "tell the requester why")]
        )
    _guarded_add(session, refund.payment_id, reserved=-refund.amount_minor)
    session.refresh(refund.payment)
    refund.status = RefundStatus.REJECTED.value
    refund.decided_by_id = actor.user_id
    refund.decided_at = clock.now()
    refund.decision_note = reason.strip()
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="refund",
        entity_id=refund.id,
        action="rejected",
        ticket_id=refund.ticket_id,
        reason=reason.strip(),
    )
    ticket = session.get(Ticket, refund.ticket_id) if refund.ticket_id else None
    if ticket is not None and ticket.status != "closed":
        notices.reply_on_ticket(
            session,
            actor,
            ticket,
            "refund_rejected",
            customer=refund.payment.customer,
            amount=Money(refund.amount_minor, refund.currency).format(),
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=reason.strip(),
        )
    return refund


def pending_approvals(session: Session, actor: Actor) -> list[Refund]:
    """The approval queue, oldest first (leads and admins)."""
    if actor.user is not None and not is_approver(actor):
        raise PermissionDeniedError(f"{actor.name} ({actor.role}) may not see the approval queue")
    return list(
        session.scalars(
            select(Refund).where(Refund.status == RefundStatus.PENDING_APPROVAL.value).order_by(Refund.id)
        )
    )


def latest_refundable_payment(session: Session, account_id: int | None) -> Payment | None:
    """The account's most recent captured charge with something left to refund."""
    if account_id is None:
        return None
    return session.scalars(
        select(Payment)
        .join(BillingCustomer, BillingCustomer.id == Payment.customer_id)
        .where(
            BillingCustomer.account_id == account_id,
            Payment.status == PaymentStatus.SUCCEEDED.value,
            Payment.refunded_amount_minor + Payment.reserved_amount_minor < Payment.amount_minor,
        )
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(1)
    ).first()
