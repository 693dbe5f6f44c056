"""Every reaction to a domain event, registered in one place.

Read this file to know what happens when a ticket arrives: the handlers run in order, in the
transaction that created the ticket (triage -> routing -> SLA clocks -> triggers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsdesk.tickets.events import MessageAdded, TicketCreated, TicketMerged, TicketUpdated

if TYPE_CHECKING:
    from opsdesk.bus import Bus


def register(bus: Bus) -> None:
    """Subscribe each domain's handlers. Domains add their lines here, in pipeline order."""
    from opsdesk.channels.service import outbound as channel_outbound
    from opsdesk.channels.service import slack as channel_slack
    from opsdesk.channels.service import webhooks as channel_webhooks
    from opsdesk.insights.reactions import assign_experiments

    # insights: experiments first, routing rules, macros and SLA windows under test read the arm
    bus.subscribe(TicketCreated, assign_experiments)
    # channels: a staff public reply is emailed to the requester (through the outbox)
    bus.subscribe(MessageAdded, channel_outbound.send_public_reply)
    # channels: ... or posted into the ticket's Slack thread
    bus.subscribe(MessageAdded, channel_slack.queue_public_reply)

    # channels: last, outbound webhooks see every ticket event (queued in the outbox)
    for event_type in (TicketCreated, MessageAdded, TicketUpdated, TicketMerged):
        bus.subscribe(event_type, channel_webhooks.queue_for_event)
