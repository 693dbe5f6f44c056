"""The live floor: what a lead watches during the day.

- unsolved backlog now, by age;
- new tickets in the last hour against the same hour a week ago;
- agents online and their load (unsolved tickets assigned);
- the oldest customer waiting for us per channel (new or open, last word from the customer);
- spikes per category and per account: the last hour against the same hour-of-week of the
  previous four weeks (:mod:`opsdesk.insights.spikes`).
- tickets breaching soon: active SLA targets (developer "sla"'s ``sla_targets``) falling due
  within the next hour, soonest first, on tickets the viewer may see, with how many in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, require
from opsdesk.insights import spikes
from opsdesk.insights.definitions import not_merged
from opsdesk.insights.sqltime import unindexed
from opsdesk.sla import queries as sla_queries
from opsdesk.sla.models import ACTIVE_STATUS, SlaTarget
from opsdesk.sla.queries import SlaViewRow
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Account, Ticket
from opsdesk.tickets.service.access import visible_tickets

AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("under 1 hour", timedelta(hours=1)),
    ("1-4 hours", timedelta(hours=4)),
    ("4-24 hours", timedelta(days=1)),
    ("1-3 days", timedelta(days=3)),
    ("3-7 days", timedelta(days=7)),
    ("over 7 days", None),
)
SPIKE_WEEKS = 4
BREACHING_SOON_SHOWN = 20
WEEK = timedelta(weeks=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class AgentLoad:
    user_id: int
    name: str
    vendor: str | None
    capacity: int
    open_tickets: int


@dataclass(frozen=True, slots=True)
class Waiting:
    channel: str
    ticket_id: int
    subject: str
    waiting_since: datetime
    waiting_seconds: float


@dataclass(frozen=True, slots=True)
class SpikeAlert:
    dimension: str
    key: str
    label: str
    observed: int
    expected: float
    score: float


@dataclass(slots=True)
class LiveFloor:
    at: datetime
    backlog: list[tuple[str, int]] = field(default_factory=list)
    backlog_total: int = 0
    new_last_hour: int = 0
    new_same_hour_last_week: int = 0
    agents: list[AgentLoad] = field(default_factory=list)
    oldest_waiting: list[Waiting] = field(default_factory=list)
    spikes: list[SpikeAlert] = field(default_factory=list)
    breaching_soon: list[SlaViewRow] = field(default_factory=list)
    breaching_soon_total: int = 0
    breaching_within: timedelta = timedelta(hours=1)


def live_floor(session: Session, actor: Actor) -> LiveFloor:
    require(actor, Permission.REPORT_READ)
    now = clock.now()
    floor = LiveFloor(at=now)
    unsolved = and_(Ticket.status.in_(UNSOLVED_STATUSES), not_merged())

    conditions = [(Ticket.created_at > now - limit, name) for name, limit in AGE_BUCKETS if limit is not None]
    age = case(*conditions, else_=AGE_BUCKETS[-1][0])
    counts = {
        str(name): int(total)
        for name, total in session.execute(select(age, func.count()).where(unsolved).group_by(age))
    }
    floor.backlog = [(name, counts.get(name, 0)) for name, _ in AGE_BUCKETS]
    floor.backlog_total = sum(counts.values())

    def created_between(start: datetime, end: datetime) -> int:
        statement = select(func.count()).where(
            Ticket.created_at >= start, Ticket.created_at < end, not_merged()
        )
        return int(session.scalar(statement) or 0)

    floor.new_last_hour = created_between(now - HOUR, now)
    floor.new_same_hour_last_week = created_between(now - WEEK - HOUR, now - WEEK)

    load = (
        select(Ticket.assignee_id, func.count())
        .where(Ticket.status.in_(UNSOLVED_STATUSES), Ticket.assignee_id.is_not(None))
        .group_by(Ticket.assignee_id)
        .subquery()
    )
    agents = session.execute(
        select(User.id, User.name, User.vendor, User.capacity, func.coalesce(load.c.count, 0))
        .outerjoin(load, load.c.assignee_id == User.id)
        .where(User.availability == "online", User.is_active.is_(True))
        .order_by(func.coalesce(load.c.count, 0).desc(), User.name)
    )
    floor.agents = [AgentLoad(int(a), str(b), c, int(d), int(e)) for a, b, c, d, e in agents]

    awaiting = and_(
        Ticket.status.in_(("new", "open")),
        not_merged(),
        or_(
            Ticket.last_staff_reply_at.is_(None), Ticket.last_customer_message_at > Ticket.last_staff_reply_at
        ),
    )
    oldest = (
        select(Ticket.channel, func.min(Ticket.last_customer_message_at).label("since"))
        .where(awaiting)
        .group_by(Ticket.channel)
        .subquery()
    )
    rows = session.execute(
        select(Ticket.channel, Ticket.id, Ticket.subject, Ticket.last_customer_message_at)
        .join(
            oldest,
            and_(oldest.c.channel == Ticket.channel, oldest.c.since == Ticket.last_customer_message_at),
        )
        .where(awaiting)
        .order_by(Ticket.last_customer_message_at, Ticket.id)
    )
    seen: set[str] = set()
    for channel, ticket_id, subject, since in rows:
        if channel in seen or since is None:
            continue
        seen.add(channel)
        floor.oldest_waiting.append(
            Waiting(channel, ticket_id, subject, since, (now - since).total_seconds())
        )
    floor.spikes = detect_spikes(session, now)
    floor.breaching_soon = sla_queries.breaching_soon(
        session, actor, within=floor.breaching_within, limit=BREACHING_SOON_SHOWN
    )
    tickets = visible_tickets(actor).subquery()
    floor.breaching_soon_total = int(
        session.scalar(
            select(func.count())
            .select_from(SlaTarget)
            .join(tickets, tickets.c.id == SlaTarget.ticket_id)
            .where(
                SlaTarget.status == ACTIVE_STATUS,  # a constant: the partial index of active due times
                SlaTarget.due_at > now,
                SlaTarget.due_at <= now + floor.breaching_within,
            )
        )
        or 0
    )
    return floor


def detect_spikes(session: Session, now: datetime) -> list[SpikeAlert]:
    """Spikes of the last hour per category and per account against the same hour-of-week."""
    windows = [(now - HOUR - WEEK * back, now - WEEK * back) for back in range(SPIKE_WEEKS + 1)]
    window = case(
        *[
            (and_(Ticket.created_at >= start, Ticket.created_at < end), back)
            for back, (start, end) in enumerate(windows)
        ],
        else_=-1,
    )
    in_any = or_(*[and_(Ticket.created_at >= start, Ticket.created_at < end) for start, end in windows])
    alerts: list[SpikeAlert] = []
    for dimension, column in (("category", Ticket.category), ("account", Ticket.account_id)):
        statement = (
            select(column, window, func.count())
            .where(in_any, not_merged(), unindexed(column).is_not(None))
            .group_by(column, window)
        )
        series: dict[str, dict[datetime, int]] = {}
        for key, back, count in session.execute(statement):
            if back < 0:
                continue
            series.setdefault(str(key), {})[now - WEEK * int(back)] = int(count)
        found = spikes.detect(series, now, weeks=SPIKE_WEEKS)
        labels: dict[str, str] = {}
        if dimension == "account" and found:
            ids = [int(spike.key) for spike in found]
            labels = {
                str(i): name
                for i, name in session.execute(select(Account.id, Account.name).where(Account.id.in_(ids)))
            }
        alerts.extend(
            SpikeAlert(
                dimension,
                spike.key,
                labels.get(spike.key, spike.key),
                spike.observed,
                spike.expected,
                spike.score,
            )
            for spike in found
        )
    alerts.sort(key=lambda alert: -alert.score)
    return alerts
