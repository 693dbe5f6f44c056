"""SQLite's WAL checkpoints run in the server's checkpointer thread, not in a writer's COMMIT."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from opsdesk import migrate
from opsdesk.db import WAL_AUTOCHECKPOINT_PAGES, Database, WalCheckpointer


def _wal_pages(database: Database) -> int:
    # A checkpoint that copies nothing still reports how many pages the WAL holds.
    with database.engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1])


def _file_pages(path: Path) -> int:
    # Pages reach the database file only through a checkpoint.
    return path.stat().st_size // 4096


def _migrated(path: Path) -> Database:
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    # Without free pages (migrations that drop an index leave some), the file grows by a page
    # for every page a checkpoint copies.
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("VACUUM")
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    return Database(url)


def _write_rows(database: Database, rows: int) -> None:
    with database.transaction() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT)"))
    for _ in range(rows):
        with database.transaction() as session:
            session.execute(text("INSERT INTO filler (body) VALUES (:body)"), {"body": "x" * 3000})


def test_writers_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    database = _migrated(path)
    try:
        with database.engine.connect() as connection:
            assert (
                connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT_PAGES
            )
        checkpointer = WalCheckpointer(database)
        checkpointer.checkpoint()
        before = _file_pages(path)
        # About 1,500 pages: past SQLite's default of 1,000, so a writer would have checkpointed.
        _write_rows(database, 1500)
        assert _file_pages(path) - before < 100
        busy, in_wal, copied = checkpointer.checkpoint()
        assert busy == 0
        assert in_wal >= 1500
        assert copied == in_wal  # no reader held old pages: everything reached the database file
        assert _file_pages(path) - before >= 1500
        # The next writer starts the WAL over: it does not grow without bound.
        _write_rows(database, 10)
        assert _wal_pages(database) < 100
    finally:
        database.dispose()


def test_the_thread_checkpoints_while_the_server_runs(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    database = _migrated(path)
    checkpointer = WalCheckpointer(database, interval=0.05)
    try:
        before = _file_pages(path)
        checkpointer.start()
        _write_rows(database, 300)
        deadline = time.monotonic() + 30
        # The thread copies what was written into the database file (no writer would: 300 pages
        # are far below the backstop).
        while _file_pages(path) - before < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _file_pages(path) - before >= 300
    finally:
        checkpointer.stop()
        database.dispose()
