"""Alembic environment: every domain's models, batch mode for SQLite's ALTER TABLE limits."""

from __future__ import annotations

from alembic import context

from opsdesk.db import Base, make_engine
from opsdesk.domains import load_all_models
from opsdesk.migrate import include_name

load_all_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", pool_size=1)
    with engine.connect() as opened:
        _run(opened)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    if hasattr(connection, "commit"):
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `opsdesk migrate`")
run_migrations_online()
