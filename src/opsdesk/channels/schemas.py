"""Request and response shapes of the channel settings API (brands, mailboxes, Slack).

Secrets go in (``password``, ``bot_token``, ``signing_secret``) and never come out: answers say
only whether one is set.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.channels.models import EmailBrand, ImapMailbox, SlackConnection


class BrandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=120)
    support_address: str = Field(max_length=320)
    from_address: str = Field("", max_length=320)
    from_name: str = Field("", max_length=200)
    signature: str = Field("", max_length=5000)
    receipt_template: str = Field("", max_length=20000)


class BrandPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=120)
    support_address: str | None = Field(None, max_length=320)
    from_address: str | None = Field(None, max_length=320)
    from_name: str | None = Field(None, max_length=200)
    signature: str | None = Field(None, max_length=5000)
    receipt_template: str | None = Field(None, max_length=20000)


class BrandOut(BaseModel):
    id: int
    name: str
    support_address: str
    from_address: str
    from_name: str
    signature: str
    receipt_template: str

    @classmethod
    def of(cls, brand: EmailBrand) -> BrandOut:
        return cls(
            id=brand.id,
            name=brand.name,
            support_address=brand.support_address,
            from_address=brand.from_address,
            from_name=brand.from_name,
            signature=brand.signature,
            receipt_template=brand.receipt_template,
        )


class MailboxIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=120)
    host: str = Field(max_length=253)
    port: int = 993
    security: str = "tls"
    username: str = Field(max_length=320)
    password: str = Field(max_length=1000)
    folder: str = Field("INBOX", max_length=200)
    poll_interval_seconds: int = 60
    is_active: bool = True


class MailboxPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=120)
    host: str | None = Field(None, max_length=253)
    port: int | None = None
    security: str | None = None
    username: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=1000)
    folder: str | None = Field(None, max_length=200)
    poll_interval_seconds: int | None = None
    is_active: bool | None = None


class MailboxOut(BaseModel):
    id: int
    name: str
    host: str
    port: int
    security: str
    username: str
    has_password: bool
    folder: str
    poll_interval_seconds: int
    is_active: bool
    last_polled_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, mailbox: ImapMailbox) -> MailboxOut:
        return cls(
            id=mailbox.id,
            name=mailbox.name,
            host=mailbox.host,
            port=mailbox.port,
            security=mailbox.security,
            username=mailbox.username,
            has_password=bool(mailbox.password),
            folder=mailbox.folder,
            poll_interval_seconds=mailbox.poll_interval_seconds,
            is_active=mailbox.is_active,
            last_polled_at=mailbox.last_polled_at,
            last_error=mailbox.last_error,
        )


class ConnectionCheckOut(BaseModel):
    ok: bool
    message: str


class SlackConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: str = Field(max_length=40)
    channel_id: str = Field(max_length=40)
    name: str = Field("", max_length=200)
    bot_token: str = Field(max_length=500)
    signing_secret: str | None = Field(None, max_length=500)
    account_id: int | None = None


class SlackConnectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: str | None = Field(None, max_length=40)
    channel_id: str | None = Field(None, max_length=40)
    name: str | None = Field(None, max_length=200)
    bot_token: str | None = Field(None, max_length=500)
    signing_secret: str | None = Field(None, max_length=500)
    account_id: int | None = None


class SlackConnectionOut(BaseModel):
    id: int
    team_id: str
    channel_id: str
    name: str
    has_bot_token: bool
    has_signing_secret: bool
    account_id: int | None

    @classmethod
    def of(cls, connection: SlackConnection) -> SlackConnectionOut:
        return cls(
            id=connection.id,
            team_id=connection.team_id,
            channel_id=connection.channel_id,
            name=connection.name,
            has_bot_token=bool(connection.bot_token),
            has_signing_secret=connection.signing_secret is not None,
            account_id=connection.account_id,
        )
