"""A fast synthetic helpdesk history for benchmarks: N tickets over a year with their messages
and status trail, written in bulk (COPY on PostgreSQL, executemany on SQLite).

It bypasses the ticket service on purpose: building a million tickets through services would
take hours. The rows obey the same invariants the services keep (first_reply_at is the first
public staff message, staff_public_reply_count counts them, solved tickets have solved_at and
first_solved_at, the trail has the status changes), so metrics read them like real history.
Arrivals follow an hour-of-week pattern; durations are log-normal. Deterministic per seed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select

from opsdesk.auth.models import AuditEvent, Group, GroupMembership, User
from opsdesk.tickets.models import Account, Message, Person, PersonEmail, Ticket

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
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class LoadedHistory:
    tickets: int
    messages: int
    events: int
    start: datetime
    end: datetime


def _hour_of_week_weights() -> np.ndarray:
    hours = np.arange(168)
    day, hour = hours // 24, hours % 24
    weights = np.where((hour >= 8) & (hour < 18), 4.0, 1.0) * np.where(day < 5, 1.0, 0.35)
    normalised: np.ndarray = weights / weights.sum()
    return normalised


class _Writer:
    """Rows to a table: COPY on PostgreSQL, chunked executemany on SQLite."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"

    def write(self, table: Any, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
        if self.postgres:
            raw = self.connection.connection.driver_connection
            assert raw is not None
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        # The driver's executemany with SQLite's own text forms: several times faster than
        # binding dicts through SQLAlchemy, and the stored values are the same.
        raw = self.connection.connection.driver_connection
        assert raw is not None
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(tuple(_sqlite_value(value) for value in row))
            if len(batch) >= CHUNK:
                raw.executemany(sql, batch)
                batch = []
        if batch:
            raw.executemany(sql, batch)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def load(
    connection: Connection, tickets: int, *, end: datetime, days: int = 365, seed: int = 7
) -> LoadedHistory:
    """Write ``tickets`` tickets created over the ``days`` days before ``end``."""
    rng = np.random.default_rng(seed)
    writer = _Writer(connection)
    start = end - timedelta(days=days)
    first_id = (connection.scalar(select(func.max(Ticket.id))) or 0) + 1

    # --- staff, groups, accounts, people
    group_names = [f"Bench {name}" for name in ("Tier 1", "Tier 2", "Billing", "Technical", "VIP", "Nights")]
    group_ids = [
        connection.execute(
            insert(Group).values(name=f"{name} {seed}-{first_id}", description="")
        ).inserted_primary_key[0]  # type: ignore[index]
        for name in group_names
    ]
    user_ids: list[int] = []
    vendors: list[str | None] = []
    for number in range(60):
        vendor = None if number < 40 else ("Acme BPO" if number < 52 else "Globex Support")
        role = "agent" if vendor is None else "contractor"
        user_id = connection.execute(
            insert(User).values(
                email=f"bench{seed}-{first_id}-{number}@staff.example.com",
                name=f"Bench Agent {number}",
                role=role,
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
        ).inserted_primary_key[0]  # type: ignore[index]
        user_ids.append(user_id)
        vendors.append(vendor)
        connection.execute(
            insert(GroupMembership).values(group_id=group_ids[number % len(group_ids)], user_id=user_id)
        )
    account_count = max(10, tickets // 500)
    first_account = (connection.scalar(select(func.max(Account.id))) or 0) + 1
    writer.write(
        Account.__table__,
        (
            "id",
            "name",
            "tier",
            "plan_name",
            "mrr_amount_minor",
            "currency",
            "is_hot",
            "notes",
            "created_at",
            "updated_at",
        ),
        (
            (
                first_account + n,
                f"Customer {first_account + n}",
                TIERS[n % 4],
                PLANS[n % 4],
                10_000 * (1 + n % 50),
                "USD",
                False,
                "",
                start,
                start,
            )
            for n in range(account_count)
        ),
    )
    people_count = max(20, tickets // 20)
    first_person = (connection.scalar(select(func.max(Person.id))) or 0) + 1
    person_accounts = rng.integers(0, account_count, people_count) + first_account
    writer.write(
        Person.__table__,
        ("id", "name", "language", "primary_account_id", "created_at", "updated_at"),
        (
            (
                first_person + n,
                f"Customer Person {n}",
                LANGUAGES[n % 4],
                int(person_accounts[n]),
                start,
                start,
            )
            for n in range(people_count)
        ),
    )
    writer.write(
        PersonEmail.__table__,
        ("person_id", "email", "is_primary"),
        (
            (first_person + n, f"p{first_person + n}-{seed}@customers.example.org", True)
            for n in range(people_count)
        ),
    )

    # --- tickets, vectorised
    weights = _hour_of_week_weights()
    weeks = days / 7
    hour_slots = rng.choice(168, size=tickets, p=weights)
    week_index = rng.integers(0, int(np.ceil(weeks)), tickets)
    monday = start - timedelta(
        days=start.weekday(),
        hours=start.hour,
        minutes=start.minute,
        seconds=start.second,
        microseconds=start.microsecond,
    )
    base = np.datetime64(monday.replace(tzinfo=None), "us")
    offsets = (week_index * 168 + hour_slots) * 3600 + rng.integers(0, 3600, tickets)
    created = base + offsets.astype("timedelta64[s]")
    created = created[
        (created >= np.datetime64(start.replace(tzinfo=None)))
        & (created < np.datetime64(end.replace(tzinfo=None)))
    ]
    while created.size < tickets:  # top up what fell outside the window
        extra = np.datetime64(start.replace(tzinfo=None), "us") + rng.integers(
            0, days * 86400, tickets - created.size
        ).astype("timedelta64[s]")
        created = np.concatenate([created, extra])
    created = np.sort(created[:tickets])
    count = tickets
    age_seconds = (
        (np.datetime64(end.replace(tzinfo=None), "us") - created).astype("timedelta64[s]").astype(np.int64)
    )
    first_reply_delay = np.minimum(rng.lognormal(8.0, 1.2, count), 20 * 86400).astype(np.int64)
    replies = rng.choice([0, 1, 1, 1, 2, 2, 3, 4], size=count)
    resolution = first_reply_delay + rng.lognormal(9.5, 1.3, count).astype(np.int64)
    solved = (resolution < age_seconds) & (rng.random(count) < 0.97)
    replied = (replies > 0) & (first_reply_delay < age_seconds)
    reopened = solved & (rng.random(count) < 0.06)
    rated = solved & (rng.random(count) < 0.25)
    scores = rng.choice([1, 2, 3, 4, 5], size=count, p=[0.05, 0.05, 0.1, 0.3, 0.5])
    handle = rng.lognormal(6.5, 0.8, count).astype(np.int64)
    category_names = list(CATEGORIES)
    category_index = rng.integers(0, len(category_names), count)
    subject_index = rng.integers(0, 4, count)
    channel_index = rng.choice(len(CHANNELS), size=count, p=CHANNEL_WEIGHTS)
    priority_index = rng.choice(4, size=count, p=PRIORITY_WEIGHTS)
    group_index = rng.integers(0, len(group_ids), count)
    assignee_index = rng.integers(0, len(user_ids), count)
    requester_index = rng.integers(0, people_count, count)
    unassigned = (~solved) & (rng.random(count) < 0.3)
    closed = solved & (age_seconds - resolution > 4 * 86400)
    pending = (~solved) & replied & (rng.random(count) < 0.3)

    def at(index: int, delay: int) -> datetime:
        return datetime.fromtimestamp(
            int(created[index].astype("datetime64[s]").astype(np.int64)) + int(delay), tz=UTC
        )

    ticket_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    written_messages = written_events = 0
    event_rows: list[tuple[Any, ...]] = []
    for index in range(count):
        ticket_id = first_id + index
        created_at = at(index, 0)
        reply_count = int(replies[index]) if replied[index] else 0
        first_reply_at = at(index, int(first_reply_delay[index])) if reply_count else None
        is_solved = bool(solved[index])
        solved_at = at(index, int(resolution[index])) if is_solved else None
        first_solved_at = (
            at(index, int(resolution[index] * 0.7)) if is_solved and reopened[index] else solved_at
        )
        status = (
            "closed"
            if closed[index]
            else "solved"
            if is_solved
            else "pending"
            if pending[index]
            else "open"
            if reply_count
            else "new"
        )
        last_reply_at = first_reply_at
        category = category_names[int(category_index[index])]
        subject = f"{CATEGORIES[category][int(subject_index[index])]} #{ticket_id % 97}"
        person_id = first_person + int(requester_index[index])
        message_rows.append(
            (
                ticket_id,
                "customer",
                None,
                person_id,
                True,
                subject + ". Please help, this blocks our team.",
                CHANNELS[int(channel_index[index])],
                created_at,
            )
        )
        assignee = None if unassigned[index] else user_ids[int(assignee_index[index])]
        event_rows.append(
            (
                ticket_id,
                "ticket",
                ticket_id,
                "created",
                None,
                None,
                None,
                "system",
                None,
                "bench",
                "bench",
                created_at,
            )
        )
        if reply_count and first_reply_at is not None:
            span = ((solved_at or at(index, int(age_seconds[index]))) - first_reply_at).total_seconds()
            for number in range(reply_count):
                reply_at = first_reply_at + timedelta(seconds=span * number / (reply_count + 1))
                message_rows.append(
                    (ticket_id, "staff", assignee, None, True, "Thanks, we are on it.", "web", reply_at)
                )
                last_reply_at = reply_at
            event_rows.append(
                (
                    ticket_id,
                    "ticket",
                    ticket_id,
                    "updated",
                    "status",
                    '"new"',
                    '"open"',
                    "user",
                    assignee,
                    "Bench Agent",
                    "web",
                    first_reply_at,
                )
            )
        if is_solved and solved_at is not None:
            event_rows.append(
                (
                    ticket_id,
                    "ticket",
                    ticket_id,
                    "updated",
                    "status",
                    '"open"',
                    '"solved"',
                    "user",
                    assignee,
                    "Bench Agent",
                    "web",
                    solved_at,
                )
            )
        ticket_rows.append(
            (
                ticket_id,
                subject,
                status,
                PRIORITIES[int(priority_index[index])],
                "question",
                category,
                CHANNELS[int(channel_index[index])],
                LANGUAGES[int(requester_index[index]) % 4],
                person_id,
                int(person_accounts[int(requester_index[index])]),
                assignee,
                group_ids[int(group_index[index])],
                "{}",
                secrets.token_hex(8),
                created_at,
                solved_at or last_reply_at or created_at,
                first_reply_at,
                first_solved_at,
                solved_at,
                solved_at + timedelta(days=4) if closed[index] and solved_at else None,
                created_at,
                last_reply_at,
                solved_at or last_reply_at or created_at,
                int(reopened[index]),
                reply_count,
                1,
                int(handle[index]) if reply_count else 0,
                int(scores[index]) if rated[index] else None,
                (solved_at + timedelta(hours=2)) if rated[index] and solved_at else None,
            )
        )
        if len(ticket_rows) >= CHUNK or index == count - 1:
            _flush(writer, ticket_rows, message_rows, event_rows)
            written_messages += len(message_rows)
            written_events += len(event_rows)
            ticket_rows, message_rows, event_rows = [], [], []
    return LoadedHistory(count, written_messages, written_events, start, end)


TICKET_COLUMNS = (
    "id",
    "subject",
    "status",
    "priority",
    "type",
    "category",
    "channel",
    "language",
    "requester_id",
    "account_id",
    "assignee_id",
    "group_id",
    "custom_fields",
    "reply_token",
    "created_at",
    "updated_at",
    "first_reply_at",
    "first_solved_at",
    "solved_at",
    "closed_at",
    "last_customer_message_at",
    "last_staff_reply_at",
    "status_changed_at",
    "reopened_count",
    "staff_public_reply_count",
    "customer_message_count",
    "handle_seconds",
    "satisfaction_score",
    "satisfaction_at",
)
MESSAGE_COLUMNS = (
    "ticket_id",
    "author_kind",
    "author_user_id",
    "author_person_id",
    "is_public",
    "body_text",
    "channel",
    "created_at",
)
EVENT_COLUMNS = (
    "ticket_id",
    "entity_type",
    "entity_id",
    "action",
    "field",
    "old_value",
    "new_value",
    "actor_kind",
    "actor_id",
    "actor_name",
    "via",
    "created_at",
)


def _flush(
    writer: _Writer,
    ticket_rows: list[tuple[Any, ...]],
    message_rows: list[tuple[Any, ...]],
    event_rows: list[tuple[Any, ...]],
) -> None:
    writer.write(Ticket.__table__, TICKET_COLUMNS, ticket_rows)
    writer.write(Message.__table__, MESSAGE_COLUMNS, message_rows)
    writer.write(AuditEvent.__table__, EVENT_COLUMNS, event_rows)
