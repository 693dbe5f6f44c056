"""The billing API under ``/api/v1/billing``: parse, call a service, shape the answer.

The Stripe webhook is the one endpoint without a staff actor: its signature is its credential.
It stores the raw event in its own transaction before processing it in the next, so a crash or
a bug while processing never loses the delivery.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing import schemas, tax
from opsdesk.billing.errors import InvalidBillingRequestError
from opsdesk.billing.models import Discrepancy, ReconciliationRun
from opsdesk.billing.providers import configure
from opsdesk.billing.service import (
    access,
    cancellations,
    disputes,
    invoicing,
    plan_changes,
    policy,
    reconciliation,
    refunds,
    taxes,
    ticket_panel,
    webhooks,
)
from opsdesk.billing.service.plan_changes import PlanChange
from opsdesk.errors import FieldProblem
from opsdesk.tickets.service import access_ticket
from opsdesk.web.auth import api_actor
from opsdesk.web.sessions import database_of, request_session

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

SessionDep = Annotated[Session, Depends(request_session)]


def billing_actor(request: Request, actor: Actor = Depends(api_actor)) -> Actor:
    """The staff actor, with the app's settings handed to the payment providers."""
    configure(request.app.state.settings)
    return actor


ActorDep = Annotated[Actor, Depends(billing_actor)]


# ---------------------------------------------------------------- Stripe webhook


@router.post("/stripe/webhook", include_in_schema=True)
async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await request.body()
    settings = request.app.state.settings
    configure(settings)
    event = webhooks.parse_verified(
        payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret
    )
    database = database_of(request)
    with database.transaction() as session:
        stored, needs_processing = webhooks.receive_event(session, event)
        event_id = stored.event_id
    if not needs_processing:
        return JSONResponse({"received": True, "duplicate": True})
    try:
        with database.transaction() as session:
            status = webhooks.process_event(session, event_id)
    except Exception as error:
        with database.transaction() as session:
            webhooks.mark_failed(session, event_id, f"{type(error).__name__}: {error}")
        raise
    return JSONResponse({"received": True, "status": status})


# ---------------------------------------------------------------- subscriptions


def _preview_out(change: PlanChange) -> schemas.ChangePreviewOut:
    return schemas.ChangePreviewOut(
        subscription_id=change.subscription_id,
        currency=change.currency,
        price_id=change.new_price.id,
        seats=change.new_seats,
        lines=[
            schemas.ProrationLineOut(
                description=line.description,
                amount_minor=line.amount_minor,
                currency=change.currency,
                quantity=line.quantity,
                unit_amount_minor=line.unit_amount_minor,
                price_id=line.price_id,
                period_start=line.period_start,
                period_end=line.period_end,
                tax_amount_minor=line.tax_amount_minor,
            )
            for line in change.lines
        ],
        net_amount_minor=change.net_amount_minor,
        amount_due_now_minor=change.amount_due_now_minor,
        proration_behavior=change.proration_behavior,
        resets_period=change.resets_period,
        new_period_end=change.new_period_end,
        tax_amount_minor=change.tax_amount_minor,
        total_amount_minor=change.total_amount_minor,
        tax_note=change.tax_note,
    )


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: int, session: SessionDep, actor: ActorDep) -> schemas.SubscriptionOut:
    return schemas.SubscriptionOut.of(access.access_subscription(session, actor, subscription_id))


@router.post("/subscriptions/{subscription_id}/change/preview")
def preview_change(
    subscription_id: int, body: schemas.ChangePreviewRequest, session: SessionDep, actor: ActorDep
) -> schemas.ChangePreviewOut:
    subscription = access.access_subscription(session, actor, subscription_id)
    change = plan_changes.preview_change(
        session, actor, subscription, price_id=body.price_id, seats=body.seats
    )
    return _preview_out(change)


@router.post("/subscriptions/{subscription_id}/change")
def change_subscription(
    subscription_id: int, body: schemas.ChangeRequest, session: SessionDep, actor: ActorDep
) -> schemas.ChangePreviewOut:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    ticket = access_ticket(session, actor, body.ticket_id) if body.ticket_id else None
    change = plan_changes.change_subscription(
        session, actor, subscription, price_id=body.price_id, seats=body.seats, ticket=ticket
    )
    return _preview_out(change)


@router.post("/subscriptions/{subscription_id}/cancel")
def cancel_subscription(
    subscription_id: int, body: schemas.CancelRequest, session: SessionDep, actor: ActorDep
) -> schemas.SubscriptionOut:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    ticket = access_ticket(session, actor, body.ticket_id) if body.ticket_id else None
    result = cancellations.cancel_subscription(session, actor, subscription, mode=body.mode, ticket=ticket)
    return schemas.SubscriptionOut.of(result.subscription)


