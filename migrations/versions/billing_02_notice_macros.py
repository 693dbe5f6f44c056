"""billing notice macros: which shared macro tells customers about each billing notice

Revision ID: billing_02
Revises: insights_03
Create Date: 2026-11-21 21:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsdesk.db

revision = "billing_02"
down_revision = "insights_03"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_notice_macros",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("notice", sa.String(length=60), nullable=False),
        sa.Column("macro_id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=True),
        sa.Column("installed_at", opsdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["macro_id"],
            ["macros.id"],
            name=op.f("fk_billing_notice_macros_macro_id_macros"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_notice_macros")),
        sa.UniqueConstraint("notice", name=op.f("uq_billing_notice_macros_notice")),
    )


def downgrade() -> None:
    op.drop_table("billing_notice_macros")
