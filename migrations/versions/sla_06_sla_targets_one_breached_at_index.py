"""sla targets: one index on breached_at (drop sla_05's partial one, insights_04's covers it)

``breached_at`` is set exactly when a target becomes breached and a breached target stays
breached, so the partial ``(breached_at) WHERE status = 'breached'`` index held the same entries
as ``ix_sla_targets_any_breached_at`` (insights_04, every status, for SLA attainment's period
ranges), which only adds the NULLs of targets never breached. Every write of a breach updated
both. The "breached" view asks for ``breached_at IS NOT NULL`` and reads the remaining index
backwards from the newest breach.

Revision ID: sla_06
Revises: core_02
Create Date: 2026-11-22 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_06"
down_revision = "core_02"
branch_labels = None
depends_on = None

BREACHED = sa.text("status = 'breached'")


def upgrade() -> None:
    op.drop_index("ix_sla_targets_breached_at", table_name="sla_targets")


def downgrade() -> None:
    op.create_index(
        "ix_sla_targets_breached_at",
        "sla_targets",
        ["breached_at"],
        sqlite_where=BREACHED,
        postgresql_where=BREACHED,
    )
