"""core: email and chat brands are configuration: the configuration generation triggers on them

Every inbound email looks its brand up by address and every chat message reads its chat brand;
they are read from the per-process configuration cache (:mod:`opsdesk.config_cache`), which
needs a change to either table to bump ``config_generation`` like the 15 tables of ``core_02``.
Neither table has counters, so every insert, update and delete bumps it. The trigger DDL is
repeated from ``core_02`` (migrations stay frozen).

Revision ID: core_03
Revises: sla_06
Create Date: 2026-11-22 04:00:00
"""

from __future__ import annotations

from alembic import op

revision = "core_03"
down_revision = "sla_06"
branch_labels = None
depends_on = None

TABLES = ("chat_brands", "email_brands")
# A fresh random value, not value + 1: see opsdesk.config_cache on rollbacks. PostgreSQL's
# bump_config_generation() function was made by core_02.
BUMP_SQLITE = "UPDATE config_generation SET value = abs(random()) WHERE id = 1"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in TABLES:
        if sqlite:
            for name in ("insert", "update", "delete"):
                op.execute(
                    f"CREATE TRIGGER config_generation_{table}_{name} "
                    f"AFTER {name.upper()} ON {table} BEGIN {BUMP_SQLITE}; END"
                )
        else:
            op.execute(
                f"CREATE TRIGGER config_generation_{table} AFTER INSERT OR UPDATE OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_config_generation()"
            )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in TABLES:
        if sqlite:
            for name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS config_generation_{table}_{name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS config_generation_{table} ON {table}")
