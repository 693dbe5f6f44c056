"""The chat panel on the ticket page: the live conversation of a chat ticket and a reply box."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.channels.enums import ChatStatus
from opsdesk.channels.service import chat
from opsdesk.tickets.enums import Channel
from opsdesk.tickets.models import Ticket
from opsdesk.web.panels import PanelPlace, TicketPanel

STATES = {
    ChatStatus.WAITING.value: "The customer is waiting for an agent.",
    ChatStatus.ACTIVE.value: "Live: the customer reads replies in the chat.",
    ChatStatus.OFFLINE.value: "No agent was available: replies go to the customer by email.",
    ChatStatus.ENDED.value: "The chat has ended: replies go to the customer by email.",
}


def chat_view(session: Session, actor: Actor, ticket: Ticket) -> dict[str, Any] | None:
    if ticket.channel != Channel.CHAT.value:
        return None
    conversation = chat.conversation_for_ticket(session, ticket.id)
    if conversation is None:
        return None
    view = chat.conversation_view(session, conversation)
    state = STATES.get(conversation.status, conversation.status)
    if conversation.status == ChatStatus.ACTIVE.value and view["agent_name"]:
        state = f"Live with {view['agent_name']}: the customer reads replies in the chat."
    return {
        **view,
        "state": f"{conversation.visitor_name} <{conversation.visitor_email}>. {state}",
        "messages": chat.transcript(session, conversation),
        "user_id": actor.user_id,
        "can_reply": has_permission(actor, Permission.TICKET_REPLY),
        # one id per rendered form: a double submit of the same form is stored once
        "form_client_id": uuid.uuid4().hex,
    }


def ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    view = chat_view(session, actor, ticket)
    if view is None:
        return []
    return [
        TicketPanel(
            key="chat",
            title="Live chat",
            template="channels/chat_panel.html",
            context={"chat": view},
            place=PanelPlace.MAIN,
            order=5,
        )
    ]
