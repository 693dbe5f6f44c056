"""Seeding a whole demo company into an empty database, fast.

:func:`seed_company` writes staff and groups through the services, then accounts and people in
bulk (executemany on SQLite, COPY on PostgreSQL; no per-row ORM), then the tickets: cast to
conversation shapes (:mod:`opsdesk.demo.casting`) and expanded by the database itself, with the
audit rows ticket creation and every later message would have written and the keyword index
(:mod:`opsdesk.demo.expansion`; docs/adr/0006). Last it calls every domain's
``opsdesk.<domain>.seed.seed(session, context)`` so SLA policies, plans or taxonomy join the same
company. It runs in the caller's transaction and is all or nothing (PostgreSQL's second connection
commits and rolls back with it, see :mod:`opsdesk.demo.side_load`). On PostgreSQL the secondary
indexes of the bulk-loaded tables are dropped during the load and rebuilt after it, inside that
transaction; SQLite keeps them up to date as the rows arrive.
Deterministic for a given ``SeedOptions.seed`` and "now".
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.demo import expansion
from opsdesk.demo.arrivals import arrival_times, plan_bursts
from opsdesk.demo.bulk import BULK_LOAD_KEY, SIDE_LOADS_KEY, BulkWriter, epoch_of
from opsdesk.demo.casting import cast_tickets, play_solo
from opsdesk.demo.company import (
    ACCOUNT_COLUMNS,
    COMPANY_TABLES,
    PERSON_COLUMNS,
    plan_accounts_and_people,
    seed_definitions,
    seed_staff,
)
from opsdesk.demo.context import SeedContext, SeedOptions
from opsdesk.demo.conversations import (
    AUDIT_COLUMNS,
    CATEGORY_GROUP,
    MESSAGE_COLUMNS,
    TAG_COLUMNS,
    TICKET_COLUMNS,
    Agent,
    Requester,
    Rows,
    TicketPlayer,
)
from opsdesk.demo.producer import (
    STORE_PARTS,
    ChildStore,
    StoreWriter,
    can_fork,
    solo_audit,
)
from opsdesk.demo.side_load import AuditSideLoad
from opsdesk.domains import domain_modules
from opsdesk.errors import ConflictError, FieldProblem, ValidationFailedError
from opsdesk.tickets.models import Account, Ticket
from opsdesk.tickets.service import search

SEED_ACTOR_NAME = "Demo seed"
# From this many tickets the load uses both cores: on SQLite a child process writes the messages
# and the tickets into files of their own while this one writes the audit trail, the tags and the
# keyword index; on PostgreSQL a second connection writes the audit trail.
PARALLEL_FROM = 20_000
TICKET_TABLES = ("tickets", "ticket_tags", "messages", "audit_events")
STORED = tuple(table for part in STORE_PARTS for table in part)
SEARCH_TABLE = "ticket_search"
LOADED_TABLES = (*COMPANY_TABLES, *TICKET_TABLES)
MAX_TICKETS = 10_000_000
MAX_DAYS = 3_650


def validate_options(options: SeedOptions) -> None:
    problems: list[FieldProblem] = []
    if not 0 <= options.tickets <= MAX_TICKETS:
        problems.append(FieldProblem(("tickets",), f"must be between 0 and {MAX_TICKETS}"))
    if not 1 <= options.days <= MAX_DAYS:
        problems.append(FieldProblem(("days",), f"must be between 1 and {MAX_DAYS}"))
    if problems:
        raise ValidationFailedError("the seed options are not valid", fields=problems)


def _child_store(writer: BulkWriter, stack: contextlib.ExitStack) -> ChildStore | None:
    """SQLite inside :func:`opsdesk.demo.bulk.load_transaction`, on a file: scratch files beside
    the database (same file system, which has room for the data) for the child to write the
    messages and the tickets into; removed when the seed ends."""
    if writer.dialect != "sqlite" or not writer.session.info.get(BULK_LOAD_KEY):
        return None
    directory = writer.database_directory()
    if directory is None:
        return None
    scratch = tempfile.mkdtemp(prefix=".opsdesk-seed-", dir=directory)
    stack.callback(shutil.rmtree, scratch, ignore_errors=True)
    return writer.store_for(
        STORED, [str(Path(scratch) / f"part{number}.db") for number in range(len(STORE_PARTS))]
    )


def people_for(tickets: int) -> int:
    """How many customer contacts a company with this many tickets has (most write rarely)."""
    return max(60, min(250_000, tickets // 4))


def seed_company(
    session: Session,
    options: SeedOptions,
    *,
    progress: Callable[[int], None] | None = None,
) -> SeedContext:
    """Seed staff, accounts, people and ``options.tickets`` tickets over ``options.days`` days
    ending now, then every domain's demo data. Refuses a database that already has customers."""
    validate_options(options)
    started = time.perf_counter()
    if session.scalar(select(func.count()).select_from(Account)) or session.scalar(
        select(func.count()).select_from(Ticket)
    ):
        raise ConflictError("the database already has accounts or tickets; seed an empty database")
    generator = random.Random(options.seed)
    end = clock.now().replace(microsecond=0)
    writer = BulkWriter(session)
    actor = Actor.system(SEED_ACTOR_NAME, via="seed")
    context = SeedContext(
        options=options,
        random=generator,
        dialect=writer.dialect,
        start=end - timedelta(days=options.days),
        end=end,
        admin_user_id=0,
        categories=tuple(sorted(set(CATEGORY_GROUP))),
    )
    staff = seed_staff(session, actor, context)
    context.admin_user_id = context.user_ids_by_role["admin"][0]
    waiting_status_id = seed_definitions(writer, context)
    company = plan_accounts_and_people(writer, context, people_for(options.tickets))
    accounts, people = company.accounts, company.people
    context.accounts = accounts
    context.person_ids = range(people[0].id, people[-1].id + 1)

    members: dict[str, list[Agent]] = {name: [] for name in context.group_ids}
    for user_id, member in staff.items():
        if member.role == "viewer":
            continue
        for group_name in member.groups:
            members[group_name].append(Agent(user_id, member.name, member.name.split(" ", 1)[0]))
    emails = {row[1]: row[2] for row in company.email_rows if row[3]}
    requesters = [
        Requester(
            person.id,
            person.name,
            person.first_name,
            accounts[person.account_index].id,
            accounts[person.account_index].tier,
            person.language,
            str(emails[person.id]),
        )
        for person in people
    ]

    start_epoch, end_epoch = epoch_of(context.start), epoch_of(end)
    bursts = plan_bursts(generator, start_epoch, options.days)
    player = TicketPlayer(
        generator,
        now=end_epoch,
        instant=writer.instant,
        groups=context.group_ids,
        members=members,
        system_name="opsdesk",
        waiting_status_id=waiting_status_id,
        bursts=bursts,
    )
    times = arrival_times(generator, start_epoch, options.days, options.tickets, bursts)
    first_ticket_id, first_message_id = writer.next_id("tickets"), writer.next_id("messages")
    cast = cast_tickets(generator, player, times, requesters, first_ticket_id, first_message_id)
    agents = {agent.id: agent for team in members.values() for agent in team}
    sources = expansion.source_rows(
        cast,
        [(r.id, r.name, r.first_name, r.email, r.language, r.account_id) for r in requesters],
        [(agent.id, agent.name, agent.first_name) for agent in agents.values()],
    )
    parallel = options.parallel if options.parallel is not None else options.tickets >= PARALLEL_FROM
    parallel = parallel and can_fork()
    sqlite = writer.dialect == "sqlite"
    side_loads = session.info.get(SIDE_LOADS_KEY)
    side: AuditSideLoad | None = None
    solo: Rows | None = None
    with contextlib.ExitStack() as stack:
        store = _child_store(writer, stack) if parallel else None
        child = stack.enter_context(StoreWriter(store, cast, player, sources)) if store is not None else None
        here = (
            TICKET_TABLES if child is None else tuple(table for table in TICKET_TABLES if table not in STORED)
        )
        if not sqlite and side_loads is not None and parallel:
            # PostgreSQL in load_transaction: the audit trail on a second connection meanwhile.
            solo, message_id = play_solo(cast, player)
            side = AuditSideLoad(session.connection().engine, sources, solo_audit(solo))
            side_loads.append(side)
            side.start()
            here = tuple(table for table in TICKET_TABLES if table != "audit_events")
        # The keyword index is written from the shapes' documents and the solo tickets' (on
        # PostgreSQL without its GIN index, built once after).
        with (
            writer.bulk_load_tuning(),
            search.suspended_index(session, rebuild=False),
            writer.without_foreign_keys(LOADED_TABLES),
        ):
            # PostgreSQL builds the loaded tables' indexes once after the load. SQLite keeps
            # them: rows arrive in id order, so most keys do too, and its load cache holds every
            # index; at a million tickets that beat dropping and rebuilding them (each build
            # scans and sorts the whole table) by about 4 s. (People's indexes stay everywhere:
            # they are small. A store's tables arrive with theirs: the transfer fills them.)
            with writer.without_indexes(() if sqlite else (*here, SEARCH_TABLE)):
                writer.insert("accounts", ACCOUNT_COLUMNS, company.account_rows)
                writer.insert("account_domains", ("id", "account_id", "domain"), company.domain_rows)
                writer.insert("people", PERSON_COLUMNS, company.person_rows)
                writer.insert("person_emails", ("id", "person_id", "email", "is_primary"), company.email_rows)
                writer.insert(
                    "person_accounts", ("id", "person_id", "account_id", "relation"), company.relation_rows
                )
                if child is None:
                    if solo is None:
                        solo, message_id = play_solo(cast, player)
                    # Each table's expanded rows, then the solo tickets' (parents first: a
                    # caller's own transaction may enforce foreign keys).
                    writer.expand(sources, (*here, SEARCH_TABLE))
                    writer.insert("tickets", TICKET_COLUMNS, solo.tickets)
                    writer.insert("ticket_tags", TAG_COLUMNS, solo.tags)
                    writer.insert("messages", MESSAGE_COLUMNS, solo.messages)
                    expansion.write_documents(writer.raw_connection(), writer.dialect, solo.documents)
                    if side is None:
                        writer.insert("audit_events", AUDIT_COLUMNS, solo_audit(solo))
                else:
                    # The tags and the audit trail, and the keyword index; the child the rest.
                    writer.expand(sources, (*here, SEARCH_TABLE))
                    solo, message_id = child.solo_rows()
                    writer.insert("ticket_tags", TAG_COLUMNS, solo.tags)
                    writer.insert("audit_events", AUDIT_COLUMNS, solo_audit(solo))
                    expansion.write_documents(writer.raw_connection(), writer.dialect, solo.documents)
                if progress is not None:
                    progress(len(times))
            # This process has built its indexes while the store writer built the store's. Each
            # part is copied as soon as it is ready: the messages while the child still writes
            # the tickets.
            if child is not None and store is not None:
                for part, (path, tables) in enumerate(zip(store.paths, STORE_PARTS, strict=True)):
                    child.stored(part)
                    writer.transfer(path, tables, part=part)
        if side is not None:
            side.join()
    ticket_id = cast.next_ticket_id
    for table in (*COMPANY_TABLES, "tickets", "messages"):
        writer.move_sequence(table)
    # Planner statistics for what was just loaded (PostgreSQL would otherwise plan the first
    # queries blind until autovacuum gets to it).
    # (The side load analyzed its own table: this transaction would wait for its row locks.)
    writer.analyze(
        tuple(table for table in (*LOADED_TABLES, "ticket_search") if side is None or table != "audit_events")
    )
    context.ticket_ids = range(first_ticket_id, ticket_id)
    context.message_count = message_id - first_message_id

    session.flush()
    context.core_seconds = time.perf_counter() - started
    for module in domain_modules("seed") if options.with_domains else []:
        module_started = time.perf_counter()
        module.seed(session, context)
        session.flush()
        context.domain_seconds[module.__name__] = round(time.perf_counter() - module_started, 3)
    return context
