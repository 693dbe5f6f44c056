"""insights: indexes on SLA targets' breached_at (any status) and achieved_at (SLA attainment's period ranges)

Revision ID: insights_04
Revises: sla_05
Create Date: 2026-11-22 01:40:00
"""

from __future__ import annotations

from alembic import op

revision = "insights_04"
down_revision = "sla_05"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sla_targets_any_breached_at", "sla_targets", ["breached_at"], unique=False)
    op.create_index("ix_sla_targets_achieved_at", "sla_targets", ["achieved_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sla_targets_achieved_at", table_name="sla_targets")
    op.drop_index("ix_sla_targets_any_breached_at", table_name="sla_targets")
