"""Re-sealing every stored channel secret under the current key (key rotation).

Invariants: runs in the caller's transaction, so either every secret moves to the new key or none
does; a secret no known key can open stops the run with an error naming the row (nothing changes).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.channels import secret_box
from opsdesk.channels.models import ImapMailbox, SlackConnection
from opsdesk.config import Settings


def reencrypt_stored_secrets(session: Session, settings: Settings) -> int:
    """Returns how many values were re-sealed."""
    count = 0
    for mailbox in session.scalars(select(ImapMailbox)):
        try:
            mailbox.password = secret_box.reencrypt(settings, mailbox.password)
        except secret_box.SecretUnreadableError as error:
            raise secret_box.SecretUnreadableError(f"mailbox {mailbox.name}: {error}") from error
        count += 1
    for connection in session.scalars(select(SlackConnection)):
        try:
            connection.bot_token = secret_box.reencrypt(settings, connection.bot_token)
            if connection.signing_secret:
                connection.signing_secret = secret_box.reencrypt(settings, connection.signing_secret)
                count += 1
        except secret_box.SecretUnreadableError as error:
            raise secret_box.SecretUnreadableError(
                f"Slack channel {connection.channel_id}: {error}"
            ) from error
        count += 1
    session.flush()
    return count
