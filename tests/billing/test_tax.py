"""Tax per line as Stripe Tax computes it, the rate choice, exemptions and reverse charge, and
the month-end run, invoices and plan change previews applying it (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.billing import invoice_math, tax
from opsdesk.billing.models import Invoice, TaxRate
from opsdesk.billing.service import invoicing, plan_changes, policy, taxes
from tests.billing.builders import make_billed
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.web import app_client, bearer_headers, sign_in

HALFWAY = datetime(2026, 3, 16, 12, tzinfo=UTC)
RENEWAL = datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)


def _rate(
    basis_points: int, *, inclusive: bool = False, region: str | None = None, rate_id: int = 1
) -> tax.Rate:
    return tax.Rate(rate_id, "GB", region, basis_points, inclusive, "VAT", date(2020, 1, 1))


@given(
    amounts=st.lists(st.integers(min_value=-5_000_000, max_value=5_000_000), min_size=1, max_size=8),
    basis_points=st.integers(min_value=0, max_value=5_000),
    inclusive=st.booleans(),
    credit=st.integers(min_value=0, max_value=2_000_000),
)
def test_taxed_invoices_balance_and_each_line_is_rounded_to_the_minor_unit(
    amounts: list[int], basis_points: int, inclusive: bool, credit: int
) -> None:
    rate = _rate(basis_points, inclusive=inclusive)
    taxed = tax.tax_lines(amounts, rate)
    for amount, line in zip(amounts, taxed, strict=True):
        if inclusive:
            assert line.amount + line.tax == amount
            exact_net = Fraction(amount * 10_000, 10_000 + basis_points)
            assert abs(line.amount - exact_net) <= Fraction(1, 2)
        else:
            assert line.amount == amount
            assert abs(line.tax - Fraction(amount * basis_points, 10_000)) <= Fraction(1, 2)
    tax_total = sum(line.tax for line in taxed)
    totals = invoice_math.totals([line.amount for line in taxed], tax=tax_total, credit_balance=credit)
    assert invoice_math.balances(
        [line.amount for line in taxed],
        subtotal=totals.subtotal,
        tax=totals.tax,
        total=totals.total,
        credit_applied=totals.credit_applied,
        amount_paid=0,
        amount_due=totals.amount_due,
    )


def test_rate_choice_exemption_and_reverse_charge() -> None:
    country = tax.Rate(1, "US", None, 0, False, "Sales tax", date(2020, 1, 1))
    california = tax.Rate(2, "US", "CA", 725, False, "Sales tax", date(2020, 1, 1))
    old_vat = tax.Rate(3, "DE", None, 1_600, False, "VAT", date(2020, 7, 1), date(2021, 1, 1))
    new_vat = tax.Rate(4, "DE", None, 1_900, False, "VAT", date(2021, 1, 1))
    rates = [country, california, old_vat, new_vat]
    on = date(2026, 3, 1)
    assert tax.choose_rate(rates, tax.TaxLocation("US", "CA"), on) == california
    assert tax.choose_rate(rates, tax.TaxLocation("US", "NY"), on) == country
    assert tax.choose_rate(rates, tax.TaxLocation("DE"), date(2020, 9, 1)) == old_vat
    assert tax.choose_rate(rates, tax.TaxLocation("DE"), on) == new_vat
    assert tax.choose_rate(rates, tax.TaxLocation("FR"), on) is None
    business = tax.TaxLocation("DE", vat_id="DE123456789")
    assert tax.treatment(business, "IE") is tax.Treatment.REVERSE_CHARGE
    assert tax.treatment(business, "DE") is tax.Treatment.TAXED  # domestic B2B pays VAT
    assert tax.treatment(tax.TaxLocation("DE"), "IE") is tax.Treatment.TAXED
    assert tax.treatment(tax.TaxLocation("US", exempt="exempt"), "IE") is tax.Treatment.EXEMPT
    assert tax.treatment(tax.TaxLocation(None), "IE") is tax.Treatment.NO_RATE
    assert tax.tax_line(-1_005, _rate(2_000)) == tax.TaxedLine(-1_005, -201)
    assert tax.tax_line(12_000, _rate(2_000, inclusive=True)) == tax.TaxedLine(10_000, 2_000)


def _gb_vat(db: Session, *, inclusive: bool = False) -> TaxRate:
    admin = staff_actor(make_user(db, role="admin"))
    return taxes.add_tax_rate(
        db,
        admin,
        country="gb",
        region=None,
        rate_basis_points=2_000,
        inclusive=inclusive,
        tax_name="VAT",
        valid_from=date(2020, 1, 1),
    )


def test_month_end_run_taxes_each_line_and_reverse_charge_pays_none(db: Session) -> None:
    rate = _gb_vat(db)
    billing = staff_actor(make_user(db, role="billing"))
    taxed = make_billed(db, seats=3)
    taxes.set_customer_tax(db, billing, taxed.customer, country="GB")
    reverse = make_billed(db, seats=3)
    taxes.set_customer_tax(
        db, billing, reverse.customer, country="DE", exempt="reverse", vat_id="de 123456789"
    )
    with clock.frozen(HALFWAY):
        plan_changes.change_subscription(db, billing, taxed.subscription, price_id=None, seats=4)
    with clock.frozen(RENEWAL):
        result = invoicing.run_invoicing(db, SYSTEM)
    assert result.invoices == 2
    invoice = db.scalars(select(Invoice).where(Invoice.subscription_id == taxed.subscription.id)).one()
    # Proration -30.00 + 40.00 for the second half of March, then 4 x 20.00: each line taxed.
    assert [(line.amount_minor, line.tax_amount_minor, line.tax_rate_id) for line in invoice.lines] == [
        (-3_000, -600, rate.id),
        (4_000, 800, rate.id),
        (8_000, 1_600, rate.id),
    ]
    assert (invoice.subtotal_amount_minor, invoice.tax_amount_minor, invoice.total_amount_minor) == (
        9_000,
        1_800,
        10_800,
    )
    assert invoice.tax_note == "VAT 20%"
    assert invoice.status == "paid"
    assert invoicing.invoice_balances(invoice)
    other = db.scalars(select(Invoice).where(Invoice.subscription_id == reverse.subscription.id)).one()
    assert (other.tax_amount_minor, other.total_amount_minor) == (0, 6_000)
    assert other.tax_note is not None
    assert other.tax_note.startswith("Reverse charge")
    assert reverse.customer.vat_id == "DE123456789"


def test_inclusive_rate_keeps_the_price_and_previews_show_tax(db: Session) -> None:
    _gb_vat(db, inclusive=True)
    admin = staff_actor(make_user(db, role="admin"))
    policy.set_proration_behavior(db, admin, "always_invoice")
    billed = make_billed(db, seats=2)
    taxes.set_customer_tax(db, admin, billed.customer, country="GB")
    invoice = invoicing.create_invoice(
        db, admin, billed.customer, lines=[invoicing.ManualLine("Setup", 1, 12_000)]
    )
    assert [(line.amount_minor, line.tax_amount_minor) for line in invoice.lines] == [(10_000, 2_000)]
    assert (invoice.subtotal_amount_minor, invoice.tax_amount_minor, invoice.total_amount_minor) == (
        10_000,
        2_000,
        12_000,
    )
    with clock.frozen(HALFWAY):
        preview = plan_changes.preview_change(
            db, admin, billed.subscription, price_id=billed.premium.id, seats=None
        )
    # Half of March: -20.00 on Team, +50.00 on Business, 20 % inside each.
    assert [(line.amount_minor, line.tax_amount_minor) for line in preview.lines] == [
        (-1_667, -333),
        (4_167, 833),
    ]
    assert preview.tax_note == "VAT 20% incl."
    assert preview.amount_due_now_minor == 3_000
    with clock.frozen(HALFWAY):
        plan_changes.change_subscription(
            db, admin, billed.subscription, price_id=billed.premium.id, seats=None
        )
    charged = db.scalars(
        select(Invoice).where(Invoice.subscription_id == billed.subscription.id).order_by(Invoice.id.desc())
    ).first()
    assert charged is not None
    assert (charged.total_amount_minor, charged.tax_amount_minor) == (3_000, 500)
    assert invoicing.invoice_balances(charged)


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


def test_tax_api_refuses_bad_input_and_changes_nothing(db: Session, client: TestClient) -> None:
    admin = make_user(db, role="admin")
    headers = bearer_headers(db, admin)
    billed = make_billed(db)
    bad = client.post(
        "/api/v1/billing/tax-rates",
        json={"country": "Britain", "rate_basis_points": 90_000, "tax_name": "", "valid_from": "2026-01-01"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    agent = bearer_headers(db, make_user(db, role="agent"))
    forbidden = client.post(
        "/api/v1/billing/tax-rates",
        json={"country": "GB", "rate_basis_points": 2_000, "tax_name": "VAT", "valid_from": "2026-01-01"},
        headers=agent,
    )
    assert forbidden.status_code == 403
    assert (
        client.put("/api/v1/billing/settings", json={"seller_country": "IE"}, headers=agent).status_code
        == 403
    )
    assert db.scalar(select(func.count()).select_from(TaxRate)) == 0
    made = client.post(
        "/api/v1/billing/tax-rates",
        json={
            "country": "us",
            "region": "ca",
            "rate_basis_points": 725,
            "tax_name": "Sales tax",
            "valid_from": "2026-01-01",
        },
        headers=headers,
    )
    assert made.status_code == 201
    assert (made.json()["country"], made.json()["region"], made.json()["rate_basis_points"]) == (
        "US",
        "CA",
        725,
    )
    listed = client.get("/api/v1/billing/tax-rates", headers=headers).json()["items"]
    assert [item["tax_name"] for item in listed] == ["Sales tax"]
    refused = client.put(
        f"/api/v1/billing/customers/{billed.customer.id}/tax",
        json={"country": "DE", "exempt": "reverse"},
        headers=headers,
    )
    assert refused.status_code == 422
    db.refresh(billed.customer)
    assert (billed.customer.tax_country, billed.customer.tax_exempt) == (None, "none")
    saved = client.put(
        f"/api/v1/billing/customers/{billed.customer.id}/tax",
        json={"country": "us", "region": "ca"},
        headers=headers,
    )
    assert saved.status_code == 200
    assert (saved.json()["tax_country"], saved.json()["tax_region"]) == ("US", "CA")


def test_settings_tax_rate_and_customer_tax_pages(db: Session, client: TestClient) -> None:
    password = "correct horse battery"
    admin = make_user(db, role="admin", password=password)
    billed = make_billed(db)
    csrf = sign_in(client, admin.email, password)
    overview = client.get("/billing")
    assert overview.status_code == 200
    assert "Tax rates" in overview.text
    assert "Dispute ticket due" in overview.text
    bad = client.post(
        "/billing/tax-rates",
        data={
            "country": "GB",
            "rate_percent": "twenty",
            "tax_name": "VAT",
            "valid_from": "2026-01-01",
            "csrf_token": csrf,
        },
    )
    assert bad.status_code == 422
    assert db.scalar(select(func.count()).select_from(TaxRate)) == 0
    made = client.post(
        "/billing/tax-rates",
        data={
            "country": "GB",
            "rate_percent": "17.5",
            "tax_name": "VAT",
            "valid_from": "2026-01-01",
            "csrf_token": csrf,
        },
    )
    assert made.status_code == 303
    assert db.scalars(select(TaxRate.rate_basis_points)).all() == [1_750]
    saved = client.post(
        "/billing/settings",
        data={
            "proration_behavior": "always_invoice",
            "dispute_deadline_margin_hours": "48",
            "seller_country": "IE",
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303
    assert policy.billing_settings(db, staff_actor(admin)) == {
        "proration_behavior": "always_invoice",
        "dispute_deadline_margin_hours": 48,
        "seller_country": "IE",
    }
    refused = client.post(
        f"/billing/customers/{billed.customer.id}/tax",
        data={
            "subscription_id": billed.subscription.id,
            "country": "DE",
            "exempt": "reverse",
            "csrf_token": csrf,
        },
    )
    assert refused.status_code == 422
    db.refresh(billed.customer)
    assert billed.customer.tax_exempt == "none"
    done = client.post(
        f"/billing/customers/{billed.customer.id}/tax",
        data={
            "subscription_id": billed.subscription.id,
            "country": "DE",
            "exempt": "reverse",
            "vat_id": "DE123456789",
            "csrf_token": csrf,
        },
    )
    assert done.status_code == 303
    db.refresh(billed.customer)
    assert (billed.customer.tax_country, billed.customer.tax_exempt, billed.customer.vat_id) == (
        "DE",
        "reverse",
        "DE123456789",
    )
