"""Demo billing for the seeded company: plans and prices in USD, EUR and GBP, FX rates, refund
limits, a billing customer and subscription per paying account, three months of invoices and
payments (a few cards failing into dunning), an enterprise invoice on net terms, and disputes.

Deterministic for the run's seed: every choice draws from ``context.random``. Fast: the plans are
decided in memory, then customers, subscriptions, every period's invoice, line and payment, and
their audit rows are written with a handful of Core bulk inserts (the demo's thousands of accounts
seed in seconds); the few remaining rows (catalog, limits, disputes) go through the services.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.billing import dunning_schedule, tax
from opsdesk.billing.bulk import insert_rows
from opsdesk.billing.models import BillingCustomer, BillingPrice, Invoice, InvoiceLine, Payment, Subscription
from opsdesk.billing.periods import add_interval, add_months
from opsdesk.billing.service import catalog, disputes, invoicing, notices, policy, taxes
from opsdesk.billing.service.disputes import DisputeFacts
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Account, Person, PersonEmail, Ticket

if TYPE_CHECKING:
    from opsdesk.demo.context import SeedContext, SeededAccount

SEED_ACTOR = Actor.system("Demo seed", via="seed")
# (code, name, interval, pricing model, USD amount in cents); EUR and GBP follow by rate.
PLANS: tuple[tuple[str, str, str, str, int], ...] = (
    ("starter", "Starter", "month", "flat", 2_900),
    ("team", "Team", "month", "per_seat", 2_500),
    ("team-annual", "Team", "year", "per_seat", 25_000),
    ("business", "Business", "month", "per_seat", 4_900),
    ("enterprise", "Enterprise", "year", "per_seat", 54_000),
)
CURRENCY_FACTORS = {"USD": Decimal(1), "EUR": Decimal("0.92"), "GBP": Decimal("0.79")}
DECLINES = ("insufficient_funds", "expired_card", "card_declined")


def seed(session: Session, context: SeedContext) -> None:
    generator = context.random
    end = context.end
    prices = _catalog(session)
    for role, usd in (("agent", 5_000), ("contractor", 5_000), ("billing", 50_000)):
        for currency, factor in CURRENCY_FACTORS.items():
            policy.set_refund_limit(
                session, SEED_ACTOR, role=role, currency=currency, limit_amount_minor=int(usd * factor)
            )
    for currency, factor in CURRENCY_FACTORS.items():
        if currency != "USD":
            policy.record_fx_rate(
                session,
                SEED_ACTOR,
                base=currency,
                quote="USD",
                rate=(Decimal(1) / factor).quantize(Decimal("0.0001")),
                on=end.date(),
            )
    notices.install_notice_macros(session, SEED_ACTOR)
    policy.update_settings(session, SEED_ACTOR, seller_country="IE")
    for country, basis_points in (("GB", 2_000), ("DE", 1_900), ("FR", 2_000), ("NL", 2_100)):
        taxes.add_tax_rate(
            session,
            SEED_ACTOR,
            country=country,
            region=None,
            rate_basis_points=basis_points,
            inclusive=False,
            tax_name="VAT",
            valid_from=date(2020, 1, 1),
        )
    paying = [seeded for seeded in context.accounts if seeded.mrr_amount_minor > 0]
    plans = _plan_customers(session, context, paying, prices)
    with clock.frozen(end):
        customer_ids = _insert_customers(session, plans)
        subscription_ids = _insert_subscriptions(session, plans, customer_ids)
        _insert_history(session, generator, plans, customer_ids, subscription_ids, end)
        _disputes(session, context)
    # Enterprise seat expansions invoiced on net terms: one overdue, one due soon.
    enterprise = [customer_ids[plan.account_id] for plan in plans if plan.enterprise][:4]
    for index, customer_id in enumerate(enterprise):
        with clock.frozen(end - timedelta(days=40 if index % 2 == 0 else 12)):
            invoicing.create_invoice(
                session,
                SEED_ACTOR,
                session.get_one(BillingCustomer, customer_id),
                payment_terms="net_30",
                lines=[invoicing.ManualLine("Additional Enterprise seats (pro rata)", 5 + index * 5, 45_000)],
            )


@dataclass(frozen=True, slots=True)
class _Plan:
    """One paying account's billing, decided before anything is written."""

    account_id: int
    name: str
    email: str
    person_id: int | None
    currency: str
    enterprise: bool
    price: BillingPrice
    seats: int
    start: datetime
    card_brand: str | None
    card_last4: str | None
    card_state: str
    tos_accepted_at: datetime
    tos_accepted_ip: str
    tax_country: str | None = None
    vat_id: str | None = None


