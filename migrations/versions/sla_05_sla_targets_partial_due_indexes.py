"""sla targets: partial due-time indexes in place of (status, due_at); no ticket_id index

Active targets are found by due time (the breach sweep, "breaching in the next hour") through an
index of active targets only, ``(due_at) WHERE status = 'active'``; breached targets, newest
breach first ("breached" view), through ``(breached_at) WHERE status = 'breached'``. Achieved
targets, the bulk of an old table, are in neither, and the bulk recompute after a calendar edit
can rebuild the active index in one sorted pass instead of moving each entry (see
``opsdesk.sla.bulk``).

``ix_sla_targets_ticket_id`` goes: the unique ``(ticket_id, metric, cycle)`` index already finds a
ticket's targets, and on PostgreSQL every index is one more entry written per moved due time.

Revision ID: sla_05
Revises: billing_04
Create Date: 2026-11-22 01:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_05"
down_revision = "billing_04"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")
BREACHED = sa.text("status = 'breached'")


def upgrade() -> None:
    with op.batch_alter_table("sla_targets") as batch:
        batch.drop_index("ix_sla_targets_ticket_id")
        batch.drop_index("ix_sla_targets_status_due_at")
        batch.create_index(
            "ix_sla_targets_active_due_at", ["due_at"], sqlite_where=ACTIVE, postgresql_where=ACTIVE
        )
        batch.create_index(
            "ix_sla_targets_breached_at", ["breached_at"], sqlite_where=BREACHED, postgresql_where=BREACHED
        )


def downgrade() -> None:
    with op.batch_alter_table("sla_targets") as batch:
        batch.drop_index("ix_sla_targets_breached_at")
        batch.drop_index("ix_sla_targets_active_due_at")
        batch.create_index("ix_sla_targets_status_due_at", ["status", "due_at"], unique=False)
        batch.create_index("ix_sla_targets_ticket_id", ["ticket_id"], unique=False)