@router.post("/subscriptions/{subscription_id}/pause")
def pause_subscription(subscription_id: int, session: SessionDep, actor: ActorDep) -> schemas.SubscriptionOut:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    return schemas.SubscriptionOut.of(cancellations.set_paused(session, actor, subscription, paused=True))


@router.post("/subscriptions/{subscription_id}/resume")
def resume_subscription(
    subscription_id: int, session: SessionDep, actor: ActorDep
) -> schemas.SubscriptionOut:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    return schemas.SubscriptionOut.of(cancellations.set_paused(session, actor, subscription, paused=False))


@router.post("/subscriptions/{subscription_id}/reactivate")
def reactivate_subscription(
    subscription_id: int, session: SessionDep, actor: ActorDep
) -> schemas.SubscriptionOut:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    return schemas.SubscriptionOut.of(cancellations.reactivate(session, actor, subscription))


# ---------------------------------------------------------------- refunds


@router.get("/payments/{payment_id}")
def get_payment(payment_id: int, session: SessionDep, actor: ActorDep) -> schemas.PaymentOut:
    return schemas.PaymentOut.of(access.access_payment(session, actor, payment_id))


@router.post("/payments/{payment_id}/refunds", status_code=201)
def refund_payment(
    payment_id: int, body: schemas.RefundRequest, session: SessionDep, actor: ActorDep
) -> schemas.RefundOut:
    payment = access.access_payment(session, actor, payment_id, for_update=True)
    ticket = access_ticket(session, actor, body.ticket_id) if body.ticket_id else None
    refund = refunds.issue_refund(
        session,
        actor,
        payment,
        amount_minor=body.amount_minor,
        reason=body.reason,
        note=body.note,
        ticket=ticket,
    )
    return schemas.RefundOut.of(refund)


@router.post("/tickets/{ticket_id}/refunds", status_code=201)
def refund_from_ticket(
    ticket_id: int, body: schemas.TicketRefundRequest, session: SessionDep, actor: ActorDep
) -> schemas.RefundOut:
    """Refund from the ticket: the account's latest refundable charge unless one is named
    (naming one needs payment access). Open to contractors on their own groups' tickets."""
    ticket = access_ticket(session, actor, ticket_id)
    if body.payment_id is not None:
        payment = access.access_payment(session, actor, body.payment_id, for_update=True)
    else:
        found = refunds.latest_refundable_payment(session, ticket.account_id)
        if found is None:
            raise InvalidBillingRequestError(
                "this ticket's account has no charge left to refund",
                fields=[FieldProblem(("payment_id",), "no refundable charge")],
            )
        payment = found
    refund = refunds.issue_refund(
        session,
        actor,
        payment,
        amount_minor=body.amount_minor,
        reason=body.reason,
        note=body.note,
        ticket=ticket,
    )
    return schemas.RefundOut.of(refund)


@router.get("/refunds/approvals")
def approval_queue(session: SessionDep, actor: ActorDep) -> dict[str, list[schemas.RefundOut]]:
    return {"items": [schemas.RefundOut.of(refund) for refund in refunds.pending_approvals(session, actor)]}


@router.post("/refunds/{refund_id}/approve")
def approve_refund(
    refund_id: int, body: schemas.ApproveRequest, session: SessionDep, actor: ActorDep
) -> schemas.RefundOut:
    refund = access.access_refund(session, actor, refund_id, for_update=True)
    return schemas.RefundOut.of(refunds.approve_refund(session, actor, refund, note=body.note))


@router.post("/refunds/{refund_id}/reject")
def reject_refund(
    refund_id: int, body: schemas.RejectRequest, session: SessionDep, actor: ActorDep
) -> schemas.RefundOut:
    refund = access.access_refund(session, actor, refund_id, for_update=True)
    return schemas.RefundOut.of(refunds.reject_refund(session, actor, refund, reason=body.reason))


@router.put("/refund-limits")
def set_refund_limit(
    body: schemas.RefundLimitRequest, session: SessionDep, actor: ActorDep
) -> dict[str, object]:
    row = policy.set_refund_limit(
        session, actor, role=body.role, currency=body.currency, limit_amount_minor=body.limit_amount_minor
    )
    return {"role": row.role, "currency": row.currency, "limit_amount_minor": row.limit_amount_minor}