def _plan_customers(
    session: Session,
    context: SeedContext,
    paying: list[SeededAccount],
    prices: dict[tuple[str, str], BillingPrice],
) -> list[_Plan]:
    generator = context.random
    end = context.end
    ids = [seeded.id for seeded in paying]
    currencies: dict[int, str] = {}
    contacts: dict[int, tuple[int | None, str]] = {}
    with_open_tickets: set[int | None] = set()
    for chunk in range(0, len(ids), 900):
        part = ids[chunk : chunk + 900]
        for account_id, currency in session.execute(
            select(Account.id, Account.currency).where(Account.id.in_(part))
        ):
            currencies[account_id] = currency
        for contact_account_id, person_id, email in session.execute(
            select(Person.primary_account_id, Person.id, PersonEmail.email)
            .join(PersonEmail, PersonEmail.person_id == Person.id)
            .where(Person.primary_account_id.in_(part))
            .order_by(Person.id, PersonEmail.id)
        ):
            if contact_account_id is not None:
                contacts.setdefault(contact_account_id, (person_id, email))
        with_open_tickets.update(
            session.scalars(
                select(Ticket.account_id)
                .where(Ticket.account_id.in_(part), Ticket.status.in_(UNSOLVED_STATUSES))
                .distinct()
            )
        )
    plans = []
    for seeded in paying:
        currency = currencies[seeded.id] if currencies.get(seeded.id) in CURRENCY_FACTORS else "USD"
        contact, email = contacts.get(seeded.id, (None, f"billing-{seeded.id}@customer.invalid"))
        enterprise = seeded.tier == "enterprise"
        code = {"enterprise": "enterprise", "business": "business"}.get(
            seeded.tier, generator.choice(("starter", "team", "team-annual"))
        )
        price = prices[(code, currency)]
        seats = max(
            1,
            seeded.mrr_amount_minor
            // max(price.unit_amount_minor // (12 if price.interval == "year" else 1), 1),
        )
        seats = 1 if price.pricing_model == "flat" else min(seats, 2_000)
        brand = None if enterprise else generator.choice(("visa", "mastercard", "amex"))
        last4 = None if enterprise else f"{generator.randrange(10_000):04d}"
        tos_at = end - timedelta(days=generator.randrange(120, 700))
        ip = f"198.51.100.{generator.randrange(1, 255)}"
        # Monthly plans started three months ago, annual ones some months into their year.
        months_back = 3 if price.interval == "month" else generator.randrange(3, 11)
        start = add_months(end, -months_back) - timedelta(days=generator.randrange(0, 27))
        # A few cards decline (dunning in the demo), on accounts without an open ticket so the
        # seeded conversations stay exactly as the ticket seeder wrote them.
        declines = not enterprise and generator.random() < 0.06 and seeded.id not in with_open_tickets
        # Where they are taxed: euro customers in Germany, France or the Netherlands (businesses
        # with a VAT id: reverse charge from the Irish seller), pound customers in the UK.
        tax_country = {"EUR": generator.choice(("DE", "FR", "NL")), "GBP": "GB"}.get(currency)
        vat_id = (
            f"{tax_country}{generator.randrange(10**8, 10**9)}"
            if tax_country in ("DE", "FR", "NL") and seeded.tier in ("enterprise", "business")
            else None
        )
        plans.append(
            _Plan(
                seeded.id,
                seeded.name,
                email.strip().lower(),
                contact,
                currency,
                enterprise,
                price,
                seats,
                start,
                brand,
                last4,
                generator.choice(DECLINES) if declines else "valid",
                tos_at,
                ip,
                tax_country,
                vat_id,
            )
        )
    return plans


def _audit_rows(entity_type: str, ids: list[int], action: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "action": action,
            "actor_kind": SEED_ACTOR.kind.value,
            "actor_id": SEED_ACTOR.actor_id,
            "actor_name": SEED_ACTOR.name,
            "via": SEED_ACTOR.via,
            "created_at": now,
        }
        for entity_id in ids
    ]


