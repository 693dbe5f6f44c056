"""Running the server: migrate if needed, then Uvicorn serving create_app()."""

from __future__ import annotations

import os

from opsdesk import migrate, server_workers
from opsdesk.config import Settings


def run(
    settings: Settings,
    *,
    host: str,
    port: int,
    migrate_first: bool = True,
    workers: int = 1,
    smtp_port: int | None = None,
) -> None:
    settings.ensure_dirs()
    if migrate_first:
        migrate.upgrade(settings.resolved_database_url)
    if smtp_port is not None:
        # The SMTP receiver runs in this (the server's) process, on its own thread.
        from opsdesk.channels.smtp_receiver import start_in_server

        start_in_server(settings, host=settings.inbound_smtp_host, port=smtp_port)
    # Worker processes rebuild the app from the environment, so pass settings through it.
    os.environ["OPSDESK_DATABASE_URL"] = settings.resolved_database_url
    os.environ["OPSDESK_DATA_DIR"] = str(settings.data_dir.resolve())
    server_workers.serve(
        host, port, workers, {"log_level": "warning", "access_log": False, "proxy_headers": True}
    )
