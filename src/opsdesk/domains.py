"""The domain packages of opsdesk, in dependency order, and discovery of their parts.

``create_app()`` mounts each domain's ``api`` and ``pages`` routers, the CLI adds each domain's
``cli`` commands, and migrations see each domain's ``models``: a new domain is wired in by
existing, not by editing a central list of imports.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DOMAINS: tuple[str, ...] = (
    "auth",
    "tickets",
    "channels",
    "triage",
    "sla",
    "automation",
    "billing",
    "success",
    "knowledge",
    "quality",
    "workforce",
    "incidents",
    "insights",
    "privacy",
    "web",
)


def domain_modules(part: str) -> list[ModuleType]:
    """``opsdesk.<domain>.<part>`` for every domain that has that part, imported."""
    found: list[ModuleType] = []
    for domain in DOMAINS:
        name = f"opsdesk.{domain}.{part}"
        if importlib.util.find_spec(f"opsdesk.{domain}") is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        found.append(importlib.import_module(name))
    return found


def load_all_models() -> None:
    """Import every table definition so ``Base.metadata`` is complete."""
    importlib.import_module("opsdesk.outbox")
    importlib.import_module("opsdesk.jobs.models")
    domain_modules("models")
