"""The triage panel on the ticket page: the prediction, its confidence and the words behind it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.tickets.models import Ticket
from opsdesk.triage.service import classification
from opsdesk.web.panels import PanelPlace, TicketPanel

OUTCOME_LABELS = {"auto": "set automatically", "handoff": "handed to a person", "kept": "kept as set"}


def prediction_view(session: Session, ticket_id: int) -> dict[str, Any] | None:
    """The stored prediction of a ticket shaped for display, or None when it was never classified."""
    prediction = classification.prediction_for(session, ticket_id)
    if prediction is None:
        return None
    return {
        "category": prediction.category or "—",
        "confidence": f"{prediction.confidence * 100:.0f} %",
        "threshold": "hand everything off"
        if prediction.threshold > 1
        else f"{prediction.threshold * 100:.0f} %",
        "outcome": OUTCOME_LABELS[prediction.outcome],
        "reason": prediction.reason,
        "source": f"model v{prediction.model_version}" if prediction.model_version else "keyword rules",
        "top_words": [str(item[0]) for item in prediction.top_words or []],
        "sentiment": prediction.sentiment,
        "language": prediction.language or "unknown",
        "priority": prediction.suggested_priority,
        "entities": [
            f"{item['kind'].replace('_', ' ')}: {item['text']}" for item in prediction.entities or []
        ],
        "corrected": prediction.corrected_category,
    }


def ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    view = prediction_view(session, ticket.id)
    if view is None:
        return []
    return [
        TicketPanel(
            key="triage",
            title="Triage",
            template="triage/prediction_panel.html",
            context={"prediction": view},
            place=PanelPlace.SIDE,
            order=10,
        )
    ]
