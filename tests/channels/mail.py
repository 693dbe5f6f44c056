"""Building small test emails."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def simple_email(
    *,
    sender: str = "kim@customer.example",
    subject: str = "Printer on fire",
    body: str = "The printer is on fire.",
    message_id: str | None = "m1@customer.example",
    to: str = "support@example.com",
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()
