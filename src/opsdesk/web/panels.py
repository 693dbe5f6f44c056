"""Ticket page panels contributed by other domains.

The ticket page belongs to ``tickets``, but what sits beside a ticket comes from the domains above
it: the triage prediction, the SLA clocks and the macro picker, the customer's subscription and
invoices, a chat transcript. Each such domain has a ``ticket_panels`` module with a function
``ticket_panels(session, actor, ticket) -> list[TicketPanel]``; the ticket page collects them
through :func:`collect_ticket_panels` and includes each panel's template with ``panel`` in scope.
The tickets domain therefore never imports the domains that build on it, and a new panel is wired
in by existing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from opsdesk.domains import domain_modules

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from opsdesk.auth.actor import Actor
    from opsdesk.tickets.models import Ticket


class PanelPlace(StrEnum):
    """Where on the ticket page a panel goes: under the conversation, or in the side column."""

    MAIN = "main"
    SIDE = "side"


@dataclass(frozen=True, slots=True)
class TicketPanel:
    """One panel: a template of its domain and the view model it renders."""

    key: str
    title: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    place: PanelPlace = PanelPlace.SIDE
    order: int = 100


PanelProvider = Callable[["Session", "Actor", "Ticket"], list[TicketPanel]]


@cache
def panel_providers() -> tuple[PanelProvider, ...]:
    """Every domain's ``ticket_panels`` function, in domain order."""
    providers: list[PanelProvider] = []
    for module in domain_modules("ticket_panels"):
        provider = getattr(module, "ticket_panels", None)
        if provider is None:
            raise RuntimeError(f"{module.__name__} has no ticket_panels(session, actor, ticket) function")
        providers.append(provider)
    return tuple(providers)


def collect_ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    """The panels every domain shows this actor for this ticket, ordered for display."""
    panels = [panel for provider in panel_providers() for panel in provider(session, actor, ticket)]
    return sorted(panels, key=lambda panel: (panel.order, panel.key))
