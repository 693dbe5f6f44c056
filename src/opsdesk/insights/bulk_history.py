"""A fast synthetic helpdesk history for benchmarks: N tickets over a year with their messages,
status trail and SLA targets, written in bulk (COPY on PostgreSQL, the driver's executemany of
prepared tuples on SQLite).

It bypasses the ticket service on purpose: building a million tickets through services would
take hours. The rows obey the invariants the services keep, so metrics read them like real
history:
- first_reply_at is the first public staff message, staff_public_reply_count counts them,
  customer_message_count and last_customer_message_at follow the customer's messages;
- solved tickets have solved_at and first_solved_at, the trail has their status changes;
- customers write again between staff replies (so next reply times exist), and every ticket has
  SLA targets as the SLA domain keeps them: first reply and resolution (cycle 1) and one next
  reply target per customer message after a staff reply; met in time = achieved, met late =
  breached with the met instant kept, unmet past due = breached, otherwise active.

Everything is generated as numpy columns (no Python loop per ticket); instants are whole epoch
seconds, formatted per day with a cache. Arrivals follow an hour-of-week pattern; durations are
log-normal. Deterministic per seed.

Large loads (``rebuild_indexes``, by default from 20,000 tickets) drop the secondary indexes of
the tables written and the keyword-search triggers, write, then build the indexes once and the
search index from the rows (``opsdesk.tickets.service.search``'s rebuild), all inside the
caller's transaction: a failure rolls back rows, indexes and triggers together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from opsdesk.auth.models import Group, GroupMembership, User
from opsdesk.demo.bulk import BulkWriter, epoch_of
from opsdesk.tickets.models import Account, Person, Ticket
from opsdesk.tickets.service import search

CATEGORIES: dict[str, tuple[str, ...]] = {
    "billing": (
        "Refund for invoice",
        "Charged twice this month",
        "Update card on file",
        "Invoice VAT number wrong",
    ),
    "login": (
        "Cannot log in",
        "Password reset email not arriving",
        "Two-factor code rejected",
        "SSO login loops",
    ),
    "bug": (
        "Export button does nothing",
        "Dashboard shows an error",
        "Sync failed overnight",
        "App crashes on save",
    ),
    "how_to": (
        "How do I add a teammate",
        "Where is the API key",
        "How to change my plan",
        "Set up email forwarding",
    ),
    "account": ("Close my account", "Change account owner", "Merge two accounts", "Rename workspace"),
    "integrations": (
        "Slack integration disconnected",
        "Webhook not firing",
        "Zapier errors",
        "Salesforce sync stuck",
    ),
    "performance": ("Pages load slowly", "Search is slow", "Timeouts on reports", "API rate limited"),
    "data": (
        "Missing records after import",
        "Duplicate contacts",
        "CSV import fails",
        "Restore deleted data",
    ),
}
CHANNELS = ("email", "web", "chat", "slack", "api", "phone")
CHANNEL_WEIGHTS = (0.45, 0.2, 0.2, 0.05, 0.05, 0.05)
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_WEIGHTS = (0.2, 0.6, 0.15, 0.05)
LANGUAGES = ("en", "de", "fr", "es")
TIERS = ("enterprise", "business", "self_serve", "consumer")
PLANS = ("Starter", "Team", "Scale", "Enterprise")
# SLA targets per priority (seconds), as a team's policies would set them.
SLA_POLICY_NAMES = ("Bench low", "Bench normal", "Bench high", "Bench urgent")
FIRST_REPLY_TARGET = np.array([8 * 3600, 4 * 3600, 3600, 1800])
NEXT_REPLY_TARGET = np.array([8 * 3600, 8 * 3600, 4 * 3600, 2 * 3600])
RESOLUTION_TARGET = np.array([48 * 3600, 24 * 3600, 8 * 3600, 4 * 3600])
# Chance that the customer writes again after a staff reply that is followed by another one.
FOLLOW_UP_CHANCE = 0.5
BULK_FROM = 20_000
CHUNK = 50_000

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class LoadedHistory:
    tickets: int
    messages: int
    events: int
    sla_targets: int
    start: datetime
    end: datetime


def _hour_of_week_weights() -> npt.NDArray[np.float64]:
    hours = np.arange(168)
    day, hour = hours // 24, hours % 24
    weights = np.where((hour >= 8) & (hour < 18), 4.0, 1.0) * np.where(day < 5, 1.0, 0.35)
    normalised: npt.NDArray[np.float64] = weights / weights.sum()
    return normalised


class _ColumnWriter:
    """Generated columns to the shared bulk writer (:class:`opsdesk.demo.bulk.BulkWriter`: COPY on
    PostgreSQL, the driver's executemany on SQLite), in chunks of rows, with instants formatted by
    its :class:`~opsdesk.demo.bulk.InstantFormat`."""

    def __init__(self, session: Session) -> None:
        self.bulk = BulkWriter(session)

    def write(self, table: str, columns: dict[str, Sequence[Any]]) -> int:
        names = tuple(columns)
        values = list(columns.values())
        count = len(values[0])
        for begin in range(0, count, CHUNK):
            self.bulk.insert(
                table, names, zip(*(column[begin : begin + CHUNK] for column in values), strict=True)
            )
        return count

    def instants(self, epochs: IntArray, present: BoolArray | None = None) -> list[str | None]:
        """The stored text of each instant; ``None`` where ``present`` is false."""
        absent: list[int] = [] if present is None else np.flatnonzero(~present).tolist()
        return self.bulk.instant.texts(epochs.tolist(), absent=absent)


@contextlib.contextmanager
def _bulk_mode(writer: BulkWriter, tables: Sequence[str]) -> Iterator[None]:
    """Without secondary indexes and keyword-search triggers while the block writes; then the
    indexes built once, the search index rebuilt from the rows and the triggers restored (what the
    demo seeder's bulk load does too)."""
    with writer.bulk_load_tuning(), search.suspended_index(writer.session), writer.without_indexes(tables):
        yield


def _within(counts: IntArray) -> IntArray:
    """For groups of the given sizes laid end to end: each element's index inside its group."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within: IntArray = np.arange(total, dtype=np.int64) - starts
    return within


def load(
    session: Session,
    tickets: int,
    *,
    end: datetime,
    days: int = 365,
    seed: int = 7,
    rebuild_indexes: bool | None = None,
) -> LoadedHistory:
    """Write ``tickets`` tickets created over the ``days`` days before ``end``."""
    if tickets < 1:
        raise ValueError("tickets must be at least 1")
    rng = np.random.default_rng(seed)
    writer = _ColumnWriter(session)
    start = end - timedelta(days=days)
    first_id = (session.scalar(select(func.max(Ticket.id))) or 0) + 1

    # --- staff, groups, accounts, people
    group_names = [f"Bench {name}" for name in ("Tier 1", "Tier 2", "Billing", "Technical", "VIP", "Nights")]
    group_ids: list[int] = [
        session.execute(
            insert(Group).values(name=f"{name} {seed}-{first_id}", description="").returning(Group.id)
        ).scalar_one()
        for name in group_names
    ]
    user_ids: list[int] = []
    for number in range(60):
        vendor = None if number < 40 else ("Acme BPO" if number < 52 else "Globex Support")
        user_id = session.execute(
            insert(User)
            .values(
                email=f"bench{seed}-{first_id}-{number}@staff.example.com",
                name=f"Bench Agent {number}",
                role="agent" if vendor is None else "contractor",
                vendor=vendor,
                availability="online" if number % 3 == 0 else "off_shift",
                languages=["en"],
                skills=[],
                time_zone="UTC",
                capacity=20,
                seniority=1,
                is_active=True,
                created_at=start,
                updated_at=start,
            )
            .returning(User.id)
        ).scalar_one()
        user_ids.append(user_id)
        session.execute(
            insert(GroupMembership).values(group_id=group_ids[number % len(group_ids)], user_id=user_id)
        )
    start_text = writer.instants(np.array([epoch_of(start)]))[0]
    account_count = max(10, tickets // 500)
    first_account = (session.scalar(select(func.max(Account.id))) or 0) + 1
    accounts = range(account_count)
    writer.write(
        "accounts",
        {
            "id": [first_account + n for n in accounts],
            "name": [f"Customer {first_account + n}" for n in accounts],
            "tier": [TIERS[n % 4] for n in accounts],
            "plan_name": [PLANS[n % 4] for n in accounts],
            "mrr_amount_minor": [10_000 * (1 + n % 50) for n in accounts],
            "currency": ["USD"] * account_count,
            "is_hot": [False] * account_count,
            "notes": [""] * account_count,
            "created_at": [start_text] * account_count,
            "updated_at": [start_text] * account_count,
        },
    )
    people_count = max(20, tickets // 20)
    first_person = (session.scalar(select(func.max(Person.id))) or 0) + 1
    person_accounts = rng.integers(0, account_count, people_count) + first_account
    people = range(people_count)
    writer.write(
        "people",
        {
            "id": [first_person + n for n in people],
            "name": [f"Customer Person {n}" for n in people],
            "language": [LANGUAGES[n % 4] for n in people],
            "primary_account_id": person_accounts.tolist(),
            "created_at": [start_text] * people_count,
            "updated_at": [start_text] * people_count,
        },
    )
    writer.write(
        "person_emails",
        {
            "person_id": [first_person + n for n in people],
            "email": [f"p{first_person + n}-{seed}@customers.example.org" for n in people],
            "is_primary": [True] * people_count,
        },
    )

    history = _generate(rng, tickets, start, end, days)
    bulk = tickets >= BULK_FROM if rebuild_indexes is None else rebuild_indexes
    tables = ("tickets", "messages", "audit_events", "sla_targets")
    with _bulk_mode(writer.bulk, tables) if bulk else contextlib.nullcontext():
        _write_history(writer, history, first_id, group_ids, user_ids, first_person, person_accounts)
    return LoadedHistory(
        tickets,
        len(history.message_ticket),
        len(history.event_ticket),
        len(history.target_ticket),
        start,
        end,
    )


@dataclass(slots=True)
class _History:
    """The generated history as columns (ticket positions index the ticket arrays)."""

    end: int
    created: IntArray
    first_reply: IntArray
    replied: BoolArray
    reply_count: IntArray
    solved_at: IntArray
    solved: BoolArray
    first_solved: IntArray
    reopened: BoolArray
    closed: BoolArray
    status: list[str]
    last_reply: IntArray
    last_customer: IntArray
    customer_count: IntArray
    rated: BoolArray
    scores: IntArray
    handle: IntArray
    category_index: IntArray
    subject_index: IntArray
    channel_index: IntArray
    priority_index: IntArray
    group_index: IntArray
    assignee_index: IntArray
    unassigned: BoolArray
    requester_index: IntArray
    message_ticket: IntArray
    message_staff: BoolArray
    message_at: IntArray
    event_ticket: IntArray
    event_kind: IntArray  # 0 created, 1 new->open, 2 open->solved
    event_at: IntArray
    target_ticket: IntArray
    target_metric: list[str]
    target_cycle: IntArray
    target_seconds: IntArray
    target_started: IntArray
    target_met: IntArray
    target_met_present: BoolArray


def _generate(rng: np.random.Generator, count: int, start: datetime, end: datetime, days: int) -> _History:
    weights = _hour_of_week_weights()
    start_epoch, end_epoch = epoch_of(start), epoch_of(end)
    hour_slots = rng.choice(168, size=count, p=weights)
    week_index = rng.integers(0, int(np.ceil(days / 7)), count)
    monday = epoch_of(
        start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=start.weekday())
    )
    created = monday + (week_index * 168 + hour_slots) * 3600 + rng.integers(0, 3600, count)
    created = created[(created >= start_epoch) & (created < end_epoch)]
    while created.size < count:  # top up what fell outside the window
        extra = start_epoch + rng.integers(0, days * 86400, count - created.size)
        created = np.concatenate([created, extra])
    created = np.sort(created[:count]).astype(np.int64)
    age = end_epoch - created
    first_reply_delay = np.minimum(rng.lognormal(8.0, 1.2, count), 20 * 86400).astype(np.int64)
    replies = rng.choice([0, 1, 1, 1, 2, 2, 3, 4], size=count).astype(np.int64)
    resolution = first_reply_delay + rng.lognormal(9.5, 1.3, count).astype(np.int64)
    solved = (resolution < age) & (rng.random(count) < 0.97)
    replied = (replies > 0) & (first_reply_delay < age)
    reopened = solved & (rng.random(count) < 0.06)
    rated = solved & (rng.random(count) < 0.25)
    scores = rng.choice([1, 2, 3, 4, 5], size=count, p=[0.05, 0.05, 0.1, 0.3, 0.5]).astype(np.int64)
    handle = rng.lognormal(6.5, 0.8, count).astype(np.int64)
    category_index = rng.integers(0, len(CATEGORIES), count)
    subject_index = rng.integers(0, 4, count)
    channel_index = rng.choice(len(CHANNELS), size=count, p=CHANNEL_WEIGHTS)
    priority_index = rng.choice(4, size=count, p=PRIORITY_WEIGHTS)
    group_index = rng.integers(0, 6, count)
    assignee_index = rng.integers(0, 60, count)
    requester_index = rng.integers(0, max(20, count // 20), count)
    unassigned = (~solved) & (rng.random(count) < 0.3)
    closed = solved & (age - resolution > 4 * 86400)
    pending = (~solved) & replied & (rng.random(count) < 0.3)

    reply_count = np.where(replied, replies, 0)
    first_reply = created + first_reply_delay
    solved_at = created + resolution
    first_solved = np.where(reopened, created + (resolution * 7) // 10, solved_at)
    span = np.where(solved, solved_at, end_epoch) - first_reply

    # Staff replies: reply j of k at first_reply + span * j / (k + 1).
    staff_ticket = np.repeat(np.arange(count), reply_count)
    staff_number = _within(reply_count)
    staff_at = first_reply[staff_ticket] + (span[staff_ticket] * staff_number) // (
        reply_count[staff_ticket] + 1
    )
    # The customer writes again between two staff replies, now and then.
    has_next = staff_number < reply_count[staff_ticket] - 1
    writes = np.flatnonzero(has_next & (rng.random(staff_ticket.size) < FOLLOW_UP_CHANCE))
    answered_at = staff_at[writes + 1]  # the next staff reply of the ticket answers it
    gap = answered_at - staff_at[writes]
    follow_ticket = staff_ticket[writes]
    follow_number = staff_number[writes]
    follow_at = staff_at[writes] + (gap * rng.uniform(0.2, 0.8, follow_ticket.size)).astype(np.int64)

    # Messages in id order per ticket: the opening message, then staff reply j and the customer's
    # follow-up after it (sequence 2j + 1 and 2j + 2).
    message_ticket = np.concatenate([np.arange(count), staff_ticket, follow_ticket])
    sequence = np.concatenate([np.zeros(count, np.int64), 2 * staff_number + 1, 2 * follow_number + 2])
    message_at = np.concatenate([created, staff_at, follow_at])
    message_staff = np.concatenate(
        [np.zeros(count, bool), np.ones(staff_ticket.size, bool), np.zeros(follow_ticket.size, bool)]
    )
    order = np.lexsort((sequence, message_ticket))

    last_reply = first_reply.copy()
    has_replies = reply_count > 0
    last_staff = first_reply[staff_ticket] + (span[staff_ticket] * (reply_count[staff_ticket] - 1)) // (
        reply_count[staff_ticket] + 1
    )
    last_reply[staff_ticket] = last_staff
    customer_count = 1 + np.bincount(follow_ticket, minlength=count)
    last_customer = created.copy()
    np.maximum.at(last_customer, follow_ticket, follow_at)

    # Status trail: created, new -> open at the first reply, open -> solved at the last solve.
    event_ticket = np.concatenate([np.arange(count), np.flatnonzero(has_replies), np.flatnonzero(solved)])
    event_kind = np.concatenate(
        [np.zeros(count, np.int64), np.ones(int(has_replies.sum()), np.int64), np.full(int(solved.sum()), 2)]
    )
    event_at = np.concatenate([created, first_reply[has_replies], solved_at[solved]])
    event_order = np.lexsort((event_kind, event_ticket))

    # SLA targets: first reply and resolution per ticket, next reply per customer follow-up.
    tickets_index = np.arange(count)
    target_ticket = np.concatenate([tickets_index, tickets_index, follow_ticket])
    metric_code = np.concatenate(
        [np.zeros(count, np.int64), np.full(count, 2, np.int64), np.ones(follow_ticket.size, np.int64)]
    )
    target_cycle = np.concatenate(
        [np.ones(2 * count, np.int64), 1 + _within(np.bincount(follow_ticket, minlength=count))]
    )
    priority_of = priority_index[target_ticket]
    target_seconds = np.select(
        [metric_code == 0, metric_code == 1],
        [FIRST_REPLY_TARGET[priority_of], NEXT_REPLY_TARGET[priority_of]],
        RESOLUTION_TARGET[priority_of],
    )
    target_started = np.concatenate([created, created, follow_at])
    target_met = np.concatenate([first_reply, solved_at, answered_at])
    target_met_present = np.concatenate([has_replies, solved, np.ones(follow_ticket.size, bool)])
    target_order = np.lexsort((target_cycle, metric_code, target_ticket))
    metric_names = ("first_reply", "next_reply", "resolution")

    status = np.where(
        closed,
        "closed",
        np.where(solved, "solved", np.where(pending, "pending", np.where(has_replies, "open", "new"))),
    ).tolist()
    return _History(
        end=end_epoch,
        created=created,
        first_reply=first_reply,
        replied=has_replies,
        reply_count=reply_count,
        solved_at=solved_at,
        solved=solved,
        first_solved=first_solved,
        reopened=reopened,
        closed=closed,
        status=status,
        last_reply=last_reply,
        last_customer=last_customer,
        customer_count=customer_count,
        rated=rated,
        scores=scores,
        handle=handle,
        category_index=category_index,
        subject_index=subject_index,
        channel_index=channel_index,
        priority_index=priority_index,
        group_index=group_index,
        assignee_index=assignee_index,
        unassigned=unassigned,
        requester_index=requester_index,
        message_ticket=message_ticket[order],
        message_staff=message_staff[order],
        message_at=message_at[order],
        event_ticket=event_ticket[event_order],
        event_kind=event_kind[event_order],
        event_at=event_at[event_order],
        target_ticket=target_ticket[target_order],
        target_metric=[metric_names[code] for code in metric_code[target_order].tolist()],
        target_cycle=target_cycle[target_order],
        target_seconds=target_seconds[target_order],
        target_started=target_started[target_order],
        target_met=target_met[target_order],
        target_met_present=target_met_present[target_order],
    )


def _write_history(
    writer: _ColumnWriter,
    history: _History,
    first_id: int,
    group_ids: list[int],
    user_ids: list[int],
    first_person: int,
    person_accounts: IntArray,
) -> None:
    h = history
    count = h.created.size
    ids = (first_id + np.arange(count)).tolist()
    category_names = list(CATEGORIES)
    subjects = [
        f"{CATEGORIES[category_names[c]][s]} #{ticket_id % 97}"
        for c, s, ticket_id in zip(h.category_index.tolist(), h.subject_index.tolist(), ids, strict=True)
    ]
    created = writer.instants(h.created)
    first_reply = writer.instants(h.first_reply, h.replied)
    solved_at = writer.instants(h.solved_at, h.solved)
    last_reply = writer.instants(h.last_reply, h.replied)
    updated = np.where(h.solved, h.solved_at, np.where(h.replied, h.last_reply, h.created))
    updated_text = writer.instants(updated)
    assignee = np.asarray(user_ids)[h.assignee_index]
    assignee_ids: list[int | None] = assignee.tolist()
    for index in np.flatnonzero(h.unassigned).tolist():
        assignee_ids[index] = None
    channels = [CHANNELS[c] for c in h.channel_index.tolist()]
    rated_at = writer.instants(h.solved_at + 7200, h.rated)
    scores: list[int | None] = h.scores.tolist()
    for index in np.flatnonzero(~h.rated).tolist():
        scores[index] = None
    reply_tokens = [
        f"{value:016x}" for value in np.random.default_rng(first_id).integers(0, 2**63, count).tolist()
    ]
    writer.write(
        "tickets",
        {
            "id": ids,
            "subject": subjects,
            "status": h.status,
            "priority": [PRIORITIES[p] for p in h.priority_index.tolist()],
            "type": ["question"] * count,
            "category": [category_names[c] for c in h.category_index.tolist()],
            "channel": channels,
            "language": [LANGUAGES[r % 4] for r in h.requester_index.tolist()],
            "requester_id": (first_person + h.requester_index).tolist(),
            "account_id": person_accounts[h.requester_index].tolist(),
            "assignee_id": assignee_ids,
            "group_id": np.asarray(group_ids)[h.group_index].tolist(),
            "custom_fields": ["{}"] * count,
            "reply_token": reply_tokens,
            "created_at": created,
            "updated_at": updated_text,
            "first_reply_at": first_reply,
            "first_solved_at": writer.instants(h.first_solved, h.solved),
            "solved_at": solved_at,
            "closed_at": writer.instants(h.solved_at + 4 * 86400, h.closed),
            "last_customer_message_at": writer.instants(h.last_customer),
            "last_staff_reply_at": last_reply,
            "status_changed_at": updated_text,
            "reopened_count": h.reopened.astype(np.int64).tolist(),
            "staff_public_reply_count": h.reply_count.tolist(),
            "customer_message_count": h.customer_count.tolist(),
            "handle_seconds": np.where(h.replied, h.handle, 0).tolist(),
            "satisfaction_score": scores,
            "satisfaction_at": rated_at,
        },
    )
    del subjects, created, first_reply, solved_at, last_reply, updated_text, rated_at

    # Messages, in the order their ids follow.
    message_ticket = h.message_ticket
    staff = h.message_staff
    messages = message_ticket.size
    customer_body = [
        f"{CATEGORIES[category_names[c]][s]}. Please help, this blocks our team."
        for c, s in zip(h.category_index.tolist(), h.subject_index.tolist(), strict=True)
    ]
    staff_list = staff.tolist()
    tickets_of = message_ticket.tolist()
    first_customer = np.ones(messages, bool)
    first_customer[1:] = message_ticket[1:] != message_ticket[:-1]
    first_list = first_customer.tolist()
    bodies = [
        "Thanks, we are on it."
        if is_staff
        else customer_body[ticket]
        if is_first
        else "Any news on this? It is still happening."
        for is_staff, is_first, ticket in zip(staff_list, first_list, tickets_of, strict=True)
    ]
    user_of = assignee[message_ticket].tolist()
    person_of = (first_person + h.requester_index[message_ticket]).tolist()
    unassigned = h.unassigned.tolist()
    author_user: list[int | None] = [
        user if is_staff and not unassigned[ticket] else None
        for user, is_staff, ticket in zip(user_of, staff_list, tickets_of, strict=True)
    ]
    author_person: list[int | None] = [
        None if is_staff else person for person, is_staff in zip(person_of, staff_list, strict=True)
    ]
    writer.write(
        "messages",
        {
            "ticket_id": (first_id + message_ticket).tolist(),
            "author_kind": ["staff" if is_staff else "customer" for is_staff in staff_list],
            "author_user_id": author_user,
            "author_person_id": author_person,
            "is_public": [True] * messages,
            "body_text": bodies,
            "channel": [
                "web" if is_staff else channels[ticket]
                for is_staff, ticket in zip(staff_list, tickets_of, strict=True)
            ],
            "created_at": writer.instants(h.message_at),
        },
    )
    del bodies, author_user, author_person, user_of, person_of, staff_list, tickets_of

    # The status trail.
    kinds = h.event_kind.tolist()
    event_ticket_ids = (first_id + h.event_ticket).tolist()
    event_actor: list[int | None] = [
        None if kind == 0 else assignee_ids[ticket]
        for kind, ticket in zip(kinds, h.event_ticket.tolist(), strict=True)
    ]
    events = len(kinds)
    writer.write(
        "audit_events",
        {
            "ticket_id": event_ticket_ids,
            "entity_type": ["ticket"] * events,
            "entity_id": event_ticket_ids,
            "action": ["created" if kind == 0 else "updated" for kind in kinds],
            "field": [None if kind == 0 else "status" for kind in kinds],
            "old_value": [(None, '"new"', '"open"')[kind] for kind in kinds],
            "new_value": [(None, '"open"', '"solved"')[kind] for kind in kinds],
            "actor_kind": ["system" if kind == 0 else "user" for kind in kinds],
            "actor_id": event_actor,
            "actor_name": ["bench" if kind == 0 else "Bench Agent" for kind in kinds],
            "via": ["bench" if kind == 0 else "web" for kind in kinds],
            "created_at": writer.instants(h.event_at),
        },
    )
    del event_ticket_ids, event_actor, kinds

    # SLA targets, as the SLA domain leaves them.
    _write_targets(writer, h, first_id)
    # Rows written with explicit ids: the sequences continue after them.
    for table in ("tickets", "accounts", "people"):
        writer.bulk.move_sequence(table)


def _write_targets(writer: _ColumnWriter, h: _History, first_id: int) -> None:
    targets = h.target_ticket.size
    due = h.target_started + h.target_seconds
    met = h.target_met_present
    in_time = met & (h.target_met <= due)
    late = met & ~in_time
    unmet_due = ~met & (due <= h.end)
    active = ~met & ~unmet_due
    status = np.where(in_time, "achieved", np.where(active, "active", "breached")).tolist()
    elapsed = np.where(in_time, h.target_met - h.target_started, 0).astype(np.float64).tolist()
    running = active | late | unmet_due
    settled_at = np.where(met, h.target_met, np.where(unmet_due, due, h.target_started))
    policy = [SLA_POLICY_NAMES[p] for p in h.priority_index[h.target_ticket].tolist()]
    writer.write(
        "sla_targets",
        {
            "ticket_id": (first_id + h.target_ticket).tolist(),
            "metric": h.target_metric,
            "cycle": h.target_cycle.tolist(),
            "policy_name": policy,
            "business_hours": [False] * targets,
            "pause_on_hold": [False] * targets,
            "target_seconds": h.target_seconds.tolist(),
            "status": status,
            "kind": ["policy"] * targets,
            "started_at": writer.instants(h.target_started),
            "running_since": writer.instants(h.target_started, running),
            "elapsed_seconds": elapsed,
            "due_at": writer.instants(due),
            "achieved_at": writer.instants(h.target_met, met),
            "breached_at": writer.instants(due, late | unmet_due),
            "updated_at": writer.instants(settled_at),
        },
    )
