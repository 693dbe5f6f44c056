"""sla deadline targets: sla_targets.kind and reason

Revision ID: sla_04
Revises: channels_03
Create Date: 2026-11-21 21:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_04"
down_revision = "channels_03"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sla_targets") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), server_default="policy", nullable=False))
        batch.add_column(sa.Column("reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sla_targets") as batch:
        batch.drop_column("reason")
        batch.drop_column("kind")
