"""triage: the shipped shared "Needs triage" view (tickets triage handed to a person)

Revision ID: triage_02
Revises: channels_04
Create Date: 2026-11-21 21:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsdesk.db
from opsdesk import clock

revision = "triage_02"
down_revision = "channels_04"
branch_labels = None
depends_on = None

NAME = "Needs triage"
FILTERS = {"status": ["unsolved"], "tag": ["needs_triage"]}

views = sa.table(
    "views",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("owner_id", sa.BigInteger),
    sa.column("filters", opsdesk.db.JSONType),
    sa.column("sort", sa.String),
    sa.column("position", sa.Integer),
    sa.column("is_default", sa.Boolean),
    sa.column("created_at", opsdesk.db.UTCDateTime()),
)


def upgrade() -> None:
    bind = op.get_bind()
    existing = bind.execute(
        sa.select(views.c.id).where(views.c.name == NAME, views.c.owner_id.is_(None))
    ).first()
    if existing is None:
        op.bulk_insert(
            views,
            [
                {
                    "name": NAME,
                    "owner_id": None,
                    "filters": FILTERS,
                    "sort": "created_at",
                    "position": 4,
                    "is_default": True,
                    "created_at": clock.now(),
                }
            ],
        )


def downgrade() -> None:
    op.execute(
        sa.delete(views).where(views.c.name == NAME, views.c.owner_id.is_(None), views.c.is_default.is_(True))
    )
