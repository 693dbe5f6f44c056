"""Refunds through the service: ledger limits, chargebacks, role limits, the approval queue and
the reply that tells the customer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.auth.models import AuditEvent
from opsdesk.billing.errors import DisputeRefusedError, RefundRefusedError
from opsdesk.billing.models import Payment, Refund
from opsdesk.billing.service import disputes, policy, refunds
from opsdesk.billing.service.disputes import DisputeFacts
from opsdesk.tickets.models import Message
from tests.billing.builders import make_billed, make_paid_charge
from tests.support.factories import SYSTEM, make_group, make_ticket, make_user, staff_actor


def _limits(db: Session) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    policy.set_refund_limit(db, admin, role="agent", currency="USD", limit_amount_minor=5_000)
    policy.set_refund_limit(db, admin, role="contractor", currency="USD", limit_amount_minor=5_000)
    policy.set_refund_limit(db, admin, role="billing", currency="USD", limit_amount_minor=50_000)


def _refund_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Refund)) or 0)


def test_agent_refunds_within_limit_and_the_customer_is_told(db: Session) -> None:
    _limits(db)
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 20_000)
    ticket = make_ticket(db, subject="Refund please", requester_email=billed.customer.email)
    agent = staff_actor(make_user(db, role="agent"))

    refund = refunds.issue_refund(
        db, agent, payment, amount_minor=4_000, reason="service_issue", ticket=ticket
    )

    assert refund.status == "succeeded"
    assert refund.stripe_refund_id is not None
    assert refund.stripe_refund_id.startswith("re_local_")
    db.refresh(payment)
    assert (payment.refunded_amount_minor, payment.reserved_amount_minor) == (4_000, 0)
    reply = db.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id.desc())
    ).first()
    assert reply is not None
    assert reply.is_public
    assert "USD 40.00" in reply.body_text
    actions = set(db.scalars(select(AuditEvent.action).where(AuditEvent.entity_type == "refund")))
    assert actions == {"issued"}


def test_above_the_limit_waits_for_a_lead_and_reserves_the_amount(db: Session) -> None:
    _limits(db)
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 20_000)
    agent = staff_actor(make_user(db, role="agent"))
    billing = staff_actor(make_user(db, role="billing"))
    lead = staff_actor(make_user(db, role="lead"))

    queued = refunds.issue_refund(db, agent, payment, amount_minor=15_000, reason="goodwill")
    assert queued.status == "pending_approval"
    db.refresh(payment)
    assert (payment.refunded_amount_minor, payment.reserved_amount_minor) == (0, 15_000)
    # The reservation counts: only 5,000 is left, and a billing specialist cannot take more.
    with pytest.raises(RefundRefusedError):
        refunds.issue_refund(db, billing, payment, amount_minor=5_001, reason="goodwill")
    with pytest.raises(PermissionDeniedError):
        refunds.approve_refund(db, agent, queued)
    assert [item.id for item in refunds.pending_approvals(db, lead)] == [queued.id]

    refunds.approve_refund(db, lead, queued, note="long-time customer")
    db.refresh(payment)
    assert queued.status == "succeeded"
    assert (payment.refunded_amount_minor, payment.reserved_amount_minor) == (15_000, 0)
    assert refunds.pending_approvals(db, lead) == []


def test_rejecting_releases_the_reservation(db: Session) -> None:
    _limits(db)
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 20_000)
    queued = refunds.issue_refund(
        db, staff_actor(make_user(db, role="agent")), payment, amount_minor=9_000, reason="goodwill"
    )
    refunds.reject_refund(db, staff_actor(make_user(db, role="lead")), queued, reason="outside policy")
    db.refresh(payment)
    assert (queued.status, payment.reserved_amount_minor, payment.refunded_amount_minor) == ("rejected", 0, 0)


def test_never_more_than_captured_minus_refunded_and_nothing_changes_when_refused(db: Session) -> None:
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 10_000)
    lead = staff_actor(make_user(db, role="lead"))
    refunds.issue_refund(db, lead, payment, amount_minor=7_000, reason="requested_by_customer")
    before = _refund_count(db)
    with pytest.raises(RefundRefusedError) as refused:
        refunds.issue_refund(db, lead, payment, amount_minor=3_001, reason="requested_by_customer")
    assert refused.value.fields[0].location == ("amount_minor",)
    with pytest.raises(RefundRefusedError):
        refunds.issue_refund(db, lead, payment, amount_minor=0, reason="requested_by_customer")
    assert _refund_count(db) == before
    db.refresh(payment)
    assert payment.refunded_amount_minor == 7_000


def test_chargebacks_block_refunds_inquiries_do_not_and_refunded_charges_cannot_be_disputed(
    db: Session,
) -> None:
    billed = make_billed(db)
    lead = staff_actor(make_user(db, role="lead"))
    inquiry_payment = make_paid_charge(db, billed.customer, 5_000, charge_id="ch_inquiry")
    disputes.open_dispute(
        db,
        SYSTEM,
        DisputeFacts("dp_inq", "ch_inquiry", 5_000, "USD", "fraudulent", "warning_needs_response", None),
    )
    assert (
        refunds.issue_refund(db, lead, inquiry_payment, amount_minor=5_000, reason="fraudulent").status
        == "succeeded"
    )

    chargeback_payment = make_paid_charge(db, billed.customer, 5_000, charge_id="ch_chargeback")
    disputes.open_dispute(
        db, SYSTEM, DisputeFacts("dp_cb", "ch_chargeback", 5_000, "USD", "fraudulent", "needs_response", None)
    )
    with pytest.raises(RefundRefusedError, match="chargeback"):
        refunds.issue_refund(db, lead, chargeback_payment, amount_minor=100, reason="fraudulent")

    # The inquiry's charge is now fully refunded: a new dispute on it is refused by hand...
    with pytest.raises(DisputeRefusedError):
        disputes.open_dispute(
            db,
            SYSTEM,
            DisputeFacts(None, "ch_inquiry", 5_000, "USD", "general", "needs_response", None),
            payment=inquiry_payment,
        )


def test_contractors_refund_from_their_tickets_without_payment_details(db: Session) -> None:
    _limits(db)
    group = make_group(db)
    contractor_user = make_user(db, role="contractor", groups=[group])
    contractor = staff_actor(contractor_user)
    billed = make_billed(db)
    make_paid_charge(db, billed.customer, 8_000)
    payment = refunds.latest_refundable_payment(db, billed.account.id)
    assert payment is not None
    assert payment.amount_minor == 8_000
    refund = refunds.issue_refund(db, contractor, payment, amount_minor=5_000, reason="service_issue")
    assert refund.status == "succeeded"
    queued = refunds.issue_refund(db, contractor, payment, amount_minor=3_000, reason="service_issue")
    # 3,000 is within 5,000 too; the limit is per refund, so this also goes out at once.
    assert queued.status == "succeeded"
    viewer = staff_actor(make_user(db, role="viewer"))
    with pytest.raises(PermissionDeniedError):
        refunds.issue_refund(
            db, viewer, make_paid_charge(db, billed.customer, 1_000), amount_minor=1, reason="goodwill"
        )
    assert db.get(Payment, payment.id) is not None
