"""Domain events to handlers, in the transaction of the change that raised them.

Handlers are registered in one place, :mod:`opsdesk.reactions`, so a reader learns everything
that happens when a ticket arrives by reading that file. Handlers change state through services
and write side effects to the outbox (:func:`opsdesk.outbox.enqueue`); nothing leaves the
process before the transaction commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

EventT = TypeVar("EventT")
Handler = Callable[[Session, Any], None]


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._configured = False

    def subscribe(self, event_type: type[EventT], handler: Callable[[Session, EventT], None]) -> None:
        self._handlers[event_type].append(handler)

    def handlers_for(self, event_type: type) -> list[Handler]:
        self._ensure_configured()
        return list(self._handlers.get(event_type, []))

    def publish(self, session: Session, event: object) -> None:
        """Run every handler of the event now, inside the caller's transaction."""
        for handler in self.handlers_for(type(event)):
            handler(session, event)

    def _ensure_configured(self) -> None:
        if not self._configured:
            self._configured = True
            from opsdesk import reactions

            reactions.register(self)


bus = Bus()


def publish(session: Session, event: object) -> None:
    bus.publish(session, event)
