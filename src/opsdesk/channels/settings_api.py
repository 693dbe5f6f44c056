"""Channel settings under ``/api/v1/channels``: brands, IMAP mailboxes (with a connection test) and
Slack connections. Admins change them; leads may read them. Secrets are write-only.

Bad input answers ``422`` problem+json with every field problem and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels.schemas import (
    BrandIn,
    BrandOut,
    BrandPatch,
    ConnectionCheckOut,
    MailboxIn,
    MailboxOut,
    MailboxPatch,
    SlackConnectionIn,
    SlackConnectionOut,
    SlackConnectionPatch,
)
from opsdesk.channels.service import brands, mailboxes, slack
from opsdesk.config import Settings
from opsdesk.web.auth import api_actor
from opsdesk.web.sessions import database_of, request_session

router = APIRouter()
ActorDep = Annotated[Actor, Depends(api_actor)]
SessionDep = Annotated[Session, Depends(request_session)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# ------------------------------------------------------------------------------------ brands


@router.get("/brands")
def list_brands(actor: ActorDep, session: SessionDep) -> list[BrandOut]:
    return [BrandOut.of(brand) for brand in brands.list_brands(session, actor)]


@router.post("/brands", status_code=status.HTTP_201_CREATED)
def create_brand(body: BrandIn, actor: ActorDep, session: SessionDep) -> BrandOut:
    return BrandOut.of(brands.create_brand(session, actor, brands.BrandValues(**body.model_dump())))


@router.get("/brands/{brand_id}")
def get_brand(brand_id: int, actor: ActorDep, session: SessionDep) -> BrandOut:
    return BrandOut.of(brands.access_brand(session, actor, brand_id))


@router.patch("/brands/{brand_id}")
def update_brand(brand_id: int, body: BrandPatch, actor: ActorDep, session: SessionDep) -> BrandOut:
    current = BrandOut.of(brands.access_brand(session, actor, brand_id)).model_dump(exclude={"id"})
    current.update(body.model_dump(exclude_unset=True, exclude_none=True))
    return BrandOut.of(brands.update_brand(session, actor, brand_id, brands.BrandValues(**current)))


# ------------------------------------------------------------------------------------ mailboxes


@router.get("/mailboxes")
def list_mailboxes(actor: ActorDep, session: SessionDep) -> list[MailboxOut]:
    return [MailboxOut.of(mailbox) for mailbox in mailboxes.list_mailboxes(session, actor)]


@router.post("/mailboxes", status_code=status.HTTP_201_CREATED)
def create_mailbox(body: MailboxIn, request: Request, actor: ActorDep, session: SessionDep) -> MailboxOut:
    values = mailboxes.MailboxValues(**body.model_dump())
    return MailboxOut.of(mailboxes.add_mailbox(session, actor, _settings(request), values))


@router.get("/mailboxes/{mailbox_id}")
def get_mailbox(mailbox_id: int, actor: ActorDep, session: SessionDep) -> MailboxOut:
    return MailboxOut.of(mailboxes.access_mailbox(session, actor, mailbox_id))


@router.patch("/mailboxes/{mailbox_id}")
def update_mailbox(
    mailbox_id: int, body: MailboxPatch, request: Request, actor: ActorDep, session: SessionDep
) -> MailboxOut:
    current = mailboxes.access_mailbox(session, actor, mailbox_id)
    values = {
        "name": current.name,
        "host": current.host,
        "port": current.port,
        "security": current.security,
        "username": current.username,
        "folder": current.folder,
        "poll_interval_seconds": current.poll_interval_seconds,
        "is_active": current.is_active,
        **body.model_dump(exclude_unset=True, exclude_none=True),
    }
    updated = mailboxes.update_mailbox(
        session, actor, _settings(request), mailbox_id, mailboxes.MailboxValues(**values)
    )
    return MailboxOut.of(updated)


@router.delete("/mailboxes/{mailbox_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_mailbox(mailbox_id: int, actor: ActorDep, session: SessionDep) -> Response:
    mailboxes.delete_mailbox(session, actor, mailbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/mailboxes/{mailbox_id}/test")
def check_mailbox(
    mailbox_id: int, request: Request, actor: ActorDep, session: SessionDep
) -> ConnectionCheckOut:
    """Log in to the mailbox now; ``ok`` false with a readable reason when that fails."""
    from opsdesk.channels.imap_polling import check_connection

    require(actor, Permission.CHANNEL_MANAGE)
    mailboxes.access_mailbox(session, actor, mailbox_id)
    check = check_connection(database_of(request), _settings(request), mailbox_id)
    return ConnectionCheckOut(ok=check.ok, message=check.message)


# ------------------------------------------------------------------------------------ Slack


@router.get("/slack-connections")
def list_slack_connections(actor: ActorDep, session: SessionDep) -> list[SlackConnectionOut]:
    return [SlackConnectionOut.of(item) for item in slack.list_connections(session, actor)]


@router.post("/slack-connections", status_code=status.HTTP_201_CREATED)
def create_slack_connection(
    body: SlackConnectionIn, request: Request, actor: ActorDep, session: SessionDep
) -> SlackConnectionOut:
    values = slack.SlackConnectionValues(**body.model_dump())
    return SlackConnectionOut.of(slack.create_connection(session, actor, _settings(request), values))


@router.get("/slack-connections/{connection_id}")
def get_slack_connection(connection_id: int, actor: ActorDep, session: SessionDep) -> SlackConnectionOut:
    return SlackConnectionOut.of(slack.access_connection(session, actor, connection_id))


@router.patch("/slack-connections/{connection_id}")
def update_slack_connection(
    connection_id: int, body: SlackConnectionPatch, request: Request, actor: ActorDep, session: SessionDep
) -> SlackConnectionOut:
    current = slack.access_connection(session, actor, connection_id)
    changes = body.model_dump(exclude_unset=True)
    values = slack.SlackConnectionValues(
        team_id=changes.get("team_id") or current.team_id,
        channel_id=changes.get("channel_id") or current.channel_id,
        name=changes["name"] if changes.get("name") is not None else current.name,
        bot_token=changes.get("bot_token"),
        signing_secret=changes.get("signing_secret"),
        account_id=changes.get("account_id", current.account_id),
    )
    updated = slack.update_connection(session, actor, _settings(request), connection_id, values)
    return SlackConnectionOut.of(updated)


@router.delete("/slack-connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_slack_connection(connection_id: int, actor: ActorDep, session: SessionDep) -> Response:
    slack.disconnect(session, actor, connection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
