"""create_app(): settings, database, error handling, and every domain's API and pages."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsdesk import __version__
from opsdesk.config import Settings
from opsdesk.db import Database, WalCheckpointer
from opsdesk.domains import domain_modules
from opsdesk.errors import DomainError
from opsdesk.web.auth import LoginRequired, login_redirect
from opsdesk.web.idempotency import IdempotentReplay, replay_response
from opsdesk.web.problems import problem_response, validation_problem
from opsdesk.web.sessions import STATE_KEY as SESSION_KEY
from opsdesk.web.transactions import TransactionMiddleware


def _freeze_startup_objects() -> None:
    """Move what the server built while starting (modules, the app and its routes, mappers, the
    configuration) out of the garbage collector's sight: it lives as long as the process.

    A full collection walks every tracked object, and a started worker holds about 330,000:
    each full collection took 100 to 220 ms of one request's time, stalling every request queued
    behind it (on SQLite, the other workers' too, waiting for the write lock). They come
    whenever the objects made since the last one reach a quarter of those that survived it, so
    new code paths (a first status change, say) brought one mid-load: the PATCH load's p99.
    Frozen, a full collection walks only what was made since."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.ensure_dirs()
    database = database or Database(settings.resolved_database_url)
    from opsdesk.jobs.process import InProcessJobs

    jobs = InProcessJobs(settings, database)
    # SQLite: WAL checkpoints in a thread of their own, not inside some request's write lock.
    checkpointer = WalCheckpointer(database)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The job runner lives as long as the server: started on startup, stopped (its current
        # jobs finished) on shutdown.
        del app
        jobs.start()
        checkpointer.start()
        _freeze_startup_objects()
        try:
            yield
        finally:
            checkpointer.stop()
            jobs.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="opsdesk",
        version=__version__,
        description="Customer operations: tickets, billing operations, success and workforce.",
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.database = database
    app.state.ready = True
    app.state.jobs = jobs

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, error: DomainError) -> JSONResponse:
        return problem_response(
            request, error.status, error.title, error.detail, error.code, error.fields, headers=error.headers
        )

    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_exception_handler(IdempotentReplay, replay_response)
    app.add_middleware(TransactionMiddleware)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return validation_problem(request, error.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Any:
        if request.url.path.startswith("/api/") or error.status_code not in (401, 403, 404):
            return problem_response(
                request, error.status_code, str(error.detail), str(error.detail), "http_error", []
            )
        from opsdesk.web.pages import error_page

        return error_page(request, error.status_code, str(error.detail))

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, error: Exception) -> Any:
        # A number or text the database cannot hold (an id past 64 bits, say) is bad input, not a
        # server fault: undo whatever the request had written, then answer like any refusal.
        session = request.scope.get("state", {}).get(SESSION_KEY)
        if session is not None:
            await run_in_threadpool(session.rollback)
        detail = "a value in the request is out of the range the database can store"
        if request.url.path.startswith("/api/"):
            return problem_response(request, 422, "Value out of range", detail, "value_out_of_range", [])
        from opsdesk.web.pages import error_page

        return error_page(request, 422, detail)

    @app.get("/api/v1/health", tags=["system"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for module in domain_modules("api"):
        app.include_router(module.router)
    for module in domain_modules("pages"):
        app.include_router(module.router)
    from opsdesk.web.static import static_directory

    app.mount("/static", StaticFiles(directory=static_directory()), name="static")
    return app
