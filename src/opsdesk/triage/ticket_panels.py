"""The triage panel on the ticket page: the prediction, its confidence and the words behind it,
and the "correct the category" form (a select of the active taxonomy posting to
``/triage/tickets/{id}/category``, the same service a correction through the API uses).

The panel shows once the team has a taxonomy (triage is set up); the form only to people who may
edit tickets, and not on closed tickets."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.tickets.models import Ticket
from opsdesk.triage.models import TriagePrediction
from opsdesk.triage.service import classification, taxonomy
from opsdesk.web.panels import PanelPlace, TicketPanel

OUTCOME_LABELS = {"auto": "set automatically", "handoff": "handed to a person", "kept": "kept as set"}


def prediction_view(prediction: TriagePrediction | None) -> dict[str, Any] | None:
    """A ticket's stored prediction shaped for display, or None when it was never classified."""
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


def correction_view(
    session: Session, actor: Actor, ticket: Ticket, prediction: TriagePrediction | None
) -> dict[str, Any] | None:
    """The choices of the "correct the category" form, or None when the actor may not use it."""
    if not has_permission(actor, Permission.TICKET_WRITE) or ticket.status == "closed":
        return None
    selected = ticket.category or (prediction.category if prediction is not None else None)
    options = [
        {
            "value": row.path,
            "label": f"{row.label} ({row.path})" if row.parent_path else row.label,
            "selected": row.path == selected,
        }
        for row in taxonomy.list_categories(session, active_only=True)
    ]
    if not options:
        return None
    return {
        "action": f"/triage/tickets/{ticket.id}/category",
        "options": options,
        "current": ticket.category,
        "button": "Save category" if ticket.category else "Set category",
    }


def ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    prediction = classification.prediction_for(session, ticket.id)
    view = prediction_view(prediction)
    correction = correction_view(session, actor, ticket, prediction)
    if view is None and not classification.triage_enabled(session):
        return []
    return [
        TicketPanel(
            key="triage",
            title="Triage",
            template="triage/prediction_panel.html",
            context={"prediction": view, "correction": correction},
            place=PanelPlace.SIDE,
            order=10,
        )
    ]
