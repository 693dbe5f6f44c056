"""The keyword index: kept by triggers on write, and rebuilt after a bulk load."""

from __future__ import annotations

import pytest
from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session

from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service.search import matching_ticket_ids, suspended_index, words_of
from tests.support.factories import make_ticket


def _found(db: Session, query: str) -> set[int]:
    return set(db.scalars(select(Ticket.id).where(and_(Ticket.id.in_(matching_ticket_ids(db, query))))))


def _trigger_definitions(db: Session) -> list[str]:
    if db.get_bind().dialect.name == "sqlite":
        rows = db.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ticket_search%'")
        )
    else:
        rows = db.execute(
            text(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgname LIKE 'ticket_search%' AND NOT tgisinternal"
            )
        )
    return sorted(" ".join(row[0].split()) for row in rows)


def test_words_drop_operators() -> None:
    assert words_of('Refund "NEAR" (invoice) OR -x*') == ["refund", "near", "invoice", "or", "x"]
    assert words_of("  ") == []


def test_bulk_load_rebuilds_the_index_and_restores_the_triggers(db: Session) -> None:
    before = _trigger_definitions(db)
    assert len(before) in (2, 5)  # PostgreSQL: two triggers; SQLite: five
    kept = make_ticket(db, subject="Quokka sighting", body="first")
    with suspended_index(db):
        assert _trigger_definitions(db) == []
        with suspended_index(db):  # nested: the outer one restores
            loaded = make_ticket(db, subject="Bulk loaded", body="Axolotl in the warehouse")
        assert _trigger_definitions(db) == []
    assert _trigger_definitions(db) == before
    assert _found(db, "axolotl") == {loaded.id}
    assert _found(db, "quokka") == {kept.id}
    after = make_ticket(db, subject="After the load", body="Capybara")
    assert _found(db, "capybara") == {after.id}


def _documents(db: Session) -> list[tuple[object, ...]]:
    if db.get_bind().dialect.name == "sqlite":
        # The triggers start the body with the separator before the first message; same words.
        query = "SELECT rowid, subject, ltrim(body, char(10)) FROM ticket_search ORDER BY rowid"
    else:
        query = "SELECT ticket_id, document::text FROM ticket_search ORDER BY ticket_id"
    return [tuple(row) for row in db.execute(text(query))]


def test_rebuild_makes_the_documents_the_triggers_make(db: Session) -> None:
    from opsdesk.tickets.service import add_message
    from tests.support.factories import SYSTEM

    tickets = [
        make_ticket(db, subject=f"Billing question {number}", body="The invoice shows the wrong plan.")
        for number in range(3)
    ]
    for number, ticket in enumerate(tickets):
        for reply in range(number):
            add_message(db, SYSTEM, ticket, body_text=f"Reply {reply}: refunds take five days.", public=True)
    db.flush()
    kept_by_triggers = _documents(db)
    with suspended_index(db):
        pass
    assert _documents(db) == kept_by_triggers
    if db.get_bind().dialect.name == "sqlite":
        # The rebuild's bigger FTS5 buffer is not left behind.
        hash_size = db.scalar(text("SELECT v FROM ticket_search_config WHERE k = 'hashsize'"))
        assert hash_size in (None, 1024 * 1024)


def test_search_pages_newest_first_and_combines_with_filters(db: Session) -> None:
    from opsdesk.tickets.service import update_ticket
    from opsdesk.tickets.service.views import list_tickets, parse_filter
    from tests.support.factories import SYSTEM

    walruses = [make_ticket(db, subject=f"Walrus {number}", body="tusks") for number in range(5)]
    seal = make_ticket(db, subject="Seal", body="no tusks here but a walrus-free zone")  # both words occur
    for ticket in walruses[:2]:
        update_ticket(db, SYSTEM, ticket, {"status": "pending"})
    expected = [seal.id, *sorted((ticket.id for ticket in walruses), reverse=True)]
    seen: list[int] = []
    cursor = None
    while True:
        page = list_tickets(db, SYSTEM, parse_filter({"q": "walrus tusks"}), cursor=cursor, limit=2)
        seen += [ticket.id for ticket in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    pending = list_tickets(db, SYSTEM, parse_filter({"q": "walrus", "status": "pending"}), limit=10)
    assert [ticket.id for ticket in pending.items] == sorted((t.id for t in walruses[:2]), reverse=True)


def test_newest_matches_cross_id_windows(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL asks for the newest matches in growing windows of ids; with a window of two ids
    # the matches below are found over several windows, newest first, none twice or skipped.
    from opsdesk.tickets.service import search

    monkeypatch.setattr(search, "POSTGRES_FIRST_WINDOW", 2)
    matching = []
    for number in range(12):
        ticket = make_ticket(db, subject=f"Ticket {number}", body="narwhal" if number % 3 == 0 else "other")
        if number % 3 == 0:
            matching.append(ticket.id)
    db.flush()
    newest_first = sorted(matching, reverse=True)
    assert search.newest_matching_ids(db, "narwhal", below=None, count=10) == newest_first
    assert search.newest_matching_ids(db, "narwhal", below=None, count=2) == newest_first[:2]
    below = newest_first[1]
    assert search.newest_matching_ids(db, "narwhal", below=below, count=10) == newest_first[2:]
    assert search.newest_matching_ids(db, "nothing-like-it", below=None, count=10) == []
