"""core: revoking a token or changing its user bumps the configuration generation

Every API request looks its token up with the token's user. Processes now keep the live tokens
they have seen, keyed by the configuration generation (:mod:`opsdesk.auth.service`), so a token
must not outlive its revocation there: a change of a token (its revocation) or of a user (role,
deactivation, name, …) bumps ``config_generation`` like a configuration change, in the same
transaction. Left out, as counters are in ``core_02``: a token's ``last_used_at`` (touched once a
minute per token in use) and a user's ``availability`` and ``updated_at`` (agents go on and off
shift all day; the cached user row leaves those two to load on first use). The trigger DDL is
repeated from ``core_02`` (migrations stay frozen).

Revision ID: core_05
Revises: core_04
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_05"
down_revision = "core_04"
branch_labels = None
depends_on = None

NOT_CREDENTIALS = {
    "api_tokens": ("last_used_at",),
    "users": ("availability", "updated_at"),
}
# A fresh random value, not value + 1: see opsdesk.config_cache on rollbacks. PostgreSQL's
# bump_config_generation() function was made by core_02.
BUMP_SQLITE = "UPDATE config_generation SET value = abs(random()) WHERE id = 1"


def _update_of(table: str) -> str:
    columns = [column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)]
    return "UPDATE OF " + ", ".join(column for column in columns if column not in NOT_CREDENTIALS[table])


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in NOT_CREDENTIALS:
        if sqlite:
            for name, operation in (
                ("insert", "INSERT"),
                ("update", _update_of(table)),
                ("delete", "DELETE"),
            ):
                op.execute(
                    f"CREATE TRIGGER config_generation_{table}_{name} "
                    f"AFTER {operation} ON {table} BEGIN {BUMP_SQLITE}; END"
                )
        else:
            op.execute(
                f"CREATE TRIGGER config_generation_{table} AFTER INSERT OR {_update_of(table)} OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_config_generation()"
            )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in NOT_CREDENTIALS:
        if sqlite:
            for name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS config_generation_{table}_{name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS config_generation_{table} ON {table}")
