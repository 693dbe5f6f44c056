"""Scheduled SLA work: the breach sweep (an indexed query over due targets, every minute)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.jobs import scheduled
from opsdesk.sla.clocks import sweep_breaches


@scheduled("sla.sweep_breaches", every=timedelta(minutes=1))
def sweep(session: Session) -> None:
    sweep_breaches(session)
