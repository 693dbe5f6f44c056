"""The corpus of real-world oddities: every message lands where the manifest says (0 threading
errors), with the text, HTML and attachments it should have."""

from __future__ import annotations

from sqlalchemy import func, select

from opsdesk.channels.corpus import default_corpus_dir, replay_corpus
from opsdesk.channels.models import OutboundEmail, RawInbound
from opsdesk.config import Settings
from opsdesk.tickets.models import Ticket
from tests.support.databases import BoundDatabase


def test_corpus_threads_every_message_correctly(database: BoundDatabase, settings: Settings) -> None:
    report = replay_corpus(database, settings)

    assert report.messages == 27
    assert report.problems == []
    assert report.threading_errors == 0
    with database.transaction(write=False) as session:
        # one raw row per distinct message; the duplicate was not stored again
        assert session.scalar(select(func.count()).select_from(RawInbound)) == 26
        # 15 new tickets (A B C D E F G H H2 I J N Q S V), all from email
        assert session.scalar(select(func.count()).select_from(Ticket)) == 15
        assert set(session.scalars(select(Ticket.channel))) == {"email"}
        # receipts for the 13 new tickets a person wrote; none for bulk, suppressed or automated mail
        assert session.scalar(select(func.count()).where(OutboundEmail.kind == "receipt")) == 13
        bounced = session.scalars(select(OutboundEmail.status).where(OutboundEmail.status == "bounced")).all()
        assert bounced == ["bounced"]


def test_corpus_fixtures_are_all_listed() -> None:
    folder = default_corpus_dir()
    import json

    listed = {entry["file"] for entry in json.loads((folder / "manifest.json").read_text("utf-8"))}
    assert listed == {path.name for path in folder.glob("*.eml")}
