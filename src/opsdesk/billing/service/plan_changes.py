"""Plan and seat changes mid-period, with Stripe's proration, previewed before they are made.

The preview and the change share one computation (:func:`plan_change`), so what the agent saw is
what the customer is billed. The net goes on the next invoice as pending proration lines, or is
invoiced now when the admin's policy says ``always_invoice``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing import tax
from opsdesk.billing.enums import InvoiceLineKind, PricingModel, ProrationBehavior, SubscriptionStatus
from opsdesk.billing.errors import InvalidBillingRequestError, SubscriptionChangeRefusedError
from opsdesk.billing.events import SubscriptionChanged
from opsdesk.billing.models import BillingPrice, InvoiceLine, Subscription
from opsdesk.billing.periods import add_interval
from opsdesk.billing.proration import PricedQuantity, Proration, prorate, unused_amount_minor
from opsdesk.billing.providers import BillingProvider, provider_for
from opsdesk.billing.service import notices
from opsdesk.billing.service.catalog import get_price
from opsdesk.billing.service.policy import proration_behavior
from opsdesk.billing.service.taxes import TaxContext, location_of
from opsdesk.errors import FieldProblem
from opsdesk.money import Money
from opsdesk.tickets.models import Ticket

CHANGEABLE_STATUSES = frozenset(
    {SubscriptionStatus.ACTIVE.value, SubscriptionStatus.TRIALING.value, SubscriptionStatus.PAST_DUE.value}
)


@dataclass(frozen=True, slots=True)
class PreviewLine:
    description: str
    amount_minor: int
    quantity: int
    unit_amount_minor: int
    price_id: int
    period_start: datetime
    period_end: datetime
    # Tax of the line (per line, rounded to the minor unit); under an inclusive rate amount_minor
    # is the net and pretax_amount_minor the amount before tax was taken out of it.
    tax_amount_minor: int = 0
    pretax_amount_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PlanChange:
    subscription_id: int
    old_price: BillingPrice
    new_price: BillingPrice
    old_seats: int
    new_seats: int
    at: datetime
    lines: tuple[PreviewLine, ...]
    currency: str
    proration_behavior: str
    # Monthly <-> annual: a new period starts now (Stripe resets the billing cycle anchor) and
    # the new price is charged in full on a new invoice right away.
    resets_period: bool = False
    new_period_end: datetime | None = None
    tax_note: str | None = None

    @property
    def net_amount_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    @property
    def tax_amount_minor(self) -> int:
        return sum(line.tax_amount_minor for line in self.lines)

    @property
    def total_amount_minor(self) -> int:
        """The net with its tax: what the invoice will say."""
        return self.net_amount_minor + self.tax_amount_minor

    @property
    def amount_due_now_minor(self) -> int:
        """What is charged right away: the net when invoiced now (never below zero; a credit
        goes to the balance), nothing when it waits for the next invoice or during a trial.
        A change of interval is always invoiced now."""
        if not self.resets_period and self.proration_behavior != ProrationBehavior.INVOICE_NOW:
            return 0
        return max(self.total_amount_minor, 0)


def _priced(price: BillingPrice, seats: int) -> PricedQuantity:
    return PricedQuantity(price.unit_amount_minor, seats, price.pricing_model == PricingModel.PER_SEAT)


def plan_change(
    session: Session, subscription: Subscription, *, price_id: int | None, seats: int | None
) -> PlanChange:
    """Validate a change and compute its proration; changes nothing."""
    problems: list[FieldProblem] = []
    if price_id is None and seats is None:
        problems.append(FieldProblem(("price_id",), "give a new price, a new number of seats, or both"))
    if seats is not None and seats < 1:
        problems.append(FieldProblem(("seats",), "must be at least 1"))
    new_price = subscription.price
    if price_id is not None:
        new_price = get_price(session, price_id)
        if new_price.currency != subscription.price.currency:
            problems.append(
                FieldProblem(
                    ("price_id",),
                    f"the new price is in {new_price.currency}; the "
                    f"subscription bills in {subscription.price.currency}",
                )
            )
        if not new_price.is_active:
            problems.append(FieldProblem(("price_id",), "the price is no longer sold"))
    if problems:
        raise InvalidBillingRequestError("the change is not valid", fields=problems)
    if subscription.status not in CHANGEABLE_STATUSES:
        raise SubscriptionChangeRefusedError(f"a {subscription.status} subscription cannot be changed")
    new_seats = seats if seats is not None else subscription.seats
    if new_price.id == subscription.price_id and new_seats == subscription.seats:
        raise InvalidBillingRequestError(
            "nothing would change", fields=[FieldProblem(("price_id",), "same price and seats as now")]
        )
    now = clock.now()
    if not subscription.current_period_start <= now < subscription.current_period_end:
        raise SubscriptionChangeRefusedError("the subscription's period has ended; run invoicing first")
    behavior = proration_behavior(session)
    if new_price.interval != subscription.price.interval:
        return _with_tax(
            session, subscription, _interval_change(subscription, new_price, new_seats, now, behavior)
        )
    lines: tuple[PreviewLine, ...] = ()
    # Trials are free: a change during one costs nothing now and bills the new plan at trial end.
    if subscription.status != SubscriptionStatus.TRIALING:
        result: Proration = prorate(
            _priced(subscription.price, subscription.seats),
            _priced(new_price, new_seats),
            subscription.current_period_start,
            subscription.current_period_end,
            now,
        )
        old_name = f"{subscription.price.product.name} ({subscription.price.nickname})"
        new_name = f"{new_price.product.name} ({new_price.nickname})"
        lines = (
            PreviewLine(
                f"Unused time on {subscription.seats} x {old_name}",
                result.credit.amount_minor,
                subscription.seats,
                subscription.price.unit_amount_minor,
                subscription.price_id,
                now,
                subscription.current_period_end,
            ),
            PreviewLine(
                f"Remaining time on {new_seats} x {new_name}",
                result.charge.amount_minor,
                new_seats,
                new_price.unit_amount_minor,
                new_price.id,
                now,
                subscription.current_period_end,
            ),
        )
    return _with_tax(
        session,
        subscription,
        PlanChange(
            subscription_id=subscription.id,
            old_price=subscription.price,
            new_price=new_price,
            old_seats=subscription.seats,
            new_seats=new_seats,
            at=now,
            lines=lines,
            currency=subscription.price.currency,
            proration_behavior=behavior,
        ),
    )


def _with_tax(session: Session, subscription: Subscription, change: PlanChange) -> PlanChange:
    """The change's lines with the tax its invoice will charge (same rule as invoicing)."""
    rate, note = TaxContext.load(session).decide(location_of(subscription.customer), change.at.date())
    lines = []
    for line in change.lines:
        taxed = tax.tax_line(line.amount_minor, rate)
        lines.append(
            replace(
                line,
                amount_minor=taxed.amount,
                tax_amount_minor=taxed.tax,
                pretax_amount_minor=line.amount_minor,
            )
        )
    return replace(change, lines=tuple(lines), tax_note=note if change.lines else None)


