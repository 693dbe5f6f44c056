"""The seeder's own load transaction on a fresh database: the store writer makes the same data as
the in-process load, and the relaxed load settings leave nothing relaxed behind."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from opsdesk import clock, migrate
from opsdesk.db import Database
from opsdesk.demo.bulk import STORE_SCHEMA, load_transaction
from opsdesk.demo.context import SeedOptions
from opsdesk.demo.conversations import TicketPlayer
from opsdesk.demo.seeder import seed_company
from opsdesk.tickets.service.search import POSTGRES_DOCUMENT
from tests.support.databases import postgres_database

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


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
            SeedOptions(tickets=600, days=20, seed=3, parallel=True, with_domains=False),
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
        # The keyword index written from the shapes (names filled in) and the solo tickets holds
        # what the loaded tickets and messages say.
        if fresh_database.is_sqlite:
            written = "SELECT rowid, subject, body FROM ticket_search ORDER BY rowid"
            expected = (
                "SELECT t.id, t.subject, (SELECT group_concat(body_text, char(10)) FROM "
                "(SELECT body_text FROM messages WHERE ticket_id = t.id ORDER BY id)) "
                "FROM tickets t ORDER BY t.id"
            )
        else:
            written = "SELECT ticket_id, document::text FROM ticket_search ORDER BY ticket_id"
            body = "(SELECT string_agg(body_text, E'\\n' ORDER BY id) FROM messages WHERE ticket_id = t.id)"
            document = POSTGRES_DOCUMENT.format(subject="t.subject", body=body)
            expected = f"SELECT t.id, ({document})::text FROM tickets t ORDER BY t.id"
        documents = connection.exec_driver_sql(written).all()
        assert documents == connection.exec_driver_sql(expected).all()
        assert all("\x01" not in str(row) and "\x02" not in str(row) for row in documents)


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
    options = SeedOptions(tickets=600, days=20, seed=3, parallel=True, with_domains=False)
    with (
        # Raised here (PostgreSQL plays in this process) or reported by SQLite's store writer.
        pytest.raises((ValueError, RuntimeError), match="generator broke"),
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
            attached = {row[1] for row in connection.exec_driver_sql("PRAGMA database_list")}
            assert not any(name.startswith(STORE_SCHEMA) for name in attached)
            assert connection.exec_driver_sql("SELECT count(*) FROM temp.sqlite_master").scalar() == 0
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
                SeedOptions(tickets=500, days=20, seed=5, parallel=parallel, with_domains=False),
            )
        # The child's scratch file is gone and no longer attached.
        assert [
            path.name for path in (tmp_path / name).iterdir() if path.name.startswith(".opsdesk-seed")
        ] == []
        with database.engine.connect() as connection:
            attached = {row[1] for row in connection.exec_driver_sql("PRAGMA database_list")}
            assert not any(name.startswith(STORE_SCHEMA) for name in attached)
            # The expansion's source tables are gone too.
            assert connection.exec_driver_sql("SELECT count(*) FROM temp.sqlite_master").scalar() == 0
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
    from opsdesk.demo.bulk import BulkWriter, store_schema
    from opsdesk.demo.producer import STORE_PARTS, STORED_TABLES, in_schema
    from opsdesk.tickets.service.search import SQLITE_TRIGGERS

    url = f"sqlite:///{tmp_path / 'main.db'}"
    migrate.upgrade(url)
    database = Database(url)
    paths = [str(tmp_path / f"part{number}.db") for number in range(len(STORE_PARTS))]
    with database.transaction() as session:
        writer = BulkWriter(session)
        store = writer.store_for([table for table, _, _ in STORED_TABLES], paths)
    # As the store writer makes them: the first part is its connection's main database, the
    # others attached ones (the statements are moved into their schema).
    scratch = sqlite3.connect(paths[0])
    for number, (path, tables) in enumerate(zip(paths, STORE_PARTS, strict=True)):
        schema = "main" if number == 0 else f"part{number}"
        if number:
            scratch.execute(f"ATTACH DATABASE '{path}' AS {schema}")
        for table in tables:
            for statement in (store.tables[table], *store.indexes[table]):
                scratch.execute(in_schema(statement, schema))
    scratch.close()
    raw = sqlite3.connect(tmp_path / "main.db", isolation_level=None)
    # As during the load: SQLite copies no records as stored into a table whose foreign keys it
    # enforces or that has triggers.
    raw.execute("PRAGMA foreign_keys=OFF")
    for number, path in enumerate(paths):
        raw.execute(f"ATTACH DATABASE '{path}' AS {store_schema(number)}")
    raw.execute("BEGIN")
    for trigger in SQLITE_TRIGGERS:
        raw.execute(f"DROP TRIGGER {trigger}")
    for number, tables in enumerate(STORE_PARTS):
        for table in tables:
            program = raw.execute(
                f"EXPLAIN INSERT INTO main.{table} SELECT * FROM {store_schema(number)}.{table}"
            ).fetchall()
            assert "RowData" in {row[1] for row in program}, table
    raw.execute("ROLLBACK")
    raw.close()
    database.dispose()


def test_statements_move_into_another_schema() -> None:
    from opsdesk.demo.producer import in_schema

    assert (
        in_schema("CREATE TABLE tickets (id INTEGER)", "part1") == "CREATE TABLE part1.tickets (id INTEGER)"
    )
    assert in_schema("CREATE INDEX ix_a ON tickets (a)", "part1") == "CREATE INDEX part1.ix_a ON tickets (a)"
    assert in_schema("CREATE UNIQUE INDEX ix_b ON t (b)", "main") == "CREATE UNIQUE INDEX main.ix_b ON t (b)"


def test_postgresql_documents_rename_every_seeded_first_name() -> None:
    # Tickets whose names are one word each get their shape's document with the names renamed
    # (no parsing); any other name falls back to parsing the ticket's texts. Every first name
    # the seed uses must take the fast path.
    from opsdesk.demo.company import STAFF
    from opsdesk.demo.texts import FIRST_NAMES

    names = sorted({*FIRST_NAMES, *(member.name.split(" ", 1)[0] for member in STAFF)})
    with postgres_database() as url:
        database = Database(url)
        with database.engine.connect() as connection:
            vectors = connection.exec_driver_sql(
                "SELECT name, to_tsvector('english', name)::text FROM unnest(%(names)s::text[]) name",
                {"names": names},
            ).all()
        database.dispose()
    one_word = [name for name, vector in vectors if vector.count(":") == 1 and vector.endswith(":1")]
    assert one_word == names


@pytest.fixture
def fresh_postgres() -> Iterator[Database]:
    with postgres_database() as url:
        migrate.upgrade(url)
        database = Database(url)
        yield database
        database.dispose()


def _loaded(database: Database) -> tuple[int, int, int]:
    with database.engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.exec_driver_sql(
                "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM audit_events "
                "WHERE ticket_id IS NOT NULL), (SELECT count(*) FROM accounts)"
            ).one()
        )


def test_postgresql_audit_side_load_commits_with_the_load(fresh_postgres: Database) -> None:
    options = SeedOptions(tickets=300, days=20, seed=3, parallel=True, with_domains=False)
    with clock.frozen(NOW), load_transaction(fresh_postgres) as session:
        seed_company(session, options)
        # The trail is written on another connection and not visible before the commit.
        assert (
            session.execute(text("SELECT count(*) FROM audit_events WHERE ticket_id IS NOT NULL")).scalar()
            == 0
        )
    tickets, audit, _ = _loaded(fresh_postgres)
    assert tickets == 300
    assert audit > 300 * 5  # created, routing, assignment, status changes, message events
    with fresh_postgres.engine.connect() as connection:
        # Every ticket has its "created" event naming its requester's email.
        created = connection.exec_driver_sql(
            "SELECT count(*) FROM audit_events a JOIN tickets t ON t.id = a.ticket_id "
            "JOIN person_emails e ON e.person_id = t.requester_id AND e.is_primary "
            "WHERE a.action = 'created' AND a.new_value ->> 'requester' = e.email"
        ).scalar()
        assert created == 300
        assert (
            connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state LIKE 'idle in%%'"
            ).scalar()
            == 0
        )


def test_postgresql_audit_side_load_rolls_back_with_a_failed_load(
    fresh_postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdesk.demo import expansion

    def broken(*args: object) -> None:
        raise ValueError("documents broke")

    # The load fails after the side load started (the solo tickets' documents come late).
    monkeypatch.setattr(expansion, "write_documents", broken)
    options = SeedOptions(tickets=300, days=20, seed=3, parallel=True, with_domains=False)
    with (
        pytest.raises(ValueError, match="documents broke"),
        clock.frozen(NOW),
        load_transaction(fresh_postgres) as session,
    ):
        seed_company(session, options)
    assert _loaded(fresh_postgres) == (0, 0, 0)


def test_a_failed_audit_side_load_fails_the_load(
    fresh_postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdesk.demo import side_load

    original = side_load.AuditSideLoad.__init__

    def with_bad_rows(self: side_load.AuditSideLoad, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        self.solo_audit = [("not", "an", "audit", "row")]

    monkeypatch.setattr(side_load.AuditSideLoad, "__init__", with_bad_rows)
    options = SeedOptions(tickets=300, days=20, seed=3, parallel=True, with_domains=False)
    with (
        pytest.raises(RuntimeError, match="audit trail load failed"),
        clock.frozen(NOW),
        load_transaction(fresh_postgres) as session,
    ):
        seed_company(session, options)
    assert _loaded(fresh_postgres) == (0, 0, 0)
