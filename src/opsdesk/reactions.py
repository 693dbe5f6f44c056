"""Every reaction to a domain event, registered in one place.

Read this file to know what happens when a ticket arrives: the handlers run in order, in the
transaction that created the ticket (triage -> routing -> SLA clocks -> triggers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsdesk.tickets.events import MessageAdded

if TYPE_CHECKING:
    from opsdesk.bus import Bus


def register(bus: Bus) -> None:
    """Subscribe each domain's handlers. Domains add their lines here, in pipeline order."""
    from opsdesk.channels.service import outbound as channel_outbound
    from opsdesk.insights.reactions import assign_experiments
    from opsdesk.tickets.events import TicketCreated

    # insights: experiments first, routing rules, macros and SLA windows under test read the arm
    bus.subscribe(TicketCreated, assign_experiments)
    # channels: a staff public reply is emailed to the requester (through the outbox)
    bus.subscribe(MessageAdded, channel_outbound.send_public_reply)
