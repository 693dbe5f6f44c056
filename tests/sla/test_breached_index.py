"""The "breached" view is answered from the breached_at index (the one index on that column since
migration sla_06), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from opsdesk.insights.bulk_history import load
from opsdesk.sla import queries
from opsdesk.sla.models import BREACHED_AT_INDEX
from tests.support.databases import BoundDatabase
from tests.support.factories import make_user, staff_actor

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@contextmanager
def _recorded(database: BoundDatabase) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def _indexes(db: Session) -> list[str]:
    rows = db.connection().exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sla_targets'"
        if db.get_bind().dialect.name == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'sla_targets'"
    )
    return sorted(str(row[0]) for row in rows)


def test_one_breached_at_index_and_the_breached_view_reads_it(db: Session, database: BoundDatabase) -> None:
    assert [name for name in _indexes(db) if "breached" in name] == [BREACHED_AT_INDEX]
    # Three months of history, mostly solved, with planner statistics as a real database has.
    load(db, 3000, end=NOW, days=90, seed=5, rebuild_indexes=False)
    db.execute(text("ANALYZE"))
    agent = staff_actor(make_user(db, role="admin"))
    with _recorded(database) as statements:
        assert len(queries.breached(db, agent, limit=50)) == 50
    [(statement, parameters)] = [item for item in statements if "sla_targets" in item[0]]
    connection = db.connection()
    explain = "EXPLAIN QUERY PLAN " if connection.dialect.name == "sqlite" else "EXPLAIN "
    plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(explain + statement, parameters))
    assert BREACHED_AT_INDEX in plan, plan
