"""Domain events to handlers, in the transaction of the change that raised them.

Handlers are registered in one place, :mod:`opsdesk.reactions`, so a reader learns everything
that happens when a ticket arrives by reading that file. Handlers change state through services
and write side effects to the outbox (:func:`opsdesk.outbox.enqueue`); nothing leaves the
process before the transaction commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

EventT = TypeVar("EventT")
Handler = Callable[[Session, Any], None]
ManyHandler = Callable[[Session, Sequence[Any]], None]


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._many: dict[Handler, ManyHandler] = {}
        self._configured = False

    def subscribe(
        self,
        event_type: type[EventT],
        handler: Callable[[Session, EventT], None],
        *,
        many: Callable[[Session, Sequence[EventT]], None] | None = None,
    ) -> None:
        """``many``, when given, handles a batch of these events at once (:meth:`publish_many`)
        with the same effect as ``handler`` on each; it lets a handler look its configuration up
        once per batch instead of once per event."""
        self._handlers[event_type].append(handler)
        if many is not None:
            self._many[handler] = many

    def handlers_for(self, event_type: type) -> list[Handler]:
        self._ensure_configured()
        return list(self._handlers.get(event_type, []))

    def publish(self, session: Session, event: object) -> None:
        """Run every handler of the event now, inside the caller's transaction."""
        for handler in self.handlers_for(type(event)):
            handler(session, event)

    def publish_many(self, session: Session, events: Sequence[object]) -> None:
        """Run every handler on a batch of events of one type about different tickets (a bulk
        change), inside the caller's transaction: handler by handler, each over the whole batch
        (its ``many`` variant when it has one, else event by event)."""
        if not events:
            return
        event_type = type(events[0])
        if any(type(event) is not event_type for event in events):
            raise TypeError("publish_many takes events of one type")
        for handler in self.handlers_for(event_type):
            many = self._many.get(handler)
            if many is not None:
                many(session, events)
            else:
                for event in events:
                    handler(session, event)

    def _ensure_configured(self) -> None:
        if not self._configured:
            self._configured = True
            from opsdesk import reactions

            reactions.register(self)


bus = Bus()


def publish(session: Session, event: object) -> None:
    bus.publish(session, event)


def publish_many(session: Session, events: Sequence[object]) -> None:
    bus.publish_many(session, events)
