"""Shared pages (home, errors). Domain pages live in their own ``pages.py``."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    del request
    return HTMLResponse(
        f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{html.escape(detail)}</p>",
        status_code=status,
    )
