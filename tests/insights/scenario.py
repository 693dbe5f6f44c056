"""A small, exactly known helpdesk week built through the ticket services, for metric tests.

Week of Monday 2026-11-02 (ISO 2026-W45), all tickets created at 09:00 UTC:
- t1 email, group A, agent (in-house): reply +1h, solved +2h; FCR; rated 5.
- t2 chat,  group B, contractor (vendor Acme BPO): reply +30m, customer writes at +3h, reply +4h
  (next reply 1h), solved +5h; rated 2.
- t3 email, group A: solved +10m with no reply (solved without reply).
- t4 web,   group A, agent: reply +2h, solved +3h, customer reopens +4h, reply +4h30, solved +6h.
- t5 email, group B: still new (backlog).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group, User
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Account, Ticket
from tests.support.factories import make_account, make_group, make_ticket, make_user, staff_actor

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class Scenario:
    group_a: Group
    group_b: Group
    agent: User
    contractor: User
    account: Account
    t1: Ticket
    t2: Ticket
    t3: Ticket
    t4: Ticket
    t5: Ticket


def build(db: Session, *, day: datetime = MONDAY) -> Scenario:
    group_a, group_b = make_group(db), make_group(db)
    agent = make_user(db, role="agent", groups=[group_a, group_b])
    contractor = make_user(db, role="contractor", groups=[group_b])
    contractor.vendor = "Acme BPO"
    account = make_account(db, domain=f"acme{day.day}{day.month}.test", tier="enterprise")
    account.plan_name = "Scale"
    staff, outsourced = staff_actor(agent), staff_actor(contractor)
    email = f"jane@acme{day.day}{day.month}.test"
    with clock.frozen(day) as frozen:
        t1 = make_ticket(
            db, channel="email", group_id=group_a.id, assignee_id=agent.id, requester_email=email
        )
        t2 = make_ticket(
            db, channel="chat", group_id=group_b.id, assignee_id=contractor.id, category="billing"
        )
        t3 = make_ticket(db, channel="email", group_id=group_a.id, category="billing")
        t4 = make_ticket(db, channel="web", group_id=group_a.id, assignee_id=agent.id, category="login")
        t5 = make_ticket(db, channel="email", group_id=group_b.id, category="login")

        frozen.set(day + timedelta(minutes=10))
        tickets.update_ticket(db, staff, t3, {"status": "solved"})
        frozen.set(day + HOUR / 2)
        tickets.add_message(db, outsourced, t2, body_text="Looking into it.")
        frozen.set(day + HOUR)
        tickets.add_message(db, staff, t1, body_text="Done.")
        frozen.set(day + 2 * HOUR)
        tickets.update_ticket(db, staff, t1, {"status": "solved"})
        tickets.add_message(db, staff, t4, body_text="Reset it.")
        frozen.set(day + 3 * HOUR)
        tickets.add_message(db, _customer(t2), t2, body_text="Still broken", author_person=t2.requester)
        tickets.update_ticket(db, staff, t4, {"status": "solved"})
        frozen.set(day + 4 * HOUR)
        tickets.add_message(db, outsourced, t2, body_text="Fixed now.")
        tickets.add_message(db, _customer(t4), t4, body_text="Not fixed", author_person=t4.requester)
        frozen.set(day + 4 * HOUR + HOUR / 2)
        tickets.add_message(db, staff, t4, body_text="Try again.")
        frozen.set(day + 5 * HOUR)
        tickets.update_ticket(db, outsourced, t2, {"status": "solved"})
        frozen.set(day + 6 * HOUR)
        tickets.update_ticket(db, staff, t4, {"status": "solved"})
        frozen.set(day + 7 * HOUR)
        for ticket, score in ((t1, 5), (t2, 2)):
            # No rating service exists yet (the survey lives with channels); set the columns.
            ticket.satisfaction_score = score
            ticket.satisfaction_at = clock.now()
        t1.handle_seconds, t2.handle_seconds, t4.handle_seconds = 600, 1200, 1800
    db.flush()
    for ticket in (t1, t2, t3, t4, t5):
        db.refresh(ticket)
    return Scenario(group_a, group_b, agent, contractor, account, t1, t2, t3, t4, t5)


def _customer(ticket: Ticket) -> Actor:
    return Actor.customer(ticket.requester.name, ticket.requester_id, via="email")
