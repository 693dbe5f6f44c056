"""Trends: topic clusters of the last N days' tickets, flagged new or growing against the N days
before (:mod:`opsdesk.insights.topics`). Texts are the subject and the first customer message;
at most ``SAMPLE`` of the most recent tickets per period are read, which keeps the page fast on
millions of tickets while the clusters stay representative."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.insights import topics
from opsdesk.insights.definitions import not_merged
from opsdesk.insights.errors import InvalidMetricQueryError
from opsdesk.tickets.models import Message, Ticket

SAMPLE = 3000
BODY_CHARACTERS = 600


@dataclass(frozen=True, slots=True)
class TopicView:
    topic: topics.Topic
    examples: list[tuple[int, str]]


@dataclass(slots=True)
class TopicTrends:
    start: datetime
    end: datetime
    days: int
    tickets_read: int
    topics: list[TopicView] = field(default_factory=list)


def _documents(session: Session, start: datetime, end: datetime) -> list[topics.Document]:
    first_message = (
        select(Message.ticket_id, func.min(Message.id).label("message_id"))
        .where(Message.author_kind == "customer")
        .group_by(Message.ticket_id)
        .subquery()
    )
    recent = (
        select(Ticket.id, Ticket.subject)
        .where(Ticket.created_at >= start, Ticket.created_at < end, not_merged())
        .order_by(Ticket.created_at.desc())
        .limit(SAMPLE)
        .subquery()
    )
    rows = session.execute(
        select(recent.c.id, recent.c.subject, func.substr(Message.body_text, 1, BODY_CHARACTERS))
        .outerjoin(first_message, first_message.c.ticket_id == recent.c.id)
        .outerjoin(Message, Message.id == first_message.c.message_id)
    )
    return [topics.Document(ticket_id, f"{subject}. {body or ''}") for ticket_id, subject, body in rows]


def topic_trends(session: Session, actor: Actor, *, days: int = 7, max_topics: int = 12) -> TopicTrends:
    require(actor, Permission.REPORT_READ)
    if not 1 <= days <= 90:
        raise InvalidMetricQueryError(
            "the period is not valid", fields=[FieldProblem(("query", "days"), "must be 1 to 90")]
        )
    end = clock.now()
    start = end - timedelta(days=days)
    current = _documents(session, start, end)
    previous = _documents(session, start - timedelta(days=days), start)
    found = topics.cluster(current, previous, max_topics=max_topics)
    example_ids = {ticket_id for topic in found for ticket_id in topic.example_ids}
    subjects: dict[int, str] = {}
    if example_ids:
        rows = session.execute(select(Ticket.id, Ticket.subject).where(Ticket.id.in_(example_ids)))
        subjects = {int(ticket_id): str(subject) for ticket_id, subject in rows}
    trends = TopicTrends(start, end, days, len(current))
    for topic in found:
        trends.topics.append(
            TopicView(topic, [(ticket_id, subjects.get(ticket_id, "")) for ticket_id in topic.example_ids])
        )
    return trends
