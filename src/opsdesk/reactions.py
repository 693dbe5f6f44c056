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
    from opsdesk.automation import escalations
    from opsdesk.automation import rules as triggers
    from opsdesk.channels.service import outbound as channel_outbound
    from opsdesk.insights.reactions import assign_experiments
    from opsdesk.sla import clocks as sla_clocks
    from opsdesk.sla.events import SlaBreached
    from opsdesk.tickets.events import TicketCreated, TicketUpdated

    # insights: experiments first, routing rules, macros and SLA windows under test read the arm
    bus.subscribe(TicketCreated, assign_experiments)

    # sla.start_clocks: after triage has classified and routed the new ticket.
    bus.subscribe(TicketCreated, sla_clocks.start_clocks)
    bus.subscribe(MessageAdded, sla_clocks.on_message_added)
    bus.subscribe(TicketUpdated, sla_clocks.on_ticket_updated)

    # automation.run_triggers: after SLA clocks, so conditions and actions see the targets.
    bus.subscribe(TicketCreated, triggers.on_ticket_created)
    bus.subscribe(TicketUpdated, triggers.on_ticket_updated)
    bus.subscribe(MessageAdded, triggers.on_message_added)
    bus.subscribe(SlaBreached, triggers.on_sla_breached)
    bus.subscribe(SlaBreached, escalations.on_sla_breached)

    # channels: a staff public reply is emailed to the requester (through the outbox)
    bus.subscribe(MessageAdded, channel_outbound.send_public_reply)
