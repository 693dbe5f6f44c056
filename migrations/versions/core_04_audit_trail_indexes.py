"""core: the audit trail keeps the indexes its readers use

Every reader of ``audit_events`` goes through a ticket (``ticket_id``: the trail API and page,
triage's history, the insights metrics of the status trail) or, for the other entities (users,
groups, macros, invoices...), through ``(entity_type, entity_id)``. Nothing reads it by
``created_at`` alone, yet that index cost every audited change an insert into a random place of a
B-tree, and a seed of a million tickets (nine million audit rows) most of its index build. The
entity index now covers only the rows outside a ticket's trail: a ticket's own changes and its
messages' are found by ``ticket_id``.

Revision ID: core_04
Revises: core_03
Create Date: 2026-11-22 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_04"
down_revision = "core_03"
branch_labels = None
depends_on = None

OUTSIDE_TICKETS = sa.text("ticket_id IS NULL")


def upgrade() -> None:
    op.drop_index("ix_audit_events_created_at", table_name="audit_events")
    op.drop_index("ix_audit_events_entity", table_name="audit_events")
    op.create_index(
        "ix_audit_events_entity",
        "audit_events",
        ["entity_type", "entity_id"],
        sqlite_where=OUTSIDE_TICKETS,
        postgresql_where=OUTSIDE_TICKETS,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_entity", table_name="audit_events")
    op.create_index("ix_audit_events_entity", "audit_events", ["entity_type", "entity_id"])
    op.create_index("ix_audit_events_created_at", "audit_events", ["created_at"])
