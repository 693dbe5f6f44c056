"""Handing a composed email to the SMTP server of the settings (none, STARTTLS or implicit TLS).

The only module that talks SMTP outwards; a failure raises so the job runner retries with backoff.
"""

from __future__ import annotations

import smtplib
import ssl

from opsdesk.channels import secret_box
from opsdesk.channels.email_composing import OutgoingEmail, compose
from opsdesk.config import Settings

SMTP_TIMEOUT_SECONDS = 30


def send_email(settings: Settings, outgoing: OutgoingEmail) -> None:
    message = compose(outgoing)
    client: smtplib.SMTP
    if settings.smtp_tls == "tls":
        client = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=SMTP_TIMEOUT_SECONDS,
            context=ssl.create_default_context(),
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        if settings.smtp_tls == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            # OPSDESK_SMTP_PASSWORD may be given sealed (`opsdesk channels seal-secret`), so the
            # environment file does not hold it in plain text.
            client.login(settings.smtp_user, secret_box.reveal(settings, settings.smtp_password or ""))
        client.send_message(message, from_addr=outgoing.from_address, to_addrs=[outgoing.to_address])
