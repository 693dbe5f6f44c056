"""Reconciliation: opsdesk's ledger against Stripe (its API, or a charges/balance CSV export).

Finds missing and duplicate charges, refunds not reflected, amount and currency mismatches and
subscriptions whose status differs. Each discrepancy is stored with links to the account and
customer and can open a ticket. The comparison streams (pure, in
:mod:`opsdesk.billing.reconciliation_compare`); a million charges take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing.enums import PaymentStatus, ProviderName
from opsdesk.billing.errors import BillingNotFoundError, InvalidBillingRequestError, ReconciliationInputError
from opsdesk.billing.models import BillingCustomer, Discrepancy, Payment, ReconciliationRun, Subscription
from opsdesk.billing.providers import BillingProvider, provider_named
from opsdesk.billing.reconciliation_compare import (
    Found,
    LedgerCharge,
    LedgerSubscription,
    ProviderCharge,
    compare_charges,
    compare_subscriptions,
)
from opsdesk.billing.stripe_csv import CsvFormatError, read_export
from opsdesk.errors import FieldProblem
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket

SOURCES = ("api", "csv")


def ledger_charges(session: Session) -> Iterator[LedgerCharge]:
    """Captured charges of Stripe-billed customers, streamed in chunks."""
    # Core rows on the session's connection: no ORM row processing for a million charges.
    rows = session.connection().execute(
        select(
            Payment.stripe_charge_id,
            Payment.amount_minor,
            Payment.currency,
            Payment.refunded_amount_minor,
            Payment.id,
            Payment.customer_id,
            BillingCustomer.account_id,
        )
        .join(BillingCustomer, BillingCustomer.id == Payment.customer_id)
        .where(
            Payment.stripe_charge_id.is_not(None),
            Payment.status == PaymentStatus.SUCCEEDED.value,
            BillingCustomer.provider == ProviderName.STRIPE.value,
        )
        .execution_options(yield_per=20_000)
    )
    for charge_id, amount, currency, refunded, payment_id, customer_id, account_id in rows:
        yield LedgerCharge(charge_id or "", amount, currency, refunded, payment_id, customer_id, account_id)


def _ledger_subscriptions(session: Session) -> Iterator[LedgerSubscription]:
    rows = session.execute(
        select(
            Subscription.stripe_subscription_id,
            Subscription.status,
            Subscription.id,
            Subscription.customer_id,
            BillingCustomer.account_id,
        )
        .join(BillingCustomer, BillingCustomer.id == Subscription.customer_id)
        .where(Subscription.stripe_subscription_id.is_not(None))
    )
    for row in rows:
        yield LedgerSubscription(row[0] or "", row[1], row[2], row[3], row[4])


class _Counted:
    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.count += 1
            yield item


def reconcile(
    session: Session,
    actor: Actor,
    *,
    source: str,
    csv_lines: Iterable[str] | None = None,
    provider: BillingProvider | None = None,
) -> ReconciliationRun:
    require(actor, Permission.BILLING_WRITE)
    if source not in SOURCES:
        raise InvalidBillingRequestError("unknown source", fields=[FieldProblem(("source",), "api or csv")])
    if source == "csv" and csv_lines is None:
        raise InvalidBillingRequestError(
            "a CSV export is needed", fields=[FieldProblem(("file",), "required")]
        )
    run = ReconciliationRun(source=source, started_at=clock.now(), started_by=actor.name)
    session.add(run)
    session.flush()
    chosen = provider or (provider_named(ProviderName.STRIPE.value) if source == "api" else None)
    remote: Iterable[ProviderCharge] = (
        read_export(csv_lines)
        if csv_lines is not None
        else (chosen.list_charges() if chosen is not None else ())
    )
    ledger = _Counted(ledger_charges(session))
    counted_remote = _Counted(remote)
    found: list[Found] = []
    try:
        found.extend(compare_charges(ledger, counted_remote))
    except CsvFormatError as error:
        raise ReconciliationInputError(str(error), fields=[FieldProblem(("file",), str(error))]) from error
    if source == "api" and chosen is not None:
        found.extend(compare_subscriptions(_ledger_subscriptions(session), chosen.subscription_statuses()))
    for start in range(0, len(found), 5_000):
        session.execute(
            insert(Discrepancy),
            [
                {
                    "run_id": run.id,
                    "kind": item.kind.value,
                    "external_id": item.external_id,
                    "detail": item.detail,
                    "ledger_value": item.ledger_value,
                    "provider_value": item.provider_value,
                    "payment_id": item.payment_id,
                    "customer_id": item.customer_id,
                    "account_id": item.account_id,
                    "subscription_id": item.subscription_id,
                }
                for item in found[start : start + 5_000]
            ],
        )
    run.ledger_charges = ledger.count
    run.provider_charges = counted_remote.count
    run.discrepancy_count = len(found)
    run.finished_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="reconciliation_run",
        entity_id=run.id,
        action="completed",
        new={
            "source": source,
            "ledger": ledger.count,
            "provider": counted_remote.count,
            "discrepancies": len(found),
        },
    )
    return run


def latest_runs(session: Session, actor: Actor, limit: int = 20) -> list[ReconciliationRun]:
    require(actor, Permission.PAYMENT_READ)
    return list(session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)))


def discrepancies_of(session: Session, actor: Actor, run_id: int, *, limit: int = 500) -> list[Discrepancy]:
    require(actor, Permission.PAYMENT_READ)
    if session.get(ReconciliationRun, run_id) is None:
        raise BillingNotFoundError(f"reconciliation run {run_id} not found")
    return list(
        session.scalars(
            select(Discrepancy).where(Discrepancy.run_id == run_id).order_by(Discrepancy.id).limit(limit)
        )
    )


def counts_by_kind(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Discrepancy.kind, func.count()).where(Discrepancy.run_id == run_id).group_by(Discrepancy.kind)
    )
    return {kind: int(count) for kind, count in rows}


def open_ticket(session: Session, actor: Actor, discrepancy: Discrepancy) -> Ticket:
    """A ticket for a billing specialist to resolve the discrepancy (once per discrepancy)."""
    require(actor, Permission.BILLING_WRITE)
    if discrepancy.ticket_id is not None:
        existing = session.get(Ticket, discrepancy.ticket_id)
        if existing is not None:
            return existing
    customer = session.get(BillingCustomer, discrepancy.customer_id) if discrepancy.customer_id else None
    body = [
        f"Reconciliation found: {discrepancy.kind.replace('_', ' ')} for {discrepancy.external_id or '-'}.",
        discrepancy.detail,
        f"Ledger: {discrepancy.ledger_value or '-'}; Stripe: {discrepancy.provider_value or '-'}.",
    ]
    kind = discrepancy.kind.replace("_", " ")
    ticket = tickets.create_ticket(
        session,
        actor,
        tickets.NewTicket(
            subject=f"Billing discrepancy: {kind} {discrepancy.external_id or ''}".strip(),
            body_text="\n".join(body),
            requester_email=customer.email if customer is not None else "billing-operations@opsdesk.invalid",
            requester_name=customer.name if customer is not None else "Billing operations",
            type="task",
            category="billing",
            tags=["billing", "reconciliation"],
        ),
    )
    if discrepancy.account_id is not None and ticket.account_id != discrepancy.account_id:
        tickets.update_ticket(session, actor, ticket, {"account_id": discrepancy.account_id})
    discrepancy.ticket_id = ticket.id
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="discrepancy",
        entity_id=discrepancy.id,
        action="ticket_opened",
        new={"ticket_id": ticket.id},
        ticket_id=ticket.id,
    )
    return ticket


def access_discrepancy(session: Session, actor: Actor, discrepancy_id: int) -> Discrepancy:
    require(actor, Permission.PAYMENT_READ)
    found = session.get(Discrepancy, discrepancy_id)
    if found is None:
        raise BillingNotFoundError(f"discrepancy {discrepancy_id} not found")
    return found
