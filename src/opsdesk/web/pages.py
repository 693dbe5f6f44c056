"""Shared pages: the HTML error page. Domain pages live in their own ``pages.py``."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from opsdesk.web.templating import render

TITLES = {401: "Please sign in", 403: "Not allowed", 404: "Not found", 422: "Not valid", 500: "Something went wrong"}


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    return render(
        request, "web/error.html", {"title": TITLES.get(status, f"Error {status}"), "detail": detail}, status_code=status
    )
