"""Channel-domain events, past tense, raised inside the transaction of the change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatPresenceSet:
    """An agent's chat presence was set (chosen on the chat page or socket, or offline because
    their last chat connection closed); ``status`` may equal what it was."""

    user_id: int
    status: str
