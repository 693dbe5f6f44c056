"""Jinja2 templates for every domain's pages.

Each domain keeps its templates in ``opsdesk/<domain>/templates/<domain>/``; this loader searches
them all, so a page renders ``"tickets/list.html"`` extending ``"web/base.html"``. Templates get a
view model and render it: no queries, no permission checks, no status logic.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from opsdesk.domains import DOMAINS

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def environment() -> Environment:
    loaders = [
        FileSystemLoader(str(_PACKAGE_ROOT / domain / "templates"))
        for domain in DOMAINS
        if (_PACKAGE_ROOT / domain / "templates").is_dir()
    ]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the request and the shared layout context."""
    base_context: dict[str, Any] = {"request": request, **getattr(request.state, "layout", {})}
    html = environment().get_template(template).render({**base_context, **context})
    return HTMLResponse(html, status_code=status_code)
