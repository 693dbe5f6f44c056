"""core: a configuration generation that database triggers bump on every configuration change

Revision ID: core_02
Revises: api_03
Create Date: 2026-11-22 01:00:00

Hot paths cache configuration per process (:mod:`opsdesk.config_cache`) and check this one-row
table once per transaction. Triggers, not service code, bump it: no writer can forget, and every
process sees a change when it commits.

SQLite's ``batch_alter_table`` rebuilds a table and drops its triggers: a later migration that
rebuilds a configuration table must call :func:`create_triggers` for it again (a test checks
that every configuration table has its triggers at the head revision).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

GENERATION_TABLE = "config_generation"
# Frozen here: a configuration table added later gets its triggers in its own migration.
CONFIGURATION_TABLES = (
    "automation_rules",
    "business_calendars",
    "custom_field_definitions",
    "escalation_rules",
    "experiments",
    "group_assignment_settings",
    "groups",
    "routing_rules",
    "sla_policies",
    "ticket_statuses",
    "triage_categories",
    "triage_keyword_rules",
    "triage_models",
    "triage_settings",
    "webhook_subscriptions",
)

revision = "core_02"
down_revision = "api_03"
branch_labels = None
depends_on = None

# Columns that hot paths update on configuration rows: counters, not configuration.
NOT_CONFIGURATION = {
    "automation_rules": ("fire_count", "last_fired_at", "updated_at"),
    "group_assignment_settings": ("last_assigned_user_id", "updated_at"),
}
# A fresh random value, not value + 1: see opsdesk.config_cache on rollbacks.
BUMP_SQLITE = f"UPDATE {GENERATION_TABLE} SET value = abs(random()) WHERE id = 1"
BUMP_POSTGRESQL = f"UPDATE {GENERATION_TABLE} SET value = floor(random() * 9.0e18)::bigint WHERE id = 1"


def _update_of(table: str) -> str:
    """``UPDATE`` or ``UPDATE OF <configuration columns>`` for tables with counters."""
    skipped = NOT_CONFIGURATION.get(table)
    if skipped is None:
        return "UPDATE"
    columns = [column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)]
    return "UPDATE OF " + ", ".join(column for column in columns if column not in skipped)


def create_triggers(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, operation in (("insert", "INSERT"), ("update", _update_of(table)), ("delete", "DELETE")):
            op.execute(
                f"CREATE TRIGGER config_generation_{table}_{name} "
                f"AFTER {operation} ON {table} BEGIN {BUMP_SQLITE}; END"
            )
    else:
        op.execute(
            f"CREATE TRIGGER config_generation_{table} AFTER INSERT OR {_update_of(table)} OR DELETE "
            f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_config_generation()"
        )


def drop_triggers(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for operation in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS config_generation_{table}_{operation}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS config_generation_{table} ON {table}")


def upgrade() -> None:
    op.create_table(
        GENERATION_TABLE,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute(
        sa.text(f"INSERT INTO {GENERATION_TABLE} (id, epoch, value) VALUES (1, :epoch, 0)").bindparams(
            epoch=uuid.uuid4().hex
        )
    )
    if op.get_bind().dialect.name != "sqlite":
        op.execute(
            "CREATE FUNCTION bump_config_generation() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {BUMP_POSTGRESQL}; RETURN NULL; END $$"
        )
    for table in CONFIGURATION_TABLES:
        create_triggers(table)


def downgrade() -> None:
    for table in CONFIGURATION_TABLES:
        drop_triggers(table)
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS bump_config_generation()")
    op.drop_table(GENERATION_TABLE)
