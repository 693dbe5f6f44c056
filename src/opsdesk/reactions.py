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
    from opsdesk.automation import escalations
    from opsdesk.automation import rules as triggers
    from opsdesk.billing.events import DisputeClosed, DisputeOpened
    from opsdesk.billing.service import dispute_deadlines
    from opsdesk.channels.events import ChatPresenceSet
    from opsdesk.channels.service import chat as channel_chat
    from opsdesk.channels.service import outbound as channel_outbound
    from opsdesk.channels.service import slack as channel_slack
    from opsdesk.channels.service import webhooks as channel_webhooks
    from opsdesk.insights.reactions import assign_experiments
    from opsdesk.sla import clocks as sla_clocks
    from opsdesk.sla.events import SlaBreached
    from opsdesk.triage.events import AgentAvailabilityChanged
    from opsdesk.triage.service import assignment as triage_assignment
    from opsdesk.triage.service import classification as triage_classification
    from opsdesk.triage.service import routing as triage_routing

    # insights: experiments first, routing rules, macros and SLA windows under test read the arm
    bus.subscribe(TicketCreated, assign_experiments)

    # triage.classify -> triage.route (group, priority, tags, agent)
    bus.subscribe(TicketCreated, triage_classification.classify_new_ticket)
    bus.subscribe(TicketCreated, triage_routing.route_new_ticket)
    # a person set or corrected the category: learn from it, route a handed-off ticket
    bus.subscribe(TicketUpdated, triage_classification.record_category_change)
    # an agent went away or off shift: their new and open tickets move to available colleagues
    bus.subscribe(AgentAvailabilityChanged, triage_assignment.reassign_when_away)

    # sla.start_clocks: after triage has classified and routed the new ticket.
    bus.subscribe(TicketCreated, sla_clocks.start_clocks)
    bus.subscribe(MessageAdded, sla_clocks.on_message_added)
    bus.subscribe(TicketUpdated, sla_clocks.on_ticket_updated)

    # automation.run_triggers: after SLA clocks, so conditions and actions see the targets.
    bus.subscribe(TicketCreated, triggers.on_ticket_created)
    bus.subscribe(TicketUpdated, triggers.on_ticket_updated, many=triggers.on_tickets_updated)
    bus.subscribe(MessageAdded, triggers.on_message_added)
    bus.subscribe(SlaBreached, triggers.on_sla_breached)
    bus.subscribe(SlaBreached, escalations.on_sla_breached)

    # billing: a dispute's evidence deadline (less the admin's safety margin) is its ticket's SLA
    bus.subscribe(DisputeOpened, dispute_deadlines.start_evidence_deadline)
    bus.subscribe(DisputeClosed, dispute_deadlines.on_dispute_closed)

    # channels: a staff public reply is emailed to the requester (through the outbox)
    bus.subscribe(MessageAdded, channel_outbound.send_public_reply)
    # channels: ... or posted into the ticket's Slack thread
    bus.subscribe(MessageAdded, channel_slack.queue_public_reply)
    # channels: ... or shown in the live chat (after commit; emailed instead once the chat is over)
    bus.subscribe(MessageAdded, channel_chat.on_message_added)
    # channels: the last agent left chat (away, offline, tab closed): waiting chats go to email
    bus.subscribe(ChatPresenceSet, channel_chat.on_presence_set)

    # channels: last, outbound webhooks see every ticket event (queued in the outbox)
    for event_type in (TicketCreated, MessageAdded, TicketUpdated, TicketMerged):
        bus.subscribe(event_type, channel_webhooks.queue_for_event, many=channel_webhooks.queue_for_events)
