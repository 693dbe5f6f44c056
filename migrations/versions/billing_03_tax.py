"""billing tax: tax rates, customer tax location and exemption, per-line tax, invoice tax note

Revision ID: billing_03
Revises: billing_02
Create Date: 2026-11-21 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsdesk.db

revision = "billing_03"
down_revision = "billing_02"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_tax_rates",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=10), nullable=True),
        sa.Column("rate_basis_points", sa.Integer(), nullable=False),
        sa.Column("inclusive", sa.Boolean(), nullable=False),
        sa.Column("tax_name", sa.String(length=40), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_at", opsdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_tax_rates")),
    )
    op.create_index(
        "ix_billing_tax_rates_country_region", "billing_tax_rates", ["country", "region"], unique=False
    )
    with op.batch_alter_table("billing_customers") as batch:
        batch.add_column(sa.Column("tax_country", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("tax_region", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("tax_exempt", sa.String(length=10), server_default="none", nullable=False))
        batch.add_column(sa.Column("vat_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("billing_invoices") as batch:
        batch.add_column(sa.Column("tax_note", sa.String(length=200), nullable=True))
    with op.batch_alter_table("billing_invoice_lines") as batch:
        batch.add_column(sa.Column("tax_amount_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("tax_rate_id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=True)
        )
        batch.create_foreign_key(
            batch.f("fk_billing_invoice_lines_tax_rate_id_billing_tax_rates"),
            "billing_tax_rates",
            ["tax_rate_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_invoice_lines") as batch:
        batch.drop_constraint("fk_billing_invoice_lines_tax_rate_id_billing_tax_rates", type_="foreignkey")
        batch.drop_column("tax_rate_id")
        batch.drop_column("tax_amount_minor")
    with op.batch_alter_table("billing_invoices") as batch:
        batch.drop_column("tax_note")
    with op.batch_alter_table("billing_customers") as batch:
        batch.drop_column("vat_id")
        batch.drop_column("tax_exempt")
        batch.drop_column("tax_region")
        batch.drop_column("tax_country")
    op.drop_table("billing_tax_rates")
