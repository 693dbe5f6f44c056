"""The steps a Slack event takes, each in its own transaction: store it, look up who wrote it
(``users.info``, outside any transaction), then process it onto a ticket."""

from __future__ import annotations

from typing import Any

from opsdesk.channels.models import RawInbound
from opsdesk.channels.service import slack
from opsdesk.channels.slack_client import user_identity
from opsdesk.config import Settings
from opsdesk.db import Database


def ingest_event(database: Database, settings: Settings, envelope: dict[str, Any]) -> slack.SlackOutcome:
    with database.transaction() as session:
        row, seen = slack.store_event(session, envelope)
        raw_id, status, ticket_id = row.id, row.status, row.ticket_id
        event = envelope.get("event") or {}
        token = slack.bot_token_for(session, settings, str(event.get("channel") or ""))
    if seen and status != "pending":
        return slack.SlackOutcome(status, ticket_id, duplicate=True)
    user_id = str(event.get("user") or "unknown")
    email, name = (
        user_identity(settings, token, user_id) if token else (f"{user_id.lower()}@slack-users.invalid", None)
    )
    with database.transaction() as session:
        return slack.process_event(session, session.get_one(RawInbound, raw_id), email, name)
