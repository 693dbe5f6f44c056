"""channels: secrets sealed at rest, scheduled IMAP polling, brand from-address and templates,
Slack signing secrets and accounts.

Data: every IMAP password and Slack bot token still stored as plain text is sealed with the key
of the settings (``opsdesk.channels.secret_box``: ``OPSDESK_SECRET_KEY``, or the key file in the
data directory, created here on first use). The downgrade leaves them sealed.

Revision ID: channels_04
Revises: chat_01
Create Date: 2026-11-21 21:47:27.584268
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsdesk.db

revision = "channels_04"
down_revision = "chat_01"
branch_labels = None
depends_on = None


def _seal_plain_secrets() -> None:
    from opsdesk.channels.secret_box import is_sealed, seal
    from opsdesk.config import Settings

    connection = op.get_bind()
    settings: Settings | None = None
    for table, column in (("imap_mailboxes", "password"), ("slack_connections", "bot_token")):
        rows = connection.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
        for row_id, value in rows:
            if value is None or is_sealed(value):
                continue
            settings = settings or Settings()
            connection.execute(
                sa.text(f"UPDATE {table} SET {column} = :sealed WHERE id = :id"),
                {"sealed": seal(settings, value), "id": row_id},
            )


def upgrade() -> None:
    with op.batch_alter_table("email_brands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("from_address", sa.String(length=320), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("receipt_template", sa.Text(), nullable=False, server_default=""))

    with op.batch_alter_table("imap_mailboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("poll_interval_seconds", sa.Integer(), nullable=False, server_default="60")
        )
        batch_op.add_column(sa.Column("poll_lease_owner", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("poll_lease_until", opsdesk.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("poll_attempted_at", opsdesk.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column(
            "password", existing_type=sa.VARCHAR(length=500), type_=sa.Text(), existing_nullable=False
        )

    with op.batch_alter_table("slack_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_secret", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("account_id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=True)
        )
        batch_op.alter_column(
            "bot_token", existing_type=sa.VARCHAR(length=300), type_=sa.Text(), existing_nullable=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_slack_connections_account_id_accounts"),
            "accounts",
            ["account_id"],
            ["id"],
            ondelete="SET NULL",
        )

    for table, column in (
        ("email_brands", "from_address"),
        ("email_brands", "receipt_template"),
        ("imap_mailboxes", "poll_interval_seconds"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, server_default=None)

    _seal_plain_secrets()


def downgrade() -> None:
    with op.batch_alter_table("slack_connections", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_slack_connections_account_id_accounts"), type_="foreignkey")
        batch_op.drop_column("account_id")
        batch_op.drop_column("signing_secret")

    with op.batch_alter_table("imap_mailboxes", schema=None) as batch_op:
        batch_op.drop_column("poll_attempted_at")
        batch_op.drop_column("poll_lease_until")
        batch_op.drop_column("poll_lease_owner")
        batch_op.drop_column("poll_interval_seconds")

    with op.batch_alter_table("email_brands", schema=None) as batch_op:
        batch_op.drop_column("receipt_template")
        batch_op.drop_column("from_address")
