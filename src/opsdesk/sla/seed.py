"""Default business calendars and SLA policies, created by ``opsdesk seed`` / ``opsdesk demo``
(the seeder discovers this module). Idempotent: existing calendars and policies are kept.

Urgent and high tickets get a first-reply target (and more); open tickets the seeder wrote in
bulk get their clocks started from their creation time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.sla.calendars import save_calendar
from opsdesk.sla.clocks import backfill_open_tickets
from opsdesk.sla.models import BusinessCalendarRow, SlaPolicy
from opsdesk.sla.policies import save_policy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
SEED_ACTOR = Actor.system("seed", via="seed")


def _minutes(minutes: int, business: bool = True) -> dict[str, Any]:
    return {"minutes": minutes, "business_hours": business}


DEFAULT_POLICIES: list[dict[str, Any]] = [
    {
        "name": "Urgent",
        "conditions": {"priority": ["urgent"]},
        "targets": {
            "first_reply": _minutes(30, business=False),
            "next_reply": _minutes(60, business=False),
            "periodic_update": _minutes(120, business=False),
            "resolution": _minutes(4 * 60),
        },
        "pause_on_hold": False,
    },
    {
        "name": "High",
        "conditions": {"priority": ["high"]},
        "targets": {
            "first_reply": _minutes(2 * 60),
            "next_reply": _minutes(4 * 60),
            "resolution": _minutes(24 * 60),
        },
        "pause_on_hold": True,
    },
    {
        "name": "Enterprise",
        "conditions": {"tier": ["enterprise"]},
        "targets": {
            "first_reply": _minutes(4 * 60),
            "next_reply": _minutes(8 * 60),
            "resolution": _minutes(3 * 600),
        },
        "pause_on_hold": True,
    },
    {
        "name": "Standard",
        "conditions": {},
        "targets": {"first_reply": _minutes(8 * 60), "resolution": _minutes(5 * 600)},
        "pause_on_hold": True,
    },
]


def seed(session: Session, context: object) -> None:
    del context  # the defaults do not depend on the seeded company
    seed_defaults(session)
    backfill_open_tickets(session)


def seed_defaults(session: Session) -> None:
    existing = set(session.scalars(select(BusinessCalendarRow.name)))
    if "Support hours" not in existing:
        save_calendar(
            session,
            SEED_ACTOR,
            name="Support hours",
            time_zone="America/New_York",
            hours={day: [["08:00", "18:00"]] for day in WEEKDAYS},
            holiday_country="US",
            is_default=True,
        )
    if "Around the clock" not in existing:
        save_calendar(
            session,
            SEED_ACTOR,
            name="Around the clock",
            time_zone="UTC",
            hours={day: [["00:00", "00:00"]] for day in (*WEEKDAYS, "sat", "sun")},
        )
    support_hours = session.scalars(
        select(BusinessCalendarRow).where(BusinessCalendarRow.name == "Support hours")
    ).one()
    present = set(session.scalars(select(SlaPolicy.name)))
    for position, spec in enumerate(DEFAULT_POLICIES, start=1):
        if spec["name"] in present:
            continue
        save_policy(session, SEED_ACTOR, calendar_id=support_hours.id, position=position * 10, **spec)
