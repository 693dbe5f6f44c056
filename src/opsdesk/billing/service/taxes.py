"""Tax rates and customer tax locations: kept by admins and billing specialists, read by invoices
and plan change previews through :func:`TaxContext.for_customer` (the pure rules are in
:mod:`opsdesk.billing.tax`). The seller's own country (``seller_country`` setting) decides
whether an EU business's VAT id means reverse charge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.billing import tax
from opsdesk.billing.errors import InvalidBillingRequestError
from opsdesk.billing.models import BillingCustomer, BillingSetting, TaxRate
from opsdesk.errors import FieldProblem

SELLER_COUNTRY_SETTING = "seller_country"
MAX_BASIS_POINTS = 5_000


def rate_of(row: TaxRate) -> tax.Rate:
    return tax.Rate(
        row.id,
        row.country,
        row.region,
        row.rate_basis_points,
        row.inclusive,
        row.tax_name,
        row.valid_from,
        row.valid_until,
    )


def all_rates(session: Session) -> list[tax.Rate]:
    return [rate_of(row) for row in session.scalars(select(TaxRate).order_by(TaxRate.country, TaxRate.id))]


def list_rates(session: Session, actor: Actor) -> list[tax.Rate]:
    require(actor, Permission.PAYMENT_READ)
    return all_rates(session)


def seller_country(session: Session) -> str | None:
    return session.scalar(select(BillingSetting.value).where(BillingSetting.key == SELLER_COUNTRY_SETTING))


@dataclass(frozen=True, slots=True)
class TaxContext:
    """Everything a batch of invoices needs to tax its lines: loaded once per run."""

    rates: tuple[tax.Rate, ...]
    seller_country: str | None

    @classmethod
    def load(cls, session: Session) -> TaxContext:
        return cls(tuple(all_rates(session)), seller_country(session))

    def decide(self, location: tax.TaxLocation, on: date) -> tuple[tax.Rate | None, str | None]:
        """The rate to apply (None: no tax) and the invoice's tax note."""
        kind = tax.treatment(location, self.seller_country)
        rate = tax.choose_rate(self.rates, location, on) if kind is tax.Treatment.TAXED else None
        return rate, tax.note(kind, rate)


def location_of(customer: BillingCustomer) -> tax.TaxLocation:
    return tax.TaxLocation(customer.tax_country, customer.tax_region, customer.tax_exempt, customer.vat_id)


def _country(value: str, field: str, problems: list[FieldProblem]) -> str:
    code = value.strip().upper()
    if len(code) != 2 or not code.isalpha():
        problems.append(FieldProblem((field,), "a two-letter ISO 3166 country code"))
    return code


def add_tax_rate(
    session: Session,
    actor: Actor,
    *,
    country: str,
    region: str | None,
    rate_basis_points: int,
    inclusive: bool,
    tax_name: str,
    valid_from: date,
    valid_until: date | None = None,
) -> TaxRate:
    """Admins only. Validated first: nothing is written on a refusal."""
    require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    code = _country(country, "country", problems)
    if not 0 <= rate_basis_points <= MAX_BASIS_POINTS:
        problems.append(FieldProblem(("rate_basis_points",), f"0 to {MAX_BASIS_POINTS} (50 %)"))
    name = tax_name.strip()
    if not name or len(name) > 40:
        problems.append(FieldProblem(("tax_name",), "1 to 40 characters, e.g. VAT"))
    clean_region = (region or "").strip().upper() or None
    if clean_region is not None and len(clean_region) > 10:
        problems.append(FieldProblem(("region",), "at most 10 characters"))
    if valid_until is not None and valid_until <= valid_from:
        problems.append(FieldProblem(("valid_until",), "must be after valid_from"))
    if problems:
        raise InvalidBillingRequestError("the tax rate is not valid", fields=problems)
    row = TaxRate(
        country=code,
        region=clean_region,
        rate_basis_points=rate_basis_points,
        inclusive=inclusive,
        tax_name=name,
        valid_from=valid_from,
        valid_until=valid_until,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="tax_rate",
        entity_id=row.id,
        action="created",
        new={
            "country": code,
            "region": clean_region,
            "rate_basis_points": rate_basis_points,
            "inclusive": inclusive,
            "tax_name": name,
            "valid_from": valid_from,
            "valid_until": valid_until,
        },
    )
    return row


def set_customer_tax(
    session: Session,
    actor: Actor,
    customer: BillingCustomer,
    *,
    country: str | None,
    region: str | None = None,
    exempt: str = tax.TaxExempt.NONE.value,
    vat_id: str | None = None,
) -> BillingCustomer:
    require(actor, Permission.BILLING_WRITE)
    problems: list[FieldProblem] = []
    code = _country(country, "country", problems) if country and country.strip() else None
    if exempt not in {member.value for member in tax.TaxExempt}:
        problems.append(FieldProblem(("exempt",), "one of none, exempt, reverse"))
    clean_vat = (vat_id or "").replace(" ", "").upper() or None
    if clean_vat is not None and not (4 <= len(clean_vat) <= 40 and clean_vat[:2].isalpha()):
        problems.append(FieldProblem(("vat_id",), "a VAT number starting with its country code"))
    if exempt == tax.TaxExempt.REVERSE and clean_vat is None:
        problems.append(FieldProblem(("vat_id",), "reverse charge needs the customer's VAT id"))
    if problems:
        raise InvalidBillingRequestError("the tax details are not valid", fields=problems)
    changes: dict[str, tuple[object, object]] = {}
    for field, value in (
        ("tax_country", code),
        ("tax_region", (region or "").strip().upper() or None),
        ("tax_exempt", exempt),
        ("vat_id", clean_vat),
    ):
        if getattr(customer, field) != value:
            changes[field] = (getattr(customer, field), value)
            setattr(customer, field, value)
    session.flush()
    audit.record_changes(
        session, actor, entity_type="billing_customer", entity_id=customer.id, changes=changes
    )
    return customer


def set_seller_country(session: Session, actor: Actor, country: str) -> None:
    require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    code = _country(country, "seller_country", problems)
    if problems:
        raise InvalidBillingRequestError("the seller country is not valid", fields=problems)
    row = session.scalars(select(BillingSetting).where(BillingSetting.key == SELLER_COUNTRY_SETTING)).first()
    old = row.value if row is not None else None
    if row is None:
        session.add(BillingSetting(key=SELLER_COUNTRY_SETTING, value=code))
    else:
        row.value = code
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="billing_setting",
        entity_id=None,
        action="updated",
        field=SELLER_COUNTRY_SETTING,
        old=old,
        new=code,
    )