def _interval_change(
    subscription: Subscription, new_price: BillingPrice, new_seats: int, now: datetime, behavior: str
) -> PlanChange:
    """Monthly <-> annual, as Stripe does it: the billing cycle anchor resets to now, the unused
    time on the old price is credited (time-weighted by the second, rounded to the minor unit),
    and a full period of the new price is charged at once on a new invoice."""
    if subscription.status == SubscriptionStatus.TRIALING:
        raise SubscriptionChangeRefusedError(
            "a trial cannot change between monthly and annual; change it when the trial has ended"
        )
    old_priced = _priced(subscription.price, subscription.seats)
    new_priced = _priced(new_price, new_seats)
    credit = -unused_amount_minor(
        old_priced,
        int(subscription.current_period_start.timestamp()),
        int(subscription.current_period_end.timestamp()),
        int(now.timestamp()),
    )
    new_end = add_interval(now, new_price.interval)
    old_name = f"{subscription.price.product.name} ({subscription.price.nickname})"
    new_name = f"{new_price.product.name} ({new_price.nickname})"
    lines = (
        PreviewLine(
            f"Unused time on {subscription.seats} x {old_name}",
            credit,
            subscription.seats,
            subscription.price.unit_amount_minor,
            subscription.price_id,
            now,
            subscription.current_period_end,
        ),
        PreviewLine(
            f"{new_seats} x {new_name} from {now:%Y-%m-%d} to {new_end:%Y-%m-%d}",
            new_priced.amount_minor,
            new_seats,
            new_price.unit_amount_minor,
            new_price.id,
            now,
            new_end,
        ),
    )
    return PlanChange(
        subscription_id=subscription.id,
        old_price=subscription.price,
        new_price=new_price,
        old_seats=subscription.seats,
        new_seats=new_seats,
        at=now,
        lines=lines,
        currency=subscription.price.currency,
        proration_behavior=behavior,
        resets_period=True,
        new_period_end=new_end,
    )


