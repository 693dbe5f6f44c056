"""The composer: text + HTML alternatives, and attachments wrapped around them when given."""

from __future__ import annotations

from opsdesk.channels.email_composing import EmailAttachment, OutgoingEmail, compose

BASE = OutgoingEmail(
    message_id="opsdesk.test.1@desk.example.com",
    from_name="Desk",
    from_address="support@desk.example.com",
    to_address="lead@example.com",
    subject="Report",
    text="plain",
    html="<p>rich</p>",
)


def test_without_attachments_the_message_is_the_alternative_only() -> None:
    message = compose(BASE)
    assert message.get_content_type() == "multipart/alternative"
    assert list(message.iter_attachments()) == []


def test_attachments_follow_the_text_and_html_bodies() -> None:
    pdf = EmailAttachment("report.pdf", "application/pdf", b"%PDF-1.7 test")
    message = compose(
        OutgoingEmail(**{**{f: getattr(BASE, f) for f in BASE.__dataclass_fields__}, "attachments": (pdf,)})
    )
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(("html", "plain"))
    assert body is not None
    assert body.get_content().strip() == "<p>rich</p>"
    (attached,) = list(message.iter_attachments())
    assert (attached.get_content_type(), attached.get_filename()) == ("application/pdf", "report.pdf")
    assert attached.get_content() == b"%PDF-1.7 test"
