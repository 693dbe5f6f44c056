"""Configuring the IMAP mailboxes opsdesk polls (admins manage them; leads may look).

Invariants: the password is sealed (:mod:`opsdesk.channels.secret_box`) before it is stored and
never comes back out of this module except through :func:`mailbox_password`, which the poller
alone calls; an update with an empty password keeps the stored one; bad input raises with every
problem listed and changes nothing; every change is audited (never with the password).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels import secret_box
from opsdesk.channels.errors import ChannelSettingNotFoundError, InvalidInboundError
from opsdesk.channels.models import ImapMailbox
from opsdesk.channels.service.brands import add_brand  # re-exported: brands lived here before
from opsdesk.config import Settings
from opsdesk.errors import FieldProblem

__all__ = ["add_brand", "add_imap_mailbox", "add_mailbox", "update_mailbox"]
SECURITY_MODES = ("none", "starttls", "tls")
MIN_POLL_SECONDS = 10
MAX_POLL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class MailboxValues:
    """What an admin sets on a mailbox; ``password`` None or "" keeps the stored one."""

    name: str
    host: str
    username: str
    password: str | None = None
    port: int = 993
    security: str = "tls"
    folder: str = "INBOX"
    poll_interval_seconds: int = 60
    is_active: bool = True


def _problems(session: Session, values: MailboxValues, *, mailbox_id: int | None) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    name = values.name.strip()
    if not name:
        problems.append(FieldProblem(("name",), "must not be empty"))
    elif len(name) > 120:
        problems.append(FieldProblem(("name",), "must be at most 120 characters"))
    else:
        other = session.scalar(select(ImapMailbox.id).where(ImapMailbox.name == name))
        if other is not None and other != mailbox_id:
            problems.append(FieldProblem(("name",), f"a mailbox named {name!r} exists"))
    if not values.host.strip():
        problems.append(FieldProblem(("host",), "must not be empty"))
    elif len(values.host.strip()) > 253 or any(char.isspace() for char in values.host.strip()):
        problems.append(FieldProblem(("host",), "is not a host name"))
    if not 0 < values.port < 65536:
        problems.append(FieldProblem(("port",), "must be between 1 and 65535"))
    if values.security not in SECURITY_MODES:
        problems.append(FieldProblem(("security",), f"must be one of {', '.join(SECURITY_MODES)}"))
    if not values.username:
        problems.append(FieldProblem(("username",), "must not be empty"))
    if mailbox_id is None and not values.password:
        problems.append(FieldProblem(("password",), "must not be empty"))
    if not values.folder.strip():
        problems.append(FieldProblem(("folder",), "must not be empty"))
    if not MIN_POLL_SECONDS <= values.poll_interval_seconds <= MAX_POLL_SECONDS:
        problems.append(
            FieldProblem(
                ("poll_interval_seconds",),
                f"must be between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS} seconds",
            )
        )
    return problems


def _public(mailbox: ImapMailbox) -> dict[str, object]:
    return {
        "name": mailbox.name,
        "host": mailbox.host,
        "port": mailbox.port,
        "security": mailbox.security,
        "username": mailbox.username,
        "folder": mailbox.folder,
        "poll_interval_seconds": mailbox.poll_interval_seconds,
        "is_active": mailbox.is_active,
    }


def add_mailbox(session: Session, actor: Actor, settings: Settings, values: MailboxValues) -> ImapMailbox:
    require(actor, Permission.CHANNEL_MANAGE)
    problems = _problems(session, values, mailbox_id=None)
    if problems:
        raise InvalidInboundError("the mailbox is not valid", fields=problems)
    mailbox = ImapMailbox(
        name=values.name.strip(),
        host=values.host.strip(),
        port=values.port,
        security=values.security,
        username=values.username,
        password=secret_box.seal(settings, values.password or ""),
        folder=values.folder.strip(),
        poll_interval_seconds=values.poll_interval_seconds,
        is_active=values.is_active,
        last_uid=0,
    )
    session.add(mailbox)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="imap_mailbox",
        entity_id=mailbox.id,
        action="created",
        new=_public(mailbox),
    )
    return mailbox


def add_imap_mailbox(
    session: Session,
    actor: Actor,
    *,
    settings: Settings,
    name: str,
    host: str,
    port: int,
    username: str,
    password: str,
    security: str = "tls",
    folder: str = "INBOX",
    poll_interval_seconds: int = 60,
    is_active: bool = True,
) -> ImapMailbox:
    return add_mailbox(
        session,
        actor,
        settings,
        MailboxValues(
            name=name,
            host=host,
            port=port,
            username=username,
            password=password,
            security=security,
            folder=folder,
            poll_interval_seconds=poll_interval_seconds,
            is_active=is_active,
        ),
    )


def update_mailbox(
    session: Session, actor: Actor, settings: Settings, mailbox_id: int, values: MailboxValues
) -> ImapMailbox:
    require(actor, Permission.CHANNEL_MANAGE)
    mailbox = access_mailbox(session, actor, mailbox_id)
    problems = _problems(session, values, mailbox_id=mailbox.id)
    if problems:
        raise InvalidInboundError("the mailbox is not valid", fields=problems)
    before = _public(mailbox)
    moved = (values.host.strip(), values.username, values.folder.strip()) != (
        mailbox.host,
        mailbox.username,
        mailbox.folder,
    )
    mailbox.name = values.name.strip()
    mailbox.host = values.host.strip()
    mailbox.port = values.port
    mailbox.security = values.security
    mailbox.username = values.username
    mailbox.folder = values.folder.strip()
    mailbox.poll_interval_seconds = values.poll_interval_seconds
    mailbox.is_active = values.is_active
    if moved:  # another folder or account: its UIDs mean nothing here; dedupe keeps re-reads single
        mailbox.last_uid = 0
        mailbox.uid_validity = None
    changed_password = bool(values.password)
    if values.password:
        mailbox.password = secret_box.seal(settings, values.password)
    mailbox.last_error = None
    session.flush()
    after = _public(mailbox)
    changes = {key: value for key, value in after.items() if before[key] != value}
    if changed_password:
        changes["password"] = "changed"  # noqa: S105 - the audit says it changed, never the value
    if changes:
        audit.record(
            session,
            actor,
            entity_type="imap_mailbox",
            entity_id=mailbox.id,
            action="updated",
            old={key: before.get(key) for key in changes if key != "password"},
            new=changes,
        )
    return mailbox


def delete_mailbox(session: Session, actor: Actor, mailbox_id: int) -> None:
    require(actor, Permission.CHANNEL_MANAGE)
    mailbox = access_mailbox(session, actor, mailbox_id)
    audit.record(
        session,
        actor,
        entity_type="imap_mailbox",
        entity_id=mailbox.id,
        action="deleted",
        old=_public(mailbox),
    )
    session.delete(mailbox)
    session.flush()


def list_mailboxes(session: Session, actor: Actor) -> list[ImapMailbox]:
    require(actor, Permission.CHANNEL_READ)
    return list(session.scalars(select(ImapMailbox).order_by(ImapMailbox.name)))


def access_mailbox(session: Session, actor: Actor, mailbox_id: int) -> ImapMailbox:
    require(actor, Permission.CHANNEL_READ)
    mailbox = session.get(ImapMailbox, mailbox_id)
    if mailbox is None:
        raise ChannelSettingNotFoundError(f"mailbox {mailbox_id} does not exist")
    return mailbox


def mailbox_password(settings: Settings, mailbox: ImapMailbox) -> str:
    """The plain password, for logging in to the IMAP server (the poller's use only)."""
    return secret_box.reveal(settings, mailbox.password)
