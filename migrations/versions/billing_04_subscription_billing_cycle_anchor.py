"""billing: subscriptions count their periods from a billing cycle anchor (as Stripe does)

Revision ID: billing_04
Revises: billing_03
Create Date: 2026-11-21 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsdesk.db

revision = "billing_04"
down_revision = "billing_03"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: existing rows fall back to their current period start (the day a past month may
    # already have clamped cannot be recovered).
    with op.batch_alter_table("billing_subscriptions") as batch:
        batch.add_column(
            sa.Column("billing_cycle_anchor", opsdesk.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_subscriptions") as batch:
        batch.drop_column("billing_cycle_anchor")
