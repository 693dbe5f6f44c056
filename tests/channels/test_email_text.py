"""Pure parts of email handling: quoting and signature stripping, noise rules, threading clues,
charset fallbacks."""

from __future__ import annotations

import pytest

from opsdesk.channels.email_parsing import decode_text, message_ids_in, parse_email
from opsdesk.channels.email_threading import clean_subject, reply_address, thread_clues
from opsdesk.channels.enums import NoiseKind
from opsdesk.channels.noise import classify_noise, is_automated
from opsdesk.channels.quoting import strip_reply_html, strip_reply_text
from tests.channels.mail import simple_email


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks!\n\nOn Tue, 3 Mar 2026 at 10:02, Jane <jane@x.example> wrote:\n> old", "Thanks!"),
        ("Merci\n\nLe mar. 3 mars 2026 à 10:02, Jane <j@x.example> a écrit :\n> vieux", "Merci"),
        ("Danke\n\nAm 03.03.26 um 10:30 schrieb Jane Doe:\n> alt", "Danke"),
        ("Yes.\n\n-----Original Message-----\nFrom: a\nSent: b\n\nold", "Yes."),
        ("Fine.\n\nFrom: Support <s@x.example>\nSent: Monday\nTo: me\nSubject: s\n\nold", "Fine."),
        ("Short answer\n\n-- \nJane Doe\nCEO", "Short answer"),
        ("Ok\n\nSent from my iPhone", "Ok"),
        ("> only a quote\n> nothing else", "> only a quote\n> nothing else"),
        (
            "On the billing page the total is wrong.\nPlease check.",
            "On the billing page the total is wrong.\nPlease check.",
        ),
    ],
)
def test_strip_reply_text(text: str, expected: str) -> None:
    assert strip_reply_text(text) == expected


def test_forwarded_message_is_content_not_history() -> None:
    text = "See below.\n\n---------- Forwarded message ---------\nFrom: a@b.example\n\nThe original."
    assert strip_reply_text(text) == text


def test_strip_reply_html_cuts_gmail_and_outlook_quotes_but_never_to_nothing() -> None:
    assert strip_reply_html('<div>New</div><div class="gmail_quote">old</div>') == "<div>New</div>"
    assert strip_reply_html('<p>New</p><div id="divRplyFwdMsg">old</div>') == "<p>New</p>"
    only_quote = '<blockquote type="cite">old</blockquote>'
    assert strip_reply_html(only_quote) == only_quote


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "kind"),
    [
        ({"Auto-Submitted": "auto-replied"}, "a@x.example", "Hello", NoiseKind.AUTO_REPLY),
        ({"Auto-Submitted": "no"}, "a@x.example", "Hello", NoiseKind.NONE),
        ({"X-Autoreply": "yes"}, "a@x.example", "Hello", NoiseKind.AUTO_REPLY),
        ({}, "a@x.example", "Out of Office: Re: hello", NoiseKind.AUTO_REPLY),
        ({"Precedence": "bulk"}, "a@x.example", "News", NoiseKind.BULK),
        ({"Precedence": "junk"}, "a@x.example", "News", NoiseKind.BULK),
        ({"Precedence": "list"}, "a@x.example", "News", NoiseKind.BULK),
        ({"List-Id": "<l.x.example>"}, "a@x.example", "News", NoiseKind.BULK),
        ({}, "MAILER-DAEMON@mx.x.example", "Undelivered Mail", NoiseKind.BOUNCE),
        ({}, "postmaster@x.example", "Hi", NoiseKind.BOUNCE),
        ({"X-Failed-Recipients": "b@y.example"}, "a@x.example", "Hi", NoiseKind.BOUNCE),
        ({"X-Auto-Response-Suppress": "All"}, "a@x.example", "Real question", NoiseKind.SUPPRESS_REQUESTED),
        ({}, "a@x.example", "Real question", NoiseKind.NONE),
    ],
)
def test_noise_rules(headers: dict[str, str], sender: str, subject: str, kind: NoiseKind) -> None:
    parsed = parse_email(simple_email(sender=sender, subject=subject, headers=headers))
    assert classify_noise(parsed) is kind


def test_only_auto_replies_and_bounces_are_automated() -> None:
    assert {kind for kind in NoiseKind if is_automated(kind)} == {NoiseKind.AUTO_REPLY, NoiseKind.BOUNCE}


def test_thread_clues_order_and_sources() -> None:
    raw = (
        b"From: a@x.example\r\nTo: support+abcdef0123456789@example.com\r\nCc: other@x.example\r\n"
        b"Subject: Re: [#42] Help\r\nMessage-ID: <self@x.example>\r\nIn-Reply-To: <parent@x.example>\r\n"
        b"References: <root@x.example> <parent@x.example>\r\n\r\nbody\r\n"
    )
    clues = thread_clues(parse_email(raw))
    assert clues.message_ids == ("parent@x.example", "root@x.example")
    assert clues.reply_tokens == ("abcdef0123456789",)
    assert clues.subject_ticket_ids == (42,)


def test_subject_and_address_helpers() -> None:
    assert clean_subject("RE: AW: Fwd: [#12] Login broken") == "Login broken"
    assert reply_address("help@brand.example", "tok123") == "help+tok123@brand.example"
    assert message_ids_in("<a@b> junk <c@d>") == ("a@b", "c@d")
    assert message_ids_in("bare@id.example") == ("bare@id.example",)


def test_charset_fallbacks() -> None:
    assert decode_text("café".encode("cp1252"), "utf-8") == ("café", True)
    assert decode_text("ログイン".encode("shift_jis"), "x-sjis") == ("ログイン", False)
    assert decode_text(b"plain", "no-such-charset") == ("plain", True)


def test_message_without_id_gets_a_stable_derived_one() -> None:
    raw = simple_email(message_id=None)
    first, second = parse_email(raw), parse_email(raw)
    assert first.message_id == second.message_id
    assert first.message_id.startswith("sha256-")
    assert first.has_own_message_id is False
