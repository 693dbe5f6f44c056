"""Email and chat brands as every inbound email and chat message reads them: immutable snapshots
from the configuration cache (:mod:`opsdesk.config_cache`, docs/adr/0004).

Brands are configuration: admins edit them a few times a year, while every inbound email looks
its brand up by recipient address and every chat message reads its chat brand (the email brand
its tickets go out under, the accept timeout). The ``email_brands`` and ``chat_brands`` tables
have the configuration-generation triggers (migration ``core_03``), so a saved brand is seen by
the next email or message in every process, and reading one costs no query while nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import config_cache
from opsdesk.channels.models import ChatBrand, EmailBrand


@dataclass(frozen=True, slots=True)
class EmailBrandInfo:
    """What receiving and sending mail needs of a brand."""

    id: int
    from_name: str
    from_address: str
    support_address: str
    signature: str
    receipt_template: str


@dataclass(frozen=True, slots=True)
class ChatBrandInfo:
    """A chat widget's brand as the visitor's socket and the chat pipeline read it."""

    id: int
    key: str
    name: str
    greeting: str
    allowed_origins: tuple[str, ...]
    email_brand_id: int | None
    accept_timeout_seconds: int
    is_active: bool


@dataclass(frozen=True, slots=True)
class EmailBrands:
    # Built once by the loader and never changed: shared read-only between threads.
    by_id: Mapping[int, EmailBrandInfo]
    by_support_address: Mapping[str, EmailBrandInfo]


@dataclass(frozen=True, slots=True)
class ChatBrands:
    by_id: Mapping[int, ChatBrandInfo]
    by_key: Mapping[str, ChatBrandInfo]


def _load_email_brands(session: Session) -> EmailBrands:
    brands = [
        EmailBrandInfo(*row)
        for row in session.execute(
            select(
                EmailBrand.id,
                EmailBrand.from_name,
                EmailBrand.from_address,
                EmailBrand.support_address,
                EmailBrand.signature,
                EmailBrand.receipt_template,
            ).order_by(EmailBrand.id)
        )
    ]
    return EmailBrands(
        by_id={brand.id: brand for brand in brands},
        by_support_address={brand.support_address: brand for brand in brands},
    )


def _load_chat_brands(session: Session) -> ChatBrands:
    brands = [
        ChatBrandInfo(
            id=brand.id,
            key=brand.key,
            name=brand.name,
            greeting=brand.greeting,
            allowed_origins=tuple(brand.allowed_origins),
            email_brand_id=brand.email_brand_id,
            accept_timeout_seconds=brand.accept_timeout_seconds,
            is_active=brand.is_active,
        )
        for brand in session.scalars(select(ChatBrand).order_by(ChatBrand.id))
    ]
    return ChatBrands(
        by_id={brand.id: brand for brand in brands}, by_key={brand.key: brand for brand in brands}
    )


def email_brands(session: Session) -> EmailBrands:
    return config_cache.cached(session, "channels.email_brands", _load_email_brands)


def chat_brands(session: Session) -> ChatBrands:
    return config_cache.cached(session, "channels.chat_brands", _load_chat_brands)
