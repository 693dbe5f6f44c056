"""tickets (status, solved_at) index

"Recently solved" (status solved or closed, solved in the last 7 days) counted by walking every
closed ticket's entry of the (status, updated_at) index: seconds at a million tickets. With
(status, solved_at) the count reads only the recent range of each status.

Revision ID: api_03
Revises: insights_04
Create Date: 2026-11-22 01:30:00
"""

from __future__ import annotations

from alembic import op

revision = "api_03"
down_revision = "insights_04"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain CREATE INDEX on both databases (no batch table copy on SQLite).
    op.create_index("ix_tickets_status_solved_at", "tickets", ["status", "solved_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tickets_status_solved_at", table_name="tickets")