@router.get("/settings")
def get_settings(session: SessionDep, actor: ActorDep) -> schemas.SettingsOut:
    return schemas.SettingsOut(**policy.billing_settings(session, actor))


@router.put("/settings")
def put_settings(body: schemas.SettingsRequest, session: SessionDep, actor: ActorDep) -> schemas.SettingsOut:
    """Admins: the proration behaviour and the dispute deadline's safety margin (hours)."""
    policy.update_settings(
        session,
        actor,
        proration_behavior=body.proration_behavior,
        dispute_deadline_margin_hours=body.dispute_deadline_margin_hours,
        seller_country=body.seller_country,
    )
    return schemas.SettingsOut(**policy.billing_settings(session, actor))


def _tax_rate_out(rate: tax.Rate) -> schemas.TaxRateOut:
    return schemas.TaxRateOut(
        id=rate.id,
        country=rate.country,
        region=rate.region,
        rate_basis_points=rate.basis_points,
        inclusive=rate.inclusive,
        tax_name=rate.name,
        valid_from=rate.valid_from,
        valid_until=rate.valid_until,
    )


@router.get("/tax-rates")
def list_tax_rates(session: SessionDep, actor: ActorDep) -> schemas.TaxRateList:
    return schemas.TaxRateList(items=[_tax_rate_out(rate) for rate in taxes.list_rates(session, actor)])


@router.post("/tax-rates", status_code=201)
def add_tax_rate(body: schemas.TaxRateIn, session: SessionDep, actor: ActorDep) -> schemas.TaxRateOut:
    return _tax_rate_out(taxes.rate_of(taxes.add_tax_rate(session, actor, **body.model_dump())))


@router.put("/customers/{customer_id}/tax")
def set_customer_tax(
    customer_id: int, body: schemas.CustomerTaxIn, session: SessionDep, actor: ActorDep
) -> schemas.CustomerTaxOut:
    customer = access.access_customer(session, actor, customer_id)
    taxes.set_customer_tax(
        session,
        actor,
        customer,
        country=body.country,
        region=body.region,
        exempt=body.exempt,
        vat_id=body.vat_id,
    )
    return schemas.CustomerTaxOut(
        customer_id=customer.id,
        tax_country=customer.tax_country,
        tax_region=customer.tax_region,
        tax_exempt=customer.tax_exempt,
        vat_id=customer.vat_id,
    )


# ---------------------------------------------------------------- disputes


@router.get("/disputes")
def list_disputes(session: SessionDep, actor: ActorDep, status: str | None = None) -> schemas.DisputeList:
    return schemas.DisputeList(
        items=[schemas.DisputeOut.of(item) for item in disputes.list_disputes(session, actor, status=status)]
    )


@router.get("/disputes/{dispute_id}")
def get_dispute(dispute_id: int, session: SessionDep, actor: ActorDep) -> schemas.DisputeOut:
    return schemas.DisputeOut.of(access.access_dispute(session, actor, dispute_id))


@router.get("/disputes/{dispute_id}/evidence.pdf")
def evidence_pdf(dispute_id: int, session: SessionDep, actor: ActorDep) -> Response:
    dispute = access.access_dispute(session, actor, dispute_id)
    pdf = disputes.evidence_pdf(session, actor, dispute)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="dispute-{dispute.id}-evidence.pdf"'},
    )


@router.post("/disputes/{dispute_id}/evidence")
def submit_evidence(
    dispute_id: int, body: schemas.EvidenceRequest, session: SessionDep, actor: ActorDep
) -> schemas.DisputeOut:
    dispute = access.access_dispute(session, actor, dispute_id, for_update=True)
    return schemas.DisputeOut.of(disputes.submit_evidence(session, actor, dispute, fields=body.fields))


@router.post("/disputes/{dispute_id}/outcome")
def record_outcome(
    dispute_id: int, body: schemas.OutcomeRequest, session: SessionDep, actor: ActorDep
) -> schemas.DisputeOut:
    dispute = access.access_dispute(session, actor, dispute_id, for_update=True)
    return schemas.DisputeOut.of(
        disputes.record_outcome(
            session, actor, dispute, status=body.status, fee_amount_minor=body.fee_amount_minor
        )
    )


# ---------------------------------------------------------------- invoices and credits


@router.get("/invoices/{invoice_id}.pdf")
def get_invoice_pdf(invoice_id: int, session: SessionDep, actor: ActorDep) -> Response:
    invoice = access.access_invoice(session, actor, invoice_id)
    return Response(
        invoicing.invoice_pdf(session, actor, invoice),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{invoice.number}.pdf"'},
    )


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: int, session: SessionDep, actor: ActorDep) -> schemas.InvoiceOut:
    return schemas.InvoiceOut.of(access.access_invoice(session, actor, invoice_id))


