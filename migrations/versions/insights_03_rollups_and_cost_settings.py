"""insights daily rollups and cost settings

Revision ID: insights_03
Revises: channels_04
Create Date: 2026-11-21 22:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsdesk.db

revision = "insights_03"
down_revision = "channels_04"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insights_daily_rollups",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("metric", sa.String(length=60), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("day", sa.String(length=16), nullable=False),
        sa.Column("week", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=16), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("histogram", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insights_daily_rollups")),
    )
    op.create_index(
        "ix_insights_daily_rollups_metric_dimension_day",
        "insights_daily_rollups",
        ["metric", "dimension", "day"],
        unique=False,
    )
    op.create_table(
        "insights_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("built_through", sa.String(length=16), nullable=False),
        sa.Column("refreshed_at", opsdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rebuilt_at", opsdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insights_rollup_state")),
    )
    op.create_table(
        "insights_cost_settings",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("vendor", sa.String(length=120), nullable=True),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", opsdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_insights_cost_settings_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insights_cost_settings")),
        sa.UniqueConstraint("kind", "vendor", name=op.f("uq_insights_cost_settings_kind_vendor")),
    )


def downgrade() -> None:
    op.drop_table("insights_cost_settings")
    op.drop_table("insights_rollup_state")
    op.drop_index("ix_insights_daily_rollups_metric_dimension_day", table_name="insights_daily_rollups")
    op.drop_table("insights_daily_rollups")
