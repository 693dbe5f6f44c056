"""``opsdesk insights rollup [--rebuild]`` as an operator runs it: a real process on a file
database (the rollup service itself is tested on SQLite and PostgreSQL in test_rollups)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, func, select

from opsdesk import clock, migrate
from opsdesk.db import Database
from opsdesk.insights.bulk_history import load
from opsdesk.insights.models import DailyRollup, RollupState
from opsdesk.insights.service import rollups
from tests.support.factories import SYSTEM


def _opsdesk(*arguments: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from opsdesk.cli import main; main()", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OPSDESK_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_rebuild_then_incremental_refresh(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollups.db'}"
    migrate.upgrade(url)
    database = Database(url)
    try:
        with database.transaction() as session:
            load(session, 120, end=clock.now() - timedelta(hours=1), days=10, seed=5)
        rebuilt = _opsdesk("insights", "rollup", "--rebuild", "--db", url, data_dir=tmp_path)
        assert rebuilt.returncode == 0, rebuilt.stderr
        report = json.loads(rebuilt.stdout)
        assert report["rebuild"] is True
        assert report["built_through"] == clock.now().strftime("%Y-%m-%dT00:00")
        with database.transaction(write=False) as session:
            rows = session.scalar(select(func.count()).select_from(DailyRollup))
            state = session.get(RollupState, 1)
            assert state is not None
            assert rows == report["rows"] == state.rows
            assert rows > 0
        refreshed = _opsdesk("insights", "rollup", "--db", url, data_dir=tmp_path)
        assert refreshed.returncode == 0, refreshed.stderr
        assert json.loads(refreshed.stdout)["rebuild"] is False
        with database.transaction(write=False) as session:
            assert session.scalar(select(func.count()).select_from(DailyRollup)) == rows
    finally:
        database.dispose()


def test_the_scheduled_first_build_goes_day_by_day_and_equals_a_rebuild(tmp_path: Path) -> None:
    """The job builds in one short transaction per day (SQLite writers are not stopped for
    minutes); what it builds is exactly what one rebuild builds."""
    url = f"sqlite:///{tmp_path / 'steps.db'}"
    migrate.upgrade(url)
    database = Database(url)
    transactions = 0

    def _count(*_: object) -> None:
        nonlocal transactions
        transactions += 1

    try:
        with database.transaction() as session:
            load(session, 120, end=clock.now() - timedelta(hours=1), days=10, seed=5)
        event.listen(database.engine, "commit", _count)
        stepped = rollups.refresh_in_steps(database)
        event.remove(database.engine, "commit", _count)
        assert transactions >= 10  # one per day of the history, then the state row
        with database.transaction(write=False) as session:
            by_steps = sorted((tuple(row) for row in session.execute(select(*_ROLLUP_COLUMNS))), key=repr)
            state = session.get(RollupState, 1)
            assert state is not None
            assert state.rows == stepped.rows == len(by_steps) > 0
        with database.transaction() as session:
            rollups.rebuild(session, SYSTEM)
        with database.transaction(write=False) as session:
            assert (
                sorted((tuple(row) for row in session.execute(select(*_ROLLUP_COLUMNS))), key=repr)
                == by_steps
            )
    finally:
        database.dispose()


_ROLLUP_COLUMNS = [column for column in DailyRollup.__table__.columns if column.name != "id"]
