"""The pure parts of seeding: arrival patterns and deterministic conversations."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from opsdesk.demo.arrivals import arrival_times, plan_bursts
from opsdesk.demo.bulk import InstantFormat, epoch_of
from opsdesk.demo.conversations import Agent, Requester, Rows, TicketPlayer

START = epoch_of(datetime(2026, 3, 2, tzinfo=UTC))  # a Monday
DAYS = 28


def test_arrivals_follow_hours_weekdays_and_bursts() -> None:
    generator = random.Random(3)
    bursts = plan_bursts(generator, START, DAYS)
    times = arrival_times(generator, START, DAYS, 20_000, bursts)
    assert len(times) == 20_000
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + DAYS * 86_400
    by_weekday = Counter((moment - START) // 86_400 % 7 for moment in times)
    assert by_weekday[0] > 2 * by_weekday[6]  # Monday vs Sunday
    by_hour = Counter(moment % 86_400 // 3_600 for moment in times)
    assert by_hour[15] > 3 * by_hour[3]
    burst = bursts[0]
    in_burst = sum(1 for moment in times if burst.start <= moment < burst.end)
    # The same hours one week earlier or later (same weekday and time of day) are far quieter.
    week = 7 * 86_400 if burst.start - START < 7 * 86_400 else -7 * 86_400
    usual = sum(1 for moment in times if burst.start + week <= moment < burst.end + week)
    assert in_burst > 2 * usual


def _play(seed: int) -> Rows:
    generator = random.Random(seed)
    agents = [Agent(1, "Priya Patel", "Priya"), Agent(2, "Lucas Moreau", "Lucas")]
    player = TicketPlayer(
        generator,
        now=START + DAYS * 86_400,
        instant=InstantFormat("sqlite"),
        groups={
            name: index
            for index, name in enumerate(
                ("Frontline", "Technical Support", "Billing", "Enterprise", "Renewals"), start=1
            )
        },
        members=dict.fromkeys(
            ("Frontline", "Technical Support", "Billing", "Enterprise", "Renewals"), agents
        ),
        system_name="opsdesk",
        waiting_status_id=9,
        bursts=[],
    )
    rows = Rows()
    requester = Requester(5, "Ana Silva", "Ana", 3, "business", "en")
    message_id = 1
    for number, created in enumerate(range(START, START + DAYS * 86_400, 86_400 // 4), start=1):
        message_id = player.play(number, message_id, created, requester, rows)
    return rows


def test_same_seed_same_tickets() -> None:
    first, again, other = _play(11), _play(11), _play(12)
    assert first.tickets == again.tickets
    assert first.messages == again.messages
    assert first.tickets != other.tickets


def test_texts_are_addressed_to_the_people() -> None:
    rows = _play(5)
    staff_bodies = [row[6] for row in rows.messages if row[2] == "staff" and row[5]]
    customer_first = [row[6] for row in rows.messages if row[2] == "customer"]
    assert staff_bodies
    assert all(str(body).startswith("Hi Ana,") for body in staff_bodies)
    assert customer_first
    assert all(str(body).endswith("\nAna") for body in customer_first)
    assert all("{" not in str(row[1]) for row in rows.tickets)  # every slot was filled


def test_instant_format_matches_each_database() -> None:
    moment = epoch_of(datetime(2026, 3, 2, 7, 5, 9, tzinfo=UTC))
    assert InstantFormat("sqlite")(moment) == "2026-03-02 07:05:09.000000"
    assert InstantFormat("postgresql")(moment) == "2026-03-02 07:05:09+00"
