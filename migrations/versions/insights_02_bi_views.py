"""read-only views with stable names for BI tools

Revision ID: insights_02
Revises: billing_01
Create Date: 2026-11-21 20:10:00

The views are the documented BI schema (docs/insights.md): their names and columns are stable;
new columns may be added at the end, none renamed or removed without a new view name. Derived
columns follow the metric layer (opsdesk.insights.definitions); tests check they agree.
Message bodies and people's contact details are left out on purpose.
"""

from __future__ import annotations

from alembic import op

revision = "insights_02"
down_revision = "billing_01"
branch_labels = None
depends_on = None

VIEWS = (
    "bi_tickets",
    "bi_messages",
    "bi_status_changes",
    "bi_agents",
    "bi_groups",
    "bi_group_members",
    "bi_accounts",
    "bi_ticket_tags",
)


def _seconds(end: str, start: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _json_text(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"({column} #>> '{{}}')"
    return f"json_extract({column}, '$')"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    solved = "t.status IN ('solved', 'closed')"
    op.execute(
        f"""
        CREATE VIEW bi_tickets AS
        SELECT
            t.id AS ticket_id, t.subject, t.status, t.priority, t.type, t.category, t.channel, t.language,
            t.requester_id, t.account_id, t.assignee_id, t.group_id, t.follow_up_of_id,
            t.created_at, t.first_reply_at, t.first_solved_at, t.solved_at, t.closed_at,
            t.reopened_count, t.staff_public_reply_count, t.customer_message_count, t.handle_seconds,
            t.satisfaction_score, t.satisfaction_at,
            {_seconds("t.first_reply_at", "t.created_at", dialect)} AS first_reply_seconds,
            CASE WHEN {solved} THEN {_seconds("t.solved_at", "t.created_at", dialect)} END AS full_resolution_seconds,
            CASE WHEN t.first_solved_at IS NULL OR t.staff_public_reply_count = 0 THEN NULL
                 WHEN t.staff_public_reply_count = 1 AND t.reopened_count = 0 THEN 1 ELSE 0 END AS is_first_contact_resolution,
            CASE WHEN t.first_solved_at IS NULL THEN NULL
                 WHEN t.staff_public_reply_count = 0 THEN 1 ELSE 0 END AS is_solved_without_reply,
            CASE WHEN t.first_solved_at IS NULL THEN NULL WHEN t.reopened_count > 0 THEN 1 ELSE 0 END AS is_reopened,
            CASE WHEN t.satisfaction_score IS NULL THEN NULL
                 WHEN t.satisfaction_score >= 4 THEN 1 ELSE 0 END AS is_good_rating,
            CASE WHEN t.assignee_id IS NULL THEN NULL ELSE COALESCE(u.vendor, 'in-house') END AS vendor,
            a.tier AS account_tier, a.plan_name AS account_plan
        FROM tickets t
        LEFT OUTER JOIN users u ON u.id = t.assignee_id
        LEFT OUTER JOIN accounts a ON a.id = t.account_id
        WHERE t.merged_into_id IS NULL
        """
    )
    op.execute(
        """
        CREATE VIEW bi_messages AS
        SELECT m.id AS message_id, m.ticket_id, m.author_kind, m.author_user_id, m.is_public, m.channel, m.created_at
        FROM messages m
        """
    )
    op.execute(
        f"""
        CREATE VIEW bi_status_changes AS
        SELECT e.id AS change_id, e.ticket_id, {_json_text("e.old_value", dialect)} AS old_status,
               {_json_text("e.new_value", dialect)} AS new_status, e.actor_kind, e.actor_id, e.via, e.created_at AS changed_at
        FROM audit_events e
        WHERE e.entity_type = 'ticket' AND e.field = 'status'
        """
    )
    op.execute(
        """
        CREATE VIEW bi_agents AS
        SELECT u.id AS user_id, u.name, u.role, COALESCE(u.vendor, 'in-house') AS vendor, u.is_active, u.created_at
        FROM users u
        """
    )
    op.execute("CREATE VIEW bi_groups AS SELECT g.id AS group_id, g.name FROM groups g")
    op.execute("CREATE VIEW bi_group_members AS SELECT gm.group_id, gm.user_id FROM group_memberships gm")
    op.execute(
        """
        CREATE VIEW bi_accounts AS
        SELECT a.id AS account_id, a.name, a.tier, a.plan_name, a.mrr_amount_minor, a.currency, a.renewal_on, a.created_at
        FROM accounts a
        """
    )
    op.execute("CREATE VIEW bi_ticket_tags AS SELECT tt.ticket_id, tt.tag FROM ticket_tags tt")


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