def _insert_customers(session: Session, plans: list[_Plan]) -> dict[int, int]:
    """One Core insert for every billing customer; answers account id -> customer id."""
    now = clock.now()
    rows = [
        {
            "account_id": plan.account_id,
            "person_id": plan.person_id,
            "name": plan.name,
            "email": plan.email,
            "currency": plan.currency,
            "provider": "local",
            "stripe_customer_id": None,
            "payment_terms": "net_30" if plan.enterprise else "card",
            "po_number": f"PO-{plan.account_id:05d}" if plan.enterprise else None,
            "credit_balance_minor": 0,
            "card_brand": plan.card_brand,
            "card_last4": plan.card_last4,
            "card_state": plan.card_state,
            "tos_version": "2025-09",
            "tos_accepted_at": plan.tos_accepted_at,
            "tos_accepted_ip": plan.tos_accepted_ip,
            "tax_country": plan.tax_country,
            "tax_region": None,
            "tax_exempt": "none",
            "vat_id": plan.vat_id,
            "created_at": plan.start,
        }
        for plan in plans
    ]
    if not rows:
        return {}
    connection = session.connection()
    insert_rows(connection, BillingCustomer, rows)
    ids = {
        account_id: customer_id
        for customer_id, account_id in session.execute(select(BillingCustomer.id, BillingCustomer.account_id))
    }
    insert_rows(connection, AuditEvent, _audit_rows("billing_customer", list(ids.values()), "created", now))
    return ids


def _insert_subscriptions(
    session: Session, plans: list[_Plan], customer_ids: dict[int, int]
) -> dict[int, int]:
    """Every subscription as it stands at the seeded "now" (periods rolled forward); answers
    customer id -> subscription id."""
    now = clock.now()
    rows = []
    for plan in plans:
        period_start = plan.start
        period_end = add_interval(period_start, plan.price.interval)
        while period_end <= now:
            period_start, period_end = period_end, add_interval(period_end, plan.price.interval)
        failing = plan.card_state != "valid"
        rows.append(
            {
                "customer_id": customer_ids[plan.account_id],
                "price_id": plan.price.id,
                "status": "past_due" if failing and period_start > plan.start else "active",
                "seats": plan.seats,
                "current_period_start": period_start,
                "current_period_end": period_end,
                "trial_end": None,
                "cancel_at_period_end": False,
                "canceled_at": None,
                "paused_at": None,
                "past_due_since": period_start if failing and period_start > plan.start else None,
                "stripe_subscription_id": None,
                "created_at": plan.start,
                "updated_at": now,
            }
        )
    if not rows:
        return {}
    connection = session.connection()
    insert_rows(connection, Subscription, rows)
    ids = {
        customer_id: subscription_id
        for subscription_id, customer_id in session.execute(select(Subscription.id, Subscription.customer_id))
    }
    insert_rows(connection, AuditEvent, _audit_rows("subscription", list(ids.values()), "created", now))
    return ids


