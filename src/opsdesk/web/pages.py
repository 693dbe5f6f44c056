"""Shared pages: the HTML error page. Domain pages live in their own ``pages.py``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
TITLES = {
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    422: "Not valid",
    500: "Something went wrong",
}


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    # The request's transaction was rolled back before an error answer, so the signed-in user's
    # row is no longer loaded: the error page shows no user menu rather than query again.
    return render(
        request,
        "web/error.html",
        {"title": TITLES.get(status, f"Error {status}"), "detail": detail, "current_user": None},
        status_code=status,
    )
