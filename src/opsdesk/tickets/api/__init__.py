"""The ticket domain's HTTP API under ``/api/v1``: one router per concept, mounted together."""

from __future__ import annotations

from fastapi import APIRouter

from opsdesk.tickets.api import accounts, attachments, people, settings, tickets, views

router = APIRouter()
for module in (tickets, people, accounts, views, settings, attachments):
    router.include_router(module.router)