def _insert_history(
    session: Session,
    generator: random.Random,
    plans: list[_Plan],
    customer_ids: dict[int, int],
    subscription_ids: dict[int, int],
    end: datetime,
) -> None:
    """Every period's invoice (one subscription line), its card payment or bank transfer, the way
    the month-end run would have written them: cards are charged at issue; a declining card's
    latest renewal failed and waits for its first retry; net-terms invoices are paid by bank
    transfer some days in, except the latest, still open."""
    invoices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    first_retry_days = dunning_schedule.RETRY_AFTER_DAYS[0]
    context = taxes.TaxContext.load(session)
    for plan in plans:
        customer_id = customer_ids[plan.account_id]
        subscription_id = subscription_ids[customer_id]
        price = plan.price
        quantity = plan.seats if price.pricing_model == "per_seat" else 1
        rate, tax_note = context.decide(
            tax.TaxLocation(plan.tax_country, None, "none", plan.vat_id), end.date()
        )
        taxed = tax.tax_line(price.unit_amount_minor * quantity, rate)
        amount = taxed.amount
        total = taxed.amount + taxed.tax
        description = f"{plan.seats} x {price.product.name} ({price.nickname})"
        period_start = plan.start
        while period_start <= end:
            period_end = add_interval(period_start, price.interval)
            latest = period_end > end
            number = f"OD-{subscription_id}-{period_start:%Y%m%d}"
            terms = "net_30" if plan.enterprise else "card"
            invoice = {
                "number": number,
                "customer_id": customer_id,
                "subscription_id": subscription_id,
                "status": "paid",
                "currency": plan.currency,
                "subtotal_amount_minor": amount,
                "tax_amount_minor": taxed.tax,
                "total_amount_minor": total,
                "credit_applied_amount_minor": 0,
                "amount_paid_minor": total,
                "amount_due_minor": 0,
                "payment_terms": terms,
                "po_number": f"PO-{plan.account_id:05d}" if plan.enterprise else None,
                "period_start": period_start,
                "period_end": period_end,
                "issued_at": period_start,
                "due_at": period_start + timedelta(days=30 if plan.enterprise else 0),
                "paid_at": period_start,
                "payment_attempts": 1,
                "next_payment_attempt_at": None,
                "last_failure_code": None,
                "reminders_sent": [],
                "tax_note": tax_note,
                "stripe_invoice_id": None,
                "created_at": period_start,
            }
            if plan.enterprise:
                invoice["payment_attempts"] = 0
                if latest:
                    invoice.update(status="open", amount_paid_minor=0, amount_due_minor=total, paid_at=None)
                else:
                    invoice["paid_at"] = period_start + timedelta(days=generator.randrange(10, 29))
            else:
                fails = latest and plan.card_state != "valid" and period_start > plan.start
                payments.append(
                    {
                        "number": number,
                        "customer_id": customer_id,
                        "status": "failed" if fails else "succeeded",
                        "amount_minor": total,
                        "currency": plan.currency,
                        "refunded_amount_minor": 0,
                        "reserved_amount_minor": 0,
                        "failure_code": plan.card_state if fails else None,
                        "failure_message": "card declined" if fails else None,
                        "card_brand": plan.card_brand,
                        "card_last4": plan.card_last4,
                        "stripe_charge_id": None if fails else f"ch_local_seed_{number}",
                        "created_at": period_start,
                    }
                )
                if fails:
                    invoice.update(
                        status="open",
                        amount_paid_minor=0,
                        amount_due_minor=total,
                        paid_at=None,
                        next_payment_attempt_at=period_start + timedelta(days=first_retry_days),
                        last_failure_code=plan.card_state,
                    )
            invoices.append(invoice)
            lines.append(
                {
                    "number": number,
                    "subscription_id": subscription_id,
                    "customer_id": customer_id,
                    "kind": "subscription",
                    "description": description,
                    "price_id": price.id,
                    "quantity": quantity,
                    "amount_minor": amount,
                    "tax_amount_minor": taxed.tax,
                    "tax_rate_id": rate.id if rate is not None else None,
                    "currency": plan.currency,
                    "period_start": period_start,
                    "period_end": period_end,
                    "created_at": period_start,
                }
            )
            period_start = period_end
    if not invoices:
        return
    connection = session.connection()
    insert_rows(connection, Invoice, invoices)
    invoice_ids = {
        number: invoice_id for invoice_id, number in session.execute(select(Invoice.id, Invoice.number))
    }
    for row in lines:
        row["invoice_id"] = invoice_ids[row.pop("number")]
    insert_rows(connection, InvoiceLine, lines)
    for row in payments:
        row["invoice_id"] = invoice_ids[row.pop("number")]
    if payments:
        insert_rows(connection, Payment, payments)
    insert_rows(
        connection, AuditEvent, _audit_rows("invoice", list(invoice_ids.values()), "issued", clock.now())
    )


def _catalog(session: Session) -> dict[tuple[str, str], BillingPrice]:
    prices: dict[tuple[str, str], BillingPrice] = {}
    products = {}
    for code, name, interval, model, usd in PLANS:
        product_code = code.removesuffix("-annual")
        if product_code not in products:
            products[product_code] = catalog.create_product(session, SEED_ACTOR, code=product_code, name=name)
        for currency, factor in CURRENCY_FACTORS.items():
            prices[(code, currency)] = catalog.create_price(
                session,
                SEED_ACTOR,
                products[product_code],
                nickname="Annual" if interval == "year" else "Monthly",
                interval=interval,
                pricing_model=model,
                unit_amount_minor=int((usd * factor).quantize(Decimal(1))),
                currency=currency,
            )
    return prices


def _disputes(session: Session, context: SeedContext) -> None:
    """A chargeback awaiting evidence and an inquiry, on paid charges of accounts that wrote in:
    each is linked to one of the account's seeded tickets, so the seeded ticket counts stay as
    the ticket seeder made them (a live dispute opens a ticket of its own)."""
    candidates = session.execute(
        select(Payment, Ticket)
        .join(BillingCustomer, BillingCustomer.id == Payment.customer_id)
        .join(Ticket, Ticket.account_id == BillingCustomer.account_id)
        .where(Payment.status == "succeeded")
        .order_by(Payment.id.desc(), Ticket.id.desc())
        .limit(200)
    ).all()
    by_payment = {payment.id: (payment, ticket) for payment, ticket in candidates}
    if len(by_payment) < 2:
        return
    chosen = context.random.sample(sorted(by_payment), 2)
    for payment_id, status, reason in (
        (chosen[0], "needs_response", "product_not_received"),
        (chosen[1], "warning_needs_response", "unrecognized"),
    ):
        payment, ticket = by_payment[payment_id]
        due = clock.now() + timedelta(days=context.random.randrange(4, 15))
        disputes.open_dispute(
            session,
            SEED_ACTOR,
            DisputeFacts(
                None, payment.stripe_charge_id, payment.amount_minor, payment.currency, reason, status, due
            ),
            payment=payment,
            ticket=ticket,
        )
