"""The schema is made only by migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opsdesk.db import Base
from opsdesk.domains import load_all_models
from opsdesk.migrate import include_name
from tests.support.databases import BoundDatabase


def test_migrations_match_models(database: BoundDatabase) -> None:
    load_all_models()
    context = MigrationContext.configure(
        database.connection, opts={"compare_type": True, "include_name": include_name}
    )
    differences = compare_metadata(context, Base.metadata)
    assert differences == []
