"""Billing pages: the overview (approval queue, disputes by deadline, dunning), a subscription
with its change preview, a dispute with its evidence, reconciliation runs, and the billing panel
of a ticket with its refund form. Parse, call a service, build a view model, render."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.billing.enums import CancelMode
from opsdesk.billing.errors import BillingNotFoundError
from opsdesk.billing.models import BillingPrice, Subscription
from opsdesk.billing.providers import configure
from opsdesk.billing.service import (
    access,
    cancellations,
    disputes,
    plan_changes,
    policy,
    reconciliation,
    refunds,
    taxes,
    ticket_panel,
)
from opsdesk.billing.service.plan_changes import PlanChange
from opsdesk.billing.ticket_panels import panel_view
from opsdesk.errors import DomainError
from opsdesk.money import Money
from opsdesk.tickets.service import access_ticket
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)

NAV = [{"href": "/", "label": "Tickets"}, {"href": "/billing", "label": "Billing", "active": True}]


def billing_page_actor(request: Request, actor: Actor = Depends(page_actor)) -> Actor:
    configure(request.app.state.settings)
    return actor


ActorDep = Annotated[Actor, Depends(billing_page_actor)]
SessionDep = Annotated[Session, Depends(request_session)]


def _money(amount_minor: int, currency: str) -> str:
    return Money(amount_minor, currency).format()


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return render(
        request,
        template,
        {"nav_items": NAV, "csrf_token": csrf_token(request), **context},
        status_code=status_code,
    )


@router.get("/billing", response_class=HTMLResponse)
def overview(request: Request, actor: ActorDep, session: SessionDep) -> HTMLResponse:
    require(actor, Permission.PAYMENT_READ)
    approvals = refunds.pending_approvals(session, actor) if policy.is_approver(actor) else []
    open_disputes = [item for item in disputes.list_disputes(session, actor) if item.closed_at is None]
    dunning = session.scalars(
        select(Subscription)
        .where(Subscription.status.in_(("past_due", "unpaid")))
        .order_by(Subscription.id)
        .limit(50)
    ).all()
    return _page(
        request,
        "billing/overview.html",
        {
            "approvals": [
                {
                    "id": item.id,
                    "amount": _money(item.amount_minor, item.currency),
                    "reason": item.reason,
                    "requested_by": item.requested_by_name,
                    "ticket_id": item.ticket_id,
                    "note": item.note,
                }
                for item in approvals
            ],
            "is_approver": policy.is_approver(actor),
            "disputes": [_dispute_row(item) for item in open_disputes],
            "dunning": [
                {
                    "id": item.id,
                    "customer": item.customer.name,
                    "status": item.status,
                    "since": _when(item.past_due_since),
                    "account_id": item.customer.account_id,
                }
                for item in dunning
            ],
            "runs": [
                {
                    "id": run.id,
                    "source": run.source,
                    "started_at": _when(run.started_at),
                    "discrepancies": run.discrepancy_count,
                    "charges": run.ledger_charges,
                }
                for run in reconciliation.latest_runs(session, actor, limit=5)
            ],
            "done": request.query_params.get("done"),
            "settings": _settings_view(session, actor),
            "settings_error": None,
        },
    )


def _settings_view(session: Session, actor: Actor) -> dict[str, Any] | None:
    if not has_permission(actor, Permission.USER_MANAGE):
        return None
    return {
        **policy.billing_settings(session, actor),
        "tax_rates": [
            {
                "country": rate.country,
                "region": rate.region or "-",
                "rate": rate.label,
                "inclusive": "inclusive" if rate.inclusive else "exclusive",
                "valid": f"{rate.valid_from} to {rate.valid_until or 'open'}",
            }
            for rate in taxes.list_rates(session, actor)
        ],
        "behaviors": [
            ("create_prorations", "on the next invoice"),
            ("always_invoice", "invoiced at once"),
        ],
    }


@router.post("/billing/settings", response_model=None)
def save_settings(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    proration_behavior: Annotated[str, Form()],
    dispute_deadline_margin_hours: Annotated[str, Form()],
    seller_country: Annotated[str, Form()] = "",
) -> Response:
    try:
        hours = int(dispute_deadline_margin_hours)
    except ValueError:
        hours = -1
    try:
        with session.begin_nested():
            policy.update_settings(
                session,
                actor,
                proration_behavior=proration_behavior,
                dispute_deadline_margin_hours=hours,
                seller_country=seller_country.strip() or None,
            )
    except DomainError as error:
        return _page(
            request,
            "billing/overview.html",
            {
                "approvals": [],
                "disputes": [],
                "dunning": [],
                "runs": [],
                "settings": _settings_view(session, actor),
                "settings_error": _explain(error),
            },
            status_code=422,
        )
    return RedirectResponse("/billing?done=settings", status_code=303)


@router.post("/billing/tax-rates", response_model=None)
def add_tax_rate(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    country: Annotated[str, Form()],
    rate_percent: Annotated[str, Form()],
    tax_name: Annotated[str, Form()],
    valid_from: Annotated[str, Form()],
    region: Annotated[str, Form()] = "",
    inclusive: Annotated[str, Form()] = "",
    valid_until: Annotated[str, Form()] = "",
) -> Response:
    """An admin adds a rate: the percentage is read exactly (20, 7.25) into basis points."""
    try:
        basis_points = int((Decimal(rate_percent.strip()) * 100).to_integral_exact())
        starts = date.fromisoformat(valid_from.strip())
        ends = date.fromisoformat(valid_until.strip()) if valid_until.strip() else None
    except (ArithmeticError, ValueError):
        return _settings_error(request, session, actor, "the rate is a percentage and the dates YYYY-MM-DD")
    try:
        with session.begin_nested():
            taxes.add_tax_rate(
                session,
                actor,
                country=country,
                region=region or None,
                rate_basis_points=basis_points,
                inclusive=bool(inclusive),
                tax_name=tax_name,
                valid_from=starts,
                valid_until=ends,
            )
    except DomainError as error:
        return _settings_error(request, session, actor, _explain(error))
    return RedirectResponse("/billing?done=tax-rate", status_code=303)


def _settings_error(request: Request, session: Session, actor: Actor, message: str) -> HTMLResponse:
    return _page(
        request,
        "billing/overview.html",
        {
            "approvals": [],
            "disputes": [],
            "dunning": [],
            "runs": [],
            "settings": _settings_view(session, actor),
            "settings_error": message,
        },
        status_code=422,
    )


@router.post("/billing/customers/{customer_id}/tax", response_model=None)
def customer_tax(
    customer_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    subscription_id: Annotated[int, Form()],
    country: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    exempt: Annotated[str, Form()] = "none",
    vat_id: Annotated[str, Form()] = "",
) -> Response:
    customer = access.access_customer(session, actor, customer_id)
    try:
        with session.begin_nested():
            taxes.set_customer_tax(
                session,
                actor,
                customer,
                country=country or None,
                region=region or None,
                exempt=exempt,
                vat_id=vat_id,
            )
    except DomainError as error:
        subscription = access.access_subscription(session, actor, subscription_id)
        return _page(
            request,
            "billing/subscription.html",
            _subscription_view(session, actor, subscription, error=_explain(error)),
            status_code=422,
        )
    return RedirectResponse(f"/billing/subscriptions/{subscription_id}?done=tax", status_code=303)


def _dispute_row(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status.replace("_", " "),
        "reason": item.reason.replace("_", " "),
        "amount": _money(item.amount_minor, item.currency),
        "due": _when(item.evidence_due_at),
        "ticket_id": item.ticket_id,
        "inquiry": item.is_inquiry,
    }


@router.post("/billing/refunds/{refund_id}/decision", response_model=None)
def decide_refund(
    refund_id: int,
    actor: ActorDep,
    session: SessionDep,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    refund = access.access_refund(session, actor, refund_id, for_update=True)
    if decision == "approve":
        refunds.approve_refund(session, actor, refund, note=reason)
    else:
        refunds.reject_refund(session, actor, refund, reason=reason)
    return RedirectResponse(f"/billing?done=refund-{refund_id}-{decision}", status_code=303)


# ---------------------------------------------------------------- subscriptions


def _subscription_view(
    session: Session, actor: Actor, subscription: Subscription, **extra: Any
) -> dict[str, Any]:
    prices = session.scalars(
        select(BillingPrice)
        .where(
            BillingPrice.currency == subscription.price.currency,
            BillingPrice.is_active.is_(True),
        )
        .order_by(BillingPrice.interval, BillingPrice.unit_amount_minor)
    ).all()
    return {
        "subscription": {
            "id": subscription.id,
            "customer": subscription.customer.name,
            "account_id": subscription.customer.account_id,
            "plan": subscription.price.product.name,
            "price": f"{_money(subscription.price.unit_amount_minor, subscription.price.currency)} / "
            f"{subscription.price.interval}",
            "seats": subscription.seats,
            "status": subscription.status,
            "period": _when(subscription.current_period_start)
            + " - "
            + _when(subscription.current_period_end),
            "renews": _when(subscription.renews_at),
            "paused": subscription.paused_at is not None,
            "cancel_at_period_end": subscription.cancel_at_period_end,
        },
        "prices": [
            {
                "id": price.id,
                "label": f"{price.product.name} {price.nickname} - "
                f"{_money(price.unit_amount_minor, price.currency)}"
                f"{' per seat' if price.pricing_model == 'per_seat' else ''}",
                "selected": price.id == subscription.price_id,
            }
            for price in prices
        ],
        "cancel_modes": [mode.value for mode in CancelMode],
        "tax": {
            "customer_id": subscription.customer_id,
            "country": subscription.customer.tax_country or "",
            "region": subscription.customer.tax_region or "",
            "exempt": subscription.customer.tax_exempt,
            "vat_id": subscription.customer.vat_id or "",
        },
        "can_change": has_permission(actor, Permission.BILLING_WRITE),
        "preview": None,
        "error": None,
        **extra,
    }


def _preview_view(change: PlanChange) -> dict[str, Any]:
    return {
        "lines": [
            {
                "description": line.description,
                "amount": _money(line.amount_minor, change.currency),
                "tax": _money(line.tax_amount_minor, change.currency),
            }
            for line in change.lines
        ],
        "net": _money(change.net_amount_minor, change.currency),
        "tax": _money(change.tax_amount_minor, change.currency),
        "total": _money(change.total_amount_minor, change.currency),
        "tax_note": change.tax_note,
        "due_now": _money(change.amount_due_now_minor, change.currency),
        "price_id": change.new_price.id,
        "seats": change.new_seats,
        "behavior": f"a new period starts now, to {change.new_period_end:%Y-%m-%d}; invoiced now"
        if change.resets_period and change.new_period_end is not None
        else "invoiced now"
        if change.proration_behavior == "always_invoice"
        else "on the next invoice",
    }


@router.get("/billing/subscriptions/{subscription_id}", response_class=HTMLResponse)
def subscription_page(
    subscription_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    price_id: int | None = None,
    seats: int | None = None,
) -> HTMLResponse:
    require(actor, Permission.PAYMENT_READ)
    subscription = access.access_subscription(session, actor, subscription_id)
    extra: dict[str, Any] = {"done": request.query_params.get("done")}
    if price_id is not None or seats is not None:
        try:
            change = plan_changes.preview_change(session, actor, subscription, price_id=price_id, seats=seats)
            extra["preview"] = _preview_view(change)
        except DomainError as error:
            extra["error"] = _explain(error)
    return _page(
        request, "billing/subscription.html", _subscription_view(session, actor, subscription, **extra)
    )


def _explain(error: DomainError) -> str:
    details = "; ".join(f"{'.'.join(map(str, field.location))}: {field.message}" for field in error.fields)
    return f"{error.detail}" + (f" ({details})" if details else "")


@router.post("/billing/subscriptions/{subscription_id}/change", response_model=None)
def change_page(
    subscription_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    price_id: Annotated[int, Form()],
    seats: Annotated[int, Form()],
) -> Response:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    try:
        # A savepoint: a refused change rolls back alone and the page can still be rendered.
        with session.begin_nested():
            plan_changes.change_subscription(session, actor, subscription, price_id=price_id, seats=seats)
    except DomainError as error:
        subscription = access.access_subscription(session, actor, subscription_id)
        return _page(
            request,
            "billing/subscription.html",
            _subscription_view(session, actor, subscription, error=_explain(error)),
            status_code=422,
        )
    return RedirectResponse(f"/billing/subscriptions/{subscription_id}?done=changed", status_code=303)


@router.post("/billing/subscriptions/{subscription_id}/cancel", response_model=None)
def cancel_page(
    subscription_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    mode: Annotated[str, Form()],
) -> Response:
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    try:
        with session.begin_nested():
            cancellations.cancel_subscription(session, actor, subscription, mode=mode)
    except DomainError as error:
        subscription = access.access_subscription(session, actor, subscription_id)
        return _page(
            request,
            "billing/subscription.html",
            _subscription_view(session, actor, subscription, error=_explain(error)),
            status_code=422,
        )
    return RedirectResponse(f"/billing/subscriptions/{subscription_id}?done=canceled", status_code=303)


# ---------------------------------------------------------------- disputes


@router.get("/billing/disputes/{dispute_id}", response_class=HTMLResponse)
def dispute_page(dispute_id: int, request: Request, actor: ActorDep, session: SessionDep) -> HTMLResponse:
    dispute = access.access_dispute(session, actor, dispute_id)
    return _page(
        request,
        "billing/dispute.html",
        {
            "dispute": {
                **_dispute_row(dispute),
                "fee": _money(dispute.fee_amount_minor, dispute.currency),
                "submitted": _when(dispute.evidence_submitted_at),
                "stripe_id": dispute.stripe_dispute_id,
                "closed": dispute.closed_at is not None,
                "can_submit": dispute.status in ("needs_response", "warning_needs_response"),
            },
            "suggested": sorted(disputes.suggested_evidence(session, dispute).items()),
            "submitted_fields": sorted((dispute.evidence or {}).items()),
            "error": request.query_params.get("error"),
        },
    )


@router.post("/billing/disputes/{dispute_id}/evidence", response_model=None)
def dispute_evidence(
    dispute_id: int,
    actor: ActorDep,
    session: SessionDep,
    rebuttal: Annotated[str, Form()] = "",
) -> Response:
    dispute = access.access_dispute(session, actor, dispute_id, for_update=True)
    disputes.submit_evidence(
        session, actor, dispute, fields={"uncategorized_text": rebuttal} if rebuttal.strip() else {}
    )
    return RedirectResponse(f"/billing/disputes/{dispute_id}", status_code=303)


# ---------------------------------------------------------------- reconciliation


@router.get("/billing/reconciliation", response_class=HTMLResponse)
def reconciliation_page(
    request: Request, actor: ActorDep, session: SessionDep, run: int | None = None
) -> HTMLResponse:
    runs = reconciliation.latest_runs(session, actor)
    chosen = run or (runs[0].id if runs else None)
    items = reconciliation.discrepancies_of(session, actor, chosen) if chosen else []
    return _page(
        request,
        "billing/reconciliation.html",
        {
            "runs": [
                {
                    "id": item.id,
                    "source": item.source,
                    "started_at": _when(item.started_at),
                    "ledger": item.ledger_charges,
                    "provider": item.provider_charges,
                    "discrepancies": item.discrepancy_count,
                    "current": item.id == chosen,
                }
                for item in runs
            ],
            "items": [
                {
                    "id": item.id,
                    "kind": item.kind.replace("_", " "),
                    "external_id": item.external_id or "-",
                    "detail": item.detail,
                    "ledger": item.ledger_value or "-",
                    "stripe": item.provider_value or "-",
                    "account_id": item.account_id,
                    "ticket_id": item.ticket_id,
                }
                for item in items
            ],
            "counts": sorted(reconciliation.counts_by_kind(session, chosen).items()) if chosen else [],
            "error": None,
        },
    )


@router.post("/billing/reconciliation", response_model=None)
async def reconciliation_run(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    source: Annotated[str, Form()] = "csv",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    lines = None
    if file is not None and file.filename:
        lines = io.StringIO((await file.read()).decode("utf-8-sig", errors="replace"))
    try:
        with session.begin_nested():
            run = reconciliation.reconcile(session, actor, source=source, csv_lines=lines)
    except DomainError as error:
        return _page(
            request,
            "billing/reconciliation.html",
            {"runs": [], "items": [], "counts": [], "error": _explain(error)},
            status_code=422,
        )
    return RedirectResponse(f"/billing/reconciliation?run={run.id}", status_code=303)


@router.post("/billing/discrepancies/{discrepancy_id}/ticket", response_model=None)
def discrepancy_ticket(discrepancy_id: int, actor: ActorDep, session: SessionDep) -> Response:
    item = reconciliation.access_discrepancy(session, actor, discrepancy_id)
    reconciliation.open_ticket(session, actor, item)
    return RedirectResponse(f"/billing/reconciliation?run={item.run_id}", status_code=303)


# ---------------------------------------------------------------- the ticket's billing panel


@router.get("/billing/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_billing(ticket_id: int, request: Request, actor: ActorDep, session: SessionDep) -> HTMLResponse:
    return _ticket_page(request, session, actor, ticket_id)


def _ticket_page(
    request: Request,
    session: Session,
    actor: Actor,
    ticket_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
    preview: dict[str, Any] | None = None,
    subscription: Subscription | None = None,
) -> HTMLResponse:
    """The billing page of a ticket: where a refused action explains itself, and where a plan
    change is previewed before it is confirmed (the ticket page's panel links here)."""
    ticket = access_ticket(session, actor, ticket_id)
    panel = ticket_panel.panel_for_ticket(session, actor, ticket)
    return _page(
        request,
        "billing/ticket_panel.html",
        {
            "ticket": {"id": ticket.id, "subject": ticket.subject},
            "has_customer": panel.customer_id is not None,
            "panel": {"context": {"billing": panel_view(panel, ticket.id)}},
            "error": error,
            "preview": preview,
            "change_subscription": {
                "id": subscription.id,
                "plan": subscription.price.product.name,
                "seats": subscription.seats,
            }
            if subscription is not None
            else None,
        },
        status_code=status_code,
    )


def _ticket_subscription(session: Session, actor: Actor, ticket: Any, subscription_id: int) -> Subscription:
    """A subscription of the ticket's billing customer (any other is not found from here)."""
    customer = ticket_panel.customer_for_ticket(session, ticket)
    subscription = access.access_subscription(session, actor, subscription_id, for_update=True)
    if customer is None or subscription.customer_id != customer.id:
        raise BillingNotFoundError(f"subscription {subscription_id} is not this ticket's customer's")
    return subscription


def _back_to_ticket(ticket_id: int) -> RedirectResponse:
    return RedirectResponse(f"/tickets/{ticket_id}#panel-billing", status_code=303)


@router.post("/billing/tickets/{ticket_id}/refund", response_model=None)
def ticket_refund(
    ticket_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    reason: Annotated[str, Form()],
    amount: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    payment_id: Annotated[int | None, Form()] = None,
) -> Response:
    """Refund a charge of the ticket's customer (all that is left when no amount is given):
    within the actor's limit at once, above it into the lead's approval queue."""
    ticket = access_ticket(session, actor, ticket_id)
    customer = ticket_panel.customer_for_ticket(session, ticket)
    payment = None
    if payment_id is not None:
        payment = access.access_payment(session, actor, payment_id)
        if customer is None or payment.customer_id != customer.id:
            raise BillingNotFoundError(f"payment {payment_id} is not this ticket's customer's")
    elif customer is not None:
        payment = refunds.latest_refundable_payment(session, customer.account_id)
    if payment is None:
        return _ticket_page(
            request,
            session,
            actor,
            ticket_id,
            error="This ticket's account has no charge left to refund.",
            status_code=422,
        )
    try:
        amount_minor = (
            Money.from_decimal(amount.strip(), payment.currency).amount_minor
            if amount.strip()
            else payment.refundable_amount_minor
        )
    except ArithmeticError:
        return _ticket_page(
            request, session, actor, ticket_id, error=f"{amount!r} is not an amount", status_code=422
        )
    try:
        with session.begin_nested():
            refunds.issue_refund(
                session, actor, payment, amount_minor=amount_minor, reason=reason, note=note, ticket=ticket
            )
    except DomainError as failure:
        return _ticket_page(request, session, actor, ticket_id, error=_explain(failure), status_code=422)
    return _back_to_ticket(ticket_id)


@router.get(
    "/billing/tickets/{ticket_id}/subscriptions/{subscription_id}/change", response_class=HTMLResponse
)
def ticket_change_preview(
    ticket_id: int,
    subscription_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    price_id: int | None = None,
    seats: int | None = None,
) -> HTMLResponse:
    """The proration preview of a plan or seat change, with the button that confirms it."""
    ticket = access_ticket(session, actor, ticket_id)
    subscription = _ticket_subscription(session, actor, ticket, subscription_id)
    try:
        change = plan_changes.preview_change(session, actor, subscription, price_id=price_id, seats=seats)
    except DomainError as error:
        return _ticket_page(
            request,
            session,
            actor,
            ticket_id,
            error=_explain(error),
            status_code=422,
            subscription=subscription,
        )
    return _ticket_page(
        request, session, actor, ticket_id, preview=_preview_view(change), subscription=subscription
    )


@router.post("/billing/tickets/{ticket_id}/subscriptions/{subscription_id}/change", response_model=None)
def ticket_change(
    ticket_id: int,
    subscription_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    price_id: Annotated[int, Form()],
    seats: Annotated[int, Form()],
) -> Response:
    ticket = access_ticket(session, actor, ticket_id)
    subscription = _ticket_subscription(session, actor, ticket, subscription_id)
    try:
        with session.begin_nested():
            plan_changes.change_subscription(
                session, actor, subscription, price_id=price_id, seats=seats, ticket=ticket
            )
    except DomainError as error:
        return _ticket_page(request, session, actor, ticket_id, error=_explain(error), status_code=422)
    return _back_to_ticket(ticket_id)


@router.post("/billing/tickets/{ticket_id}/subscriptions/{subscription_id}/cancel", response_model=None)
def ticket_cancel(
    ticket_id: int,
    subscription_id: int,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    mode: Annotated[str, Form()],
) -> Response:
    ticket = access_ticket(session, actor, ticket_id)
    subscription = _ticket_subscription(session, actor, ticket, subscription_id)
    try:
        with session.begin_nested():
            cancellations.cancel_subscription(session, actor, subscription, mode=mode, ticket=ticket)
    except DomainError as error:
        return _ticket_page(request, session, actor, ticket_id, error=_explain(error), status_code=422)
    return _back_to_ticket(ticket_id)