@router.post("/customers/{customer_id}/invoices", status_code=201)
def create_invoice(
    customer_id: int, body: schemas.InvoiceRequest, session: SessionDep, actor: ActorDep
) -> schemas.InvoiceOut:
    require(actor, Permission.PAYMENT_READ)
    customer = access.access_customer(session, actor, customer_id)
    invoice = invoicing.create_invoice(
        session,
        actor,
        customer,
        lines=[
            invoicing.ManualLine(line.description, line.quantity, line.unit_amount_minor)
            for line in body.lines
        ],
        tax_amount_minor=body.tax_amount_minor,
        po_number=body.po_number,
        payment_terms=body.payment_terms,
    )
    return schemas.InvoiceOut.of(invoice)


@router.post("/invoices/{invoice_id}/payments", status_code=201)
def record_bank_payment(
    invoice_id: int, body: schemas.BankPaymentRequest, session: SessionDep, actor: ActorDep
) -> schemas.PaymentOut:
    invoice = access.access_invoice(session, actor, invoice_id, for_update=True)
    return schemas.PaymentOut.of(
        invoicing.record_bank_payment(
            session, actor, invoice, amount_minor=body.amount_minor, reference=body.reference
        )
    )


@router.post("/customers/{customer_id}/credits", status_code=201)
def issue_credit(
    customer_id: int, body: schemas.CreditRequest, session: SessionDep, actor: ActorDep
) -> dict[str, int]:
    customer = access.access_customer(session, actor, customer_id)
    note = invoicing.issue_credit(
        session, actor, customer, amount_minor=body.amount_minor, reason=body.reason, ticket_id=body.ticket_id
    )
    return {"id": note.id, "credit_balance_minor": customer.credit_balance_minor}


@router.get("/tickets/{ticket_id}/panel")
def ticket_billing_panel(ticket_id: int, session: SessionDep, actor: ActorDep) -> dict[str, object]:
    ticket = access_ticket(session, actor, ticket_id)
    return asdict(ticket_panel.panel_for_ticket(session, actor, ticket))


# ---------------------------------------------------------------- reconciliation


@router.post("/reconciliations", status_code=201)
async def start_reconciliation(
    session: SessionDep,
    actor: ActorDep,
    source: Annotated[str, Form()] = "csv",
    file: Annotated[UploadFile | None, File()] = None,
) -> schemas.ReconciliationOut:
    lines = None
    if file is not None:
        content = (await file.read()).decode("utf-8-sig", errors="replace")
        lines = io.StringIO(content)
    run = reconciliation.reconcile(session, actor, source=source, csv_lines=lines)
    return _run_out(session, actor, run.id)


@router.get("/reconciliations/{run_id}")
def get_reconciliation(run_id: int, session: SessionDep, actor: ActorDep) -> schemas.ReconciliationOut:
    return _run_out(session, actor, run_id)


def _run_out(session: Session, actor: Actor, run_id: int) -> schemas.ReconciliationOut:
    items = reconciliation.discrepancies_of(session, actor, run_id)
    run = session.get_one(ReconciliationRun, run_id)
    return schemas.ReconciliationOut(
        id=run.id,
        source=run.source,
        ledger_charges=run.ledger_charges,
        provider_charges=run.provider_charges,
        discrepancy_count=run.discrepancy_count,
        counts=reconciliation.counts_by_kind(session, run.id),
        discrepancies=[_discrepancy(item) for item in items],
    )


def _discrepancy(item: Discrepancy) -> dict[str, object]:
    return {
        "id": item.id,
        "kind": item.kind,
        "external_id": item.external_id,
        "detail": item.detail,
        "ledger_value": item.ledger_value,
        "provider_value": item.provider_value,
        "account_id": item.account_id,
        "customer_id": item.customer_id,
        "payment_id": item.payment_id,
        "subscription_id": item.subscription_id,
        "ticket_id": item.ticket_id,
    }


@router.post("/discrepancies/{discrepancy_id}/ticket", status_code=201)
def discrepancy_ticket(discrepancy_id: int, session: SessionDep, actor: ActorDep) -> dict[str, object]:
    item = reconciliation.access_discrepancy(session, actor, discrepancy_id)
    ticket = reconciliation.open_ticket(session, actor, item)
    return {"discrepancy_id": item.id, "ticket_id": ticket.id}
