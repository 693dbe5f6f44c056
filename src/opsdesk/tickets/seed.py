"""Demo data of the ticket domain: the shipped default views (My open, Unassigned, All unsolved,
Recently solved), so a seeded database opens on a useful inbox."""

from __future__ import annotations

from sqlalchemy.orm import Session

from opsdesk.demo.context import SeedContext
from opsdesk.tickets.service import views as views_service


def seed(session: Session, context: SeedContext) -> None:
    del context
    views_service.ensure_default_views(session)