def preview_change(
    session: Session, actor: Actor, subscription: Subscription, *, price_id: int | None, seats: int | None
) -> PlanChange:
    require(actor, Permission.PAYMENT_READ)
    return plan_change(session, subscription, price_id=price_id, seats=seats)


def change_subscription(
    session: Session,
    actor: Actor,
    subscription: Subscription,
    *,
    price_id: int | None,
    seats: int | None,
    ticket: Ticket | None = None,
    provider: BillingProvider | None = None,
) -> PlanChange:
    """Make the change: tell the provider, then record the price, seats and proration lines.
    From a ticket, the audit rows link to it and the customer is told there (plan change macro)."""
    require(actor, Permission.BILLING_WRITE)
    change = plan_change(session, subscription, price_id=price_id, seats=seats)
    chosen = provider or provider_for(subscription.customer.provider)
    chosen.update_subscription(
        subscription_ref=subscription.stripe_subscription_id,
        price_ref=change.new_price.stripe_price_id if change.new_price.id != change.old_price.id else None,
        quantity=change.new_seats,
        proration_behavior=ProrationBehavior.INVOICE_NOW.value
        if change.resets_period
        else change.proration_behavior,
        idempotency_key=f"opsdesk-change-{subscription.id}-{int(change.at.timestamp())}-"
        f"{change.new_price.id}-{change.new_seats}",
    )
    for index, line in enumerate(change.lines):
        full_period = change.resets_period and index == 1
        session.add(
            InvoiceLine(
                invoice_id=None,
                subscription_id=subscription.id,
                customer_id=subscription.customer_id,
                kind=InvoiceLineKind.SUBSCRIPTION.value if full_period else InvoiceLineKind.PRORATION.value,
                description=line.description,
                price_id=line.price_id,
                quantity=line.quantity,
                # Stored before tax: the invoice that collects it taxes it (the same rule).
                amount_minor=line.pretax_amount_minor
                if line.pretax_amount_minor is not None
                else line.amount_minor,
                currency=change.currency,
                period_start=line.period_start,
                period_end=line.period_end,
            )
        )
    changes: dict[str, tuple[object, object]] = {}
    if change.new_price.id != subscription.price_id:
        changes["price_id"] = (subscription.price_id, change.new_price.id)
        subscription.price_id = change.new_price.id
        subscription.price = change.new_price
    if change.new_seats != subscription.seats:
        changes["seats"] = (subscription.seats, change.new_seats)
        subscription.seats = change.new_seats
    if change.resets_period and change.new_period_end is not None:
        changes["current_period_end"] = (subscription.current_period_end, change.new_period_end)
        subscription.current_period_start = change.at
        subscription.billing_cycle_anchor = change.at
        subscription.current_period_end = change.new_period_end
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="subscription",
        entity_id=subscription.id,
        changes=changes,
        ticket_id=ticket.id if ticket is not None else None,
        reason=f"net proration {change.net_amount_minor} {change.currency}",
    )
    bus.publish(session, SubscriptionChanged(subscription.id, changes))
    if (change.resets_period or change.proration_behavior == ProrationBehavior.INVOICE_NOW) and change.lines:
        from opsdesk.billing.service.invoicing import invoice_pending_lines

        invoice_pending_lines(session, actor, subscription.customer, subscription=subscription)
    if ticket is not None:
        notices.reply_on_ticket(
            session,
            actor,
            ticket,
            "plan_changed",
            customer=subscription.customer,
            plan=f"{change.new_price.product.name} ({change.new_price.nickname})",
            seats=change.new_seats,
            amount=Money(change.net_amount_minor, change.currency).format(),
            amount_minor=change.net_amount_minor,
            currency=change.currency,
            proration=proration_sentence(change),
        )
    return change


def proration_sentence(change: PlanChange) -> str:
    """The money side of a change in the customer's words."""
    net = Money(abs(change.net_amount_minor), change.currency).format()
    if not change.lines or change.net_amount_minor == 0:
        return "Nothing changes on your bill for the current period."
    if change.net_amount_minor < 0:
        return f"The unused time, {net}, is credited to your account for your next invoices."
    if change.amount_due_now_minor > 0:
        return f"The difference for the rest of this period, {net}, is charged now."
    return f"The difference for the rest of this period, {net}, is on your next invoice."
