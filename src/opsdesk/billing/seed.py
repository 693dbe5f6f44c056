"""Demo billing for the seeded company: plans and prices in USD, EUR and GBP, FX rates, refund
limits, a billing customer and subscription per paying account, three months of invoices and
payments (a few cards failing into dunning), an enterprise invoice on net terms, and disputes.

Deterministic for the run's seed: every choice draws from ``context.random``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.billing.models import BillingCustomer, BillingPrice, Payment
from opsdesk.billing.periods import add_months
from opsdesk.billing.service import catalog, disputes, invoicing, policy
from opsdesk.billing.service.disputes import DisputeFacts
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Account, Person, PersonEmail, Ticket

if TYPE_CHECKING:
    from opsdesk.demo.context import SeedContext

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
    first_start = end
    subscriptions = []
    enterprise_customers = []
    for seeded in context.accounts:
        if seeded.mrr_amount_minor <= 0:
            continue
        account = session.get_one(Account, seeded.id)
        currency = account.currency if account.currency in CURRENCY_FACTORS else "USD"
        person, email = _contact(session, account.id)
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
        customer = catalog.create_customer(
            session,
            SEED_ACTOR,
            account,
            email=email,
            currency=currency,
            person=person,
            payment_terms="net_30" if enterprise else "card",
            po_number=f"PO-{account.id:05d}" if enterprise else None,
            card_brand=None if enterprise else generator.choice(("visa", "mastercard", "amex")),
            card_last4=None if enterprise else f"{generator.randrange(10_000):04d}",
            tos_version="2025-09",
            tos_accepted_at=end - timedelta(days=generator.randrange(120, 700)),
            tos_accepted_ip=f"198.51.100.{generator.randrange(1, 255)}",
        )
        # Monthly plans started three months ago, annual ones some months into their year.
        months_back = 3 if price.interval == "month" else generator.randrange(3, 11)
        start = add_months(end, -months_back) - timedelta(days=generator.randrange(0, 27))
        first_start = min(first_start, start)
        if enterprise:
            enterprise_customers.append(customer)
        subscriptions.append(
            catalog.create_subscription(session, SEED_ACTOR, customer, price, seats=seats, start=start)
        )
        # A few cards decline (dunning in the demo), on accounts without an open ticket so the
        # seeded conversations stay exactly as the ticket seeder wrote them.
        if not enterprise and generator.random() < 0.06 and not _has_open_ticket(session, account.id):
            customer.card_state = generator.choice(DECLINES)
    session.flush()
    # Replay the invoice runs week by week up to the seeded "now", as the scheduled job would have.
    instant = first_start + timedelta(days=7)
    while instant < end:
        with clock.frozen(instant):
            invoicing.run_invoicing(session, SEED_ACTOR, subscription_ids=[item.id for item in subscriptions])
        instant += timedelta(days=7)
    with clock.frozen(end):
        invoicing.run_invoicing(session, SEED_ACTOR, subscription_ids=[item.id for item in subscriptions])
        _disputes(session, context)
    # Enterprise seat expansions invoiced on net terms: one overdue, one due soon.
    for index, customer in enumerate(enterprise_customers[:4]):
        with clock.frozen(end - timedelta(days=40 if index % 2 == 0 else 12)):
            invoicing.create_invoice(
                session,
                SEED_ACTOR,
                customer,
                payment_terms="net_30",
                lines=[invoicing.ManualLine("Additional Enterprise seats (pro rata)", 5 + index * 5, 45_000)],
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


def _contact(session: Session, account_id: int) -> tuple[Person | None, str]:
    row = session.execute(
        select(Person, PersonEmail.email)
        .join(PersonEmail, PersonEmail.person_id == Person.id)
        .where(Person.primary_account_id == account_id)
        .order_by(Person.id)
        .limit(1)
    ).first()
    if row is None:
        return None, f"billing-{account_id}@customer.invalid"
    return row[0], row[1]


def _has_open_ticket(session: Session, account_id: int) -> bool:
    found = session.scalar(
        select(Ticket.id)
        .where(Ticket.account_id == account_id, Ticket.status.in_(UNSOLVED_STATUSES))
        .limit(1)
    )
    return found is not None


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
