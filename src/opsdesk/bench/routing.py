"""``opsdesk bench routing``: 200 agents in 10 groups with mixed skills, languages, seniority and
capacities; 100,000 tickets; the real assignment service on a fresh SQLite database.

Tickets are assigned in rounds through :func:`assign_backlog` (the same policy as a new ticket's
assignment); between rounds, untimed, agents solve part of their open tickets so capacity frees
up, as a working day does. Prints assignments per second (timed service calls only, wall clock and
CPU time of this process, since the wall clock counts other processes' load too), how evenly
load spread (the busiest agent's ticket count over the mean, raw and per unit of capacity), and
the single-ticket path's rate (:func:`assign_in_group`, as on ticket creation) on a sample.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("routing")
    def bench_routing(
        agents: Annotated[int, typer.Option(help="Agents in all.")] = 200,
        groups: Annotated[int, typer.Option(help="Groups.")] = 10,
        tickets: Annotated[int, typer.Option(help="Tickets to assign.")] = 100_000,
        single_sample: Annotated[
            int, typer.Option(help="Tickets sent through the single-ticket path.")
        ] = 2_000,
    ) -> None:
        """Assign tickets across groups; print throughput and load evenness."""
        with tempfile.TemporaryDirectory(prefix="opsdesk-bench-routing-") as directory:
            typer.echo(json.dumps(_run(Path(directory), agents, groups, tickets, single_sample)))


def _run(
    directory: Path, agent_count: int, group_count: int, ticket_count: int, single_sample: int
) -> dict[str, object]:
    from sqlalchemy import func, insert, select, update

    from opsdesk import migrate
    from opsdesk.auth.actor import Actor
    from opsdesk.auth.models import Group, GroupMembership, User
    from opsdesk.db import Database
    from opsdesk.tickets.models import Account, Person, Ticket
    from opsdesk.triage.models import GroupAssignment
    from opsdesk.triage.service.assignment import assign_backlog, assign_in_group

    generator = random.Random(20261121)
    url = f"sqlite:///{directory / 'bench.db'}"
    migrate.upgrade(url)
    database = Database(url)
    actor = Actor.system("bench", via="bench")
    languages = ["en", "en", "en", "de", "fr", "es"]
    skills_pool = ["billing_certified", "api", "sso", "mobile"]
    with database.transaction() as session:
        session.execute(
            insert(Group), [{"name": f"Group {g}", "description": ""} for g in range(group_count)]
        )
        group_ids = list(session.scalars(select(Group.id).order_by(Group.id)))
        user_rows = []
        for index in range(agent_count):
            skills = [skill for skill in skills_pool if generator.random() < 0.5]
            if index % group_count < group_count // 2:
                skills.append("billing_certified")  # the groups that require it are staffed with it
            user_rows.append(
                {
                    "email": f"agent{index}@bench.example",
                    "name": f"Agent {index}",
                    "role": "agent",
                    "time_zone": "UTC",
                    "languages": sorted({"en", generator.choice(languages)}),
                    "skills": sorted(set(skills)),
                    "capacity": generator.choice([10, 15, 20, 30, 40]),
                    "availability": "online" if generator.random() < 0.9 else "away",
                    "seniority": generator.choice([1, 1, 2, 3]),
                    "is_active": True,
                }
            )
        session.execute(insert(User), user_rows)
        user_ids = list(session.scalars(select(User.id).order_by(User.id)))
        session.execute(
            insert(GroupMembership),
            [
                {"group_id": group_ids[index % group_count], "user_id": user_id}
                for index, user_id in enumerate(user_ids)
            ],
        )
        session.execute(
            insert(GroupAssignment),
            [
                {
                    "group_id": group_id,
                    "mode": "least_loaded" if position % 2 == 0 else "round_robin",
                    "senior_level": 2,
                    "required_skills": ["billing_certified"] if position < group_count // 2 else [],
                }
                for position, group_id in enumerate(group_ids)
            ],
        )
        session.execute(
            insert(Account),
            [
                {
                    "name": f"Account {index}",
                    "tier": generator.choice(["enterprise", "business", "self_serve", "self_serve"]),
                    "is_hot": generator.random() < 0.1,
                }
                for index in range(500)
            ],
        )
        account_ids = list(session.scalars(select(Account.id)))
        session.execute(insert(Person), [{"name": f"Customer {index}"} for index in range(1000)])
        person_ids = list(session.scalars(select(Person.id)))
        batch = []
        for index in range(ticket_count):
            batch.append(
                {
                    "subject": f"Ticket {index}",
                    "status": "new",
                    "requester_id": generator.choice(person_ids),
                    "account_id": generator.choice(account_ids),
                    "group_id": generator.choice(group_ids),
                    "language": generator.choice(languages),
                    "reply_token": f"{index:032x}",
                }
            )
            if len(batch) == 10_000:
                session.execute(insert(Ticket), batch)
                batch = []
        if batch:
            session.execute(insert(Ticket), batch)

    # the single-ticket path, as on ticket creation, on a sample of the queue
    single_seconds = 0.0
    single_done = 0
    with database.transaction() as session:
        sample = list(
            session.scalars(
                select(Ticket).where(Ticket.assignee_id.is_(None)).order_by(Ticket.id).limit(single_sample)
            )
        )
        started = time.perf_counter()
        for ticket in sample:
            if assign_in_group(session, ticket).user_id is not None:
                single_done += 1
        single_seconds = time.perf_counter() - started

    timed = 0.0
    timed_cpu = 0.0
    assigned = single_done
    rounds = 0
    while True:
        rounds += 1
        progress = 0
        with database.transaction() as session:
            started = time.perf_counter()
            started_cpu = time.process_time()
            for group_id in group_ids:
                progress += assign_backlog(session, actor, group_id, limit=2_000)
            timed += time.perf_counter() - started
            timed_cpu += time.process_time() - started_cpu
        assigned += progress
        if progress == 0 or assigned >= ticket_count:
            break
        with database.transaction() as session:  # untimed: agents work through half their queue
            session.execute(
                update(Ticket)
                .where(Ticket.assignee_id.is_not(None), Ticket.status == "new", func.random() % 2 == 0)
                .values(status="solved")
            )
    with database.transaction(write=False) as session:
        per_agent = dict(
            session.execute(
                select(Ticket.assignee_id, func.count())
                .where(Ticket.assignee_id.is_not(None))
                .group_by(Ticket.assignee_id)
            ).all()
        )
        capacities = {
            int(user_id): int(capacity)
            for user_id, capacity in session.execute(select(User.id, User.capacity))
        }
        online = int(
            session.scalar(select(func.count()).select_from(User).where(User.availability == "online")) or 0
        )
        unassigned = int(
            session.scalar(select(func.count()).select_from(Ticket).where(Ticket.assignee_id.is_(None))) or 0
        )
    database.dispose()
    counts = [int(count) for count in per_agent.values()]
    mean = sum(counts) / len(counts)
    per_capacity = [int(count) / capacities[int(user_id or 0)] for user_id, count in per_agent.items()]
    mean_per_capacity = sum(per_capacity) / len(per_capacity)
    batch_assigned = assigned - single_done
    return {
        "agents": agent_count,
        "agents_online": online,
        "groups": group_count,
        "tickets": ticket_count,
        "assigned": assigned,
        "unassigned": unassigned,
        "rounds": rounds,
        "assignments_per_second": round(batch_assigned / timed, 1) if timed else 0.0,
        # the same on CPU time of this process: what the machine's other load does not inflate
        "assignments_per_cpu_second": round(batch_assigned / timed_cpu, 1) if timed_cpu else 0.0,
        "single_path_assignments_per_second": round(single_done / single_seconds, 1)
        if single_seconds
        else 0.0,
        "agents_with_tickets": len(counts),
        "busiest_share_vs_mean": round(max(counts) / mean, 3),
        "busiest_share_vs_mean_per_capacity": round(max(per_capacity) / mean_per_capacity, 3),
    }
