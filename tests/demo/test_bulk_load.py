"""The seeder's own load transaction on a fresh database: the child-process generator makes the
same data as the in-process loop, and the relaxed load settings leave nothing relaxed behind."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from opsdesk import clock, migrate
from opsdesk.db import Database
from opsdesk.demo.arrivals import arrival_times, plan_bursts
from opsdesk.demo.bulk import InstantFormat, epoch_of, load_transaction
from opsdesk.demo.context import SeedOptions
from opsdesk.demo.conversations import Agent, Requester, TicketPlayer
from opsdesk.demo.producer import TicketPlan, generate, ticket_batches
from opsdesk.demo.seeder import seed_company
from tests.support.databases import postgres_database

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
GROUPS = ("Frontline", "Technical Support", "Billing", "Enterprise", "Renewals")


def _plan(seed: int) -> TicketPlan:
    generator = random.Random(seed)
    start = epoch_of(NOW) - 20 * 86_400
    bursts = plan_bursts(generator, start, 20)
    agents = [Agent(1, "Priya Patel", "Priya"), Agent(2, "Lucas Moreau", "Lucas")]
    player = TicketPlayer(
        generator,
        now=epoch_of(NOW),
        instant=InstantFormat("postgresql"),
        groups={name: index for index, name in enumerate(GROUPS, start=1)},
        members=dict.fromkeys(GROUPS, agents),
        system_name="opsdesk",
        waiting_status_id=9,
        bursts=bursts,
    )
    requesters = [
        Requester(number, f"Person {number}", "Person", number, tier, "en")
        for number, tier in enumerate(("enterprise", "business", "self_serve", "consumer") * 5, start=1)
    ]
    times = arrival_times(generator, start, 20, 700, bursts)
    return TicketPlan(generator, player, times, requesters, 1, 1, batch_size=200)


def test_child_process_makes_the_same_batches_and_leaves_the_generator_alike() -> None:
    in_process = _plan(4)
    expected = [
        (rows.tickets, rows.messages, rows.tags, rows.audit, t, m) for rows, t, m in generate(in_process)
    ]
    forked = _plan(4)
    got = [
        (rows.tickets, rows.messages, rows.tags, rows.audit, t, m)
        for rows, t, m in ticket_batches(forked, in_child=True)
    ]
    assert len(got) == 4  # 700 tickets in batches of 200
    assert got == expected
    assert forked.generator.random() == in_process.generator.random()


@pytest.fixture(params=("sqlite", "postgresql"))
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'seeded.db'}"
        migrate.upgrade(url)
        database = Database(url)
        yield database
        database.dispose()
        return
    with postgres_database() as url:
        migrate.upgrade(url)
        database = Database(url)
        yield database
        database.dispose()


def _constraints(database: Database) -> set[str]:
    with database.transaction() as session:
        if database.is_sqlite:
            return set(session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index'")))
        return set(session.scalars(text("SELECT conname FROM pg_constraint"))) | set(
            session.scalars(text("SELECT indexname FROM pg_indexes"))
        )


def test_load_transaction_seeds_consistent_rows_and_restores_settings(fresh_database: Database) -> None:
    before = _constraints(fresh_database)
    with clock.frozen(NOW), load_transaction(fresh_database) as session:
        context = seed_company(
            session,
            SeedOptions(tickets=600, days=20, seed=3, batch_size=250, parallel=True, with_domains=False),
        )
    assert len(context.ticket_ids) == 600
    assert _constraints(fresh_database) == before  # every index and foreign key is back
    with fresh_database.engine.connect() as connection:
        if fresh_database.is_sqlite:
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            check = "INSERT INTO ticket_search(ticket_search) VALUES ('integrity-check')"
            connection.exec_driver_sql(check)
        else:
            # Validated again when they were added back, and enforced.
            assert (
                connection.exec_driver_sql(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
                ).scalar()
                == 0
            )
        counts = connection.exec_driver_sql(
            "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages), "
            "(SELECT count(*) FROM ticket_search)"
        ).one()
        assert counts == (600, context.message_count, 600)


def test_a_failing_generator_rolls_the_load_back(
    fresh_database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = TicketPlayer.play

    def play(self: TicketPlayer, ticket_id: int, *args: object) -> int:
        if ticket_id > 300:
            raise ValueError("generator broke")
        return original(self, ticket_id, *args)  # type: ignore[arg-type]  # the rest as given

    monkeypatch.setattr(TicketPlayer, "play", play)
    before = _constraints(fresh_database)
    options = SeedOptions(tickets=600, days=20, seed=3, batch_size=100, parallel=True, with_domains=False)
    with (
        pytest.raises(RuntimeError, match="generator broke"),
        clock.frozen(NOW),
        load_transaction(fresh_database) as session,
    ):
        seed_company(session, options)
    assert _constraints(fresh_database) == before
    with fresh_database.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM tickets").scalar() == 0
        assert connection.exec_driver_sql("SELECT count(*) FROM accounts").scalar() == 0
        if fresh_database.is_sqlite:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            # The child's scratch file is removed and detached after a failure too.
            assert [row[1] for row in connection.exec_driver_sql("PRAGMA database_list")] == ["main"]
            assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".opsdesk-seed-")] == []


def _rows(database: Database) -> dict[str, list[tuple[object, ...]]]:
    tables = ("tickets", "messages", "ticket_tags", "audit_events", "people", "accounts")
    with database.engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")]
            for table in tables
        }


def _search_documents(database: Database) -> list[tuple[object, ...]]:
    with database.engine.connect() as connection:
        query = "SELECT rowid, subject, body FROM ticket_search ORDER BY rowid"
        return [tuple(row) for row in connection.exec_driver_sql(query)]


def test_sqlite_child_store_makes_the_same_database_as_the_in_process_load(tmp_path: Path) -> None:
    databases: list[Database] = []
    for name, parallel in (("in_process", False), ("child_store", True)):
        url = f"sqlite:///{tmp_path / name / 'seeded.db'}"
        (tmp_path / name).mkdir()
        migrate.upgrade(url)
        database = Database(url)
        databases.append(database)
        with clock.frozen(NOW), load_transaction(database) as session:
            seed_company(
                session,
                SeedOptions(
                    tickets=500, days=20, seed=5, batch_size=120, parallel=parallel, with_domains=False
                ),
            )
        # The child's scratch file is gone and no longer attached.
        assert [
            path.name for path in (tmp_path / name).iterdir() if path.name.startswith(".opsdesk-seed")
        ] == []
        with database.engine.connect() as connection:
            attached = [row[1] for row in connection.exec_driver_sql("PRAGMA database_list")]
            assert attached == ["main"]
    in_process, child_store = databases
    expected = _rows(in_process)
    assert len(expected["tickets"]) == 500
    assert _rows(child_store) == expected
    # The keyword index written from the child's documents is the one the rebuild makes.
    assert _search_documents(child_store) == _search_documents(in_process)
    for database in databases:
        database.dispose()


def test_the_store_transfer_copies_records_as_stored(tmp_path: Path) -> None:
    # SQLite copies records and index entries as they are only if the store's tables match the
    # database's exactly; a mismatch would silently fall back to a row-by-row insert.
    from opsdesk.demo.bulk import STORE_SCHEMA, BulkWriter
    from opsdesk.demo.producer import STORED_TABLES
    from opsdesk.tickets.service.search import SQLITE_TRIGGERS

    url = f"sqlite:///{tmp_path / 'main.db'}"
    migrate.upgrade(url)
    database = Database(url)
    with database.transaction() as session:
        writer = BulkWriter(session)
        store = writer.store_for([table for table, _, _ in STORED_TABLES], str(tmp_path / "store.db"))
    scratch = sqlite3.connect(store.path)
    for statement in (*store.tables, *store.indexes):
        scratch.execute(statement)
    scratch.close()
    raw = sqlite3.connect(tmp_path / "main.db", isolation_level=None)
    # As during the load: SQLite copies no records as stored into a table whose foreign keys it
    # enforces or that has triggers.
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute(f"ATTACH DATABASE '{store.path}' AS {STORE_SCHEMA}")
    raw.execute("BEGIN")
    for trigger in SQLITE_TRIGGERS:
        raw.execute(f"DROP TRIGGER {trigger}")
    for table, _, _ in STORED_TABLES:
        program = raw.execute(
            f"EXPLAIN INSERT INTO main.{table} SELECT * FROM {STORE_SCHEMA}.{table}"
        ).fetchall()
        assert "RowData" in {row[1] for row in program}, table
    raw.execute("ROLLBACK")
    raw.close()
    database.dispose()
