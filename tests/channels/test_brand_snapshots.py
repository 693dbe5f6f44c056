"""Email and chat brands are read from the configuration cache: no brand query per inbound email
or chat message once loaded, and a saved brand is seen by the next read (database triggers bump
the configuration generation), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from opsdesk.channels.errors import OriginNotAllowedError
from opsdesk.channels.service import chat, chat_presence
from opsdesk.channels.service.brands import BrandValues, create_brand, update_brand
from opsdesk.channels.service.outbound import brand_for_recipients, sender_of, set_ticket_brand
from opsdesk.config import Settings
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import SYSTEM, make_ticket, make_user, staff_actor

ORIGIN = "https://shop.example"


def test_email_brands_come_from_the_cache_and_follow_every_change(
    db: Session, database: BoundDatabase
) -> None:
    older = create_brand(
        db, SYSTEM, BrandValues(name="Globex", support_address="care@globex.example", from_name="Globex Care")
    )
    newer = create_brand(
        db, SYSTEM, BrandValues(name="Initech", support_address="help@initech.example", from_name="Initech")
    )
    ticket = make_ticket(db)
    set_ticket_brand(db, ticket.id, newer.id)
    assert brand_for_recipients(db, ("care+x1@globex.example",)) is not None  # loads the snapshot

    with recorded_statements(database) as statements:
        for _ in range(3):  # three inbound emails
            found = brand_for_recipients(db, ("help@initech.example", "care+x1@globex.example"))
            assert found is not None
            assert found.id == older.id  # mail to two brands belongs to the older one
        assert sender_of(db, ticket.id, Settings())[:2] == ("Initech", "help@initech.example")
    assert not [statement for statement in statements if "email_brands" in statement]

    update_brand(
        db,
        SYSTEM,
        older.id,
        BrandValues(name="Globex", support_address="care@globex.example", from_name="Globex Support"),
    )
    found = brand_for_recipients(db, ("care@globex.example",))
    assert found is not None
    assert found.from_name == "Globex Support"
    assert brand_for_recipients(db, ("someone@else.example",)) is None


def test_chat_brands_come_from_the_cache_and_follow_every_change(
    db: Session, database: BoundDatabase
) -> None:
    brand = chat.create_brand(
        db, SYSTEM, key="acme", name="Acme", allowed_origins=[ORIGIN], accept_timeout_seconds=60
    )
    chat_presence.set_presence(db, staff_actor(make_user(db)), "online")
    assert chat.brand_for_origin(db, "acme", ORIGIN).id == brand.id  # loads the snapshot

    with recorded_statements(database) as statements:
        found = chat.brand_for_origin(db, "acme", ORIGIN)
        conversation = chat.start_conversation(
            db, found, name="Kim", email="kim@customer.example", origin=ORIGIN, client_address="203.0.113.9"
        ).conversation
        for number in range(3):
            stored = chat.store_visitor_message(db, conversation, client_id=f"c-{number}", body="Hello")
            chat.process_visitor_message(db, stored.raw_inbound_id)
    assert conversation.status == "waiting"
    assert not [statement for statement in statements if "chat_brands" in statement]

    chat.set_allowed_origins(db, SYSTEM, brand.id, ["https://new.example"])
    with pytest.raises(OriginNotAllowedError):
        chat.brand_for_origin(db, "acme", ORIGIN)
    assert chat.brand_for_origin(db, "acme", "https://new.example").allowed_origins == (
        "https://new.example",
    )
