"""Configuring the IMAP mailboxes opsdesk polls and the brands it answers as (admins only)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels.errors import InvalidInboundError
from opsdesk.channels.models import EmailBrand, ImapMailbox
from opsdesk.errors import FieldProblem
from opsdesk.tickets.service.people import normalize_email

SECURITY_MODES = ("none", "starttls", "tls")


def add_imap_mailbox(
    session: Session,
    actor: Actor,
    *,
    name: str,
    host: str,
    port: int,
    username: str,
    password: str,
    security: str = "tls",
    folder: str = "INBOX",
) -> ImapMailbox:
    require(actor, Permission.CHANNEL_MANAGE)
    problems: list[FieldProblem] = []
    if not name.strip():
        problems.append(FieldProblem(("name",), "must not be empty"))
    elif session.scalar(select(ImapMailbox.id).where(ImapMailbox.name == name.strip())) is not None:
        problems.append(FieldProblem(("name",), f"a mailbox named {name.strip()!r} exists"))
    if not host.strip():
        problems.append(FieldProblem(("host",), "must not be empty"))
    if not 0 < port < 65536:
        problems.append(FieldProblem(("port",), "must be between 1 and 65535"))
    if security not in SECURITY_MODES:
        problems.append(FieldProblem(("security",), f"must be one of {', '.join(SECURITY_MODES)}"))
    if not username or not password:
        problems.append(FieldProblem(("username",), "username and password are required"))
    if problems:
        raise InvalidInboundError("the mailbox is not valid", fields=problems)
    mailbox = ImapMailbox(
        name=name.strip(),
        host=host.strip(),
        port=port,
        security=security,
        username=username,
        password=password,
        folder=folder or "INBOX",
    )
    session.add(mailbox)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="imap_mailbox",
        entity_id=mailbox.id,
        action="created",
        new={"name": mailbox.name, "host": mailbox.host, "port": port, "username": username},
    )
    return mailbox


def add_brand(
    session: Session, actor: Actor, *, name: str, support_address: str, from_name: str, signature: str = ""
) -> EmailBrand:
    require(actor, Permission.CHANNEL_MANAGE)
    problems: list[FieldProblem] = []
    address = ""
    try:
        address = normalize_email(support_address)
    except Exception:
        problems.append(FieldProblem(("support_address",), "not an email address"))
    if not name.strip():
        problems.append(FieldProblem(("name",), "must not be empty"))
    if address and session.scalar(select(EmailBrand.id).where(EmailBrand.support_address == address)):
        problems.append(FieldProblem(("support_address",), f"{address} belongs to another brand"))
    if problems:
        raise InvalidInboundError("the brand is not valid", fields=problems)
    brand = EmailBrand(
        name=name.strip(),
        support_address=address,
        from_name=from_name.strip() or name.strip(),
        signature=signature,
    )
    session.add(brand)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="email_brand",
        entity_id=brand.id,
        action="created",
        new={"name": brand.name, "support_address": address},
    )
    return brand
