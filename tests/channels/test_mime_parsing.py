"""The fast MIME split (:func:`opsdesk.channels.email_parsing.parse_mime`) builds the same tree as
the stdlib's feed parser: on the corpus of real-world oddities and on generated multipart mail
(nesting, CRLF or LF, preambles and epilogues, blanks after delimiters, lines that only look like
delimiters, missing closing delimiters, embedded messages, parts without headers)."""

from __future__ import annotations

import base64
import quopri
from email.message import Message

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsdesk.channels.corpus import default_corpus_dir
from opsdesk.channels.email_parsing import parse_email, parse_mime, parse_mime_stdlib, parsed_from_mime


def _tree(message: Message) -> object:
    """Everything the parse decided, part by part."""
    payload = message.get_payload()
    if isinstance(payload, list):
        body: object = [_tree(part) for part in payload]
    else:
        body = (payload, message.get_payload(decode=True))
    return (message.items(), message.get_content_type(), message.is_multipart(), body)


CORPUS = sorted(default_corpus_dir().glob("*.eml"))


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_the_corpus_parses_as_the_stdlib_parses_it(path: object) -> None:
    raw = path.read_bytes()  # type: ignore[attr-defined]
    assert _tree(parse_mime(raw)) == _tree(parse_mime_stdlib(raw))
    assert parse_email(raw) == parsed_from_mime(parse_mime_stdlib(raw), raw)


_WORDS = st.sampled_from(
    [
        *("hello", "Grüße", "naïve", "--", "-- ", "=3D", "line", "\t", "", "привет", "ok."),
        *("--b0", "--b0x", "From:"),  # a delimiter line, and a line that only starts like one
    ]
)
_TEXT = st.lists(st.lists(_WORDS, max_size=6).map(" ".join), max_size=6)


@st.composite
def _leaf(draw: st.DrawFn, eol: str) -> str:
    lines = draw(_TEXT)
    kind = draw(st.sampled_from(["plain", "html", "qp", "base64", "bare", "attachment", "embedded"]))
    text = eol.join(lines)
    if kind == "bare":  # a part with no headers at all, only a blank line and a body
        return eol + text
    if kind == "embedded":
        inner = eol.join(["From: a@x.example", "Subject: inner", "Message-ID: <in@x.example>", "", text])
        return eol.join(["Content-Type: message/rfc822", "", inner])
    if kind == "qp":
        body = quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", eol)
        headers = ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: quoted-printable"]
    elif kind in ("base64", "attachment"):
        encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", eol)
        body = encoded
        headers = ["Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64"]
        if kind == "attachment":
            headers.append('Content-Disposition: attachment; filename="a.bin"')
    else:
        body = text
        headers = [f'Content-Type: text/{kind}; charset="utf-8"', "Content-Transfer-Encoding: 8bit"]
    return eol.join([*headers, "", body])


@st.composite
def _multipart(draw: st.DrawFn, eol: str, depth: int) -> str:
    boundary = f"b{depth}"
    subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
    children = draw(
        st.lists(
            _leaf(eol) if depth >= 2 else st.one_of(_leaf(eol), _multipart(eol, depth + 1)),
            min_size=1,
            max_size=3,
        )
    )
    blanks = draw(st.sampled_from(["", " ", "\t ", "  "]))
    preamble = draw(st.sampled_from(["", "This is a multi-part message in MIME format." + eol]))
    epilogue = draw(st.sampled_from(["", eol, "epilogue" + eol, "--" + boundary + eol]))
    closed = draw(st.booleans())
    parts = "".join(f"--{boundary}{blanks}{eol}{child}{eol}" for child in children)
    closing = f"--{boundary}--{blanks}{eol}{epilogue}" if closed else ""
    content_type = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    return eol.join([content_type, "", preamble + parts + closing])


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    body = draw(st.one_of(_multipart(eol, 0), _leaf(eol)))
    head = eol.join(
        ["From: Kim <kim@x.example>", "To: support@example.com", "Subject: Hi", "MIME-Version: 1.0"]
    )
    return (head + eol + body).encode("utf-8")


@given(_message())
def test_generated_mail_parses_as_the_stdlib_parses_it(raw: bytes) -> None:
    assert _tree(parse_mime(raw)) == _tree(parse_mime_stdlib(raw))
    assert parse_email(raw) == parsed_from_mime(parse_mime_stdlib(raw), raw)


def test_a_multipart_without_its_closing_delimiter_is_left_to_the_stdlib() -> None:
    raw = (
        b'From: a@x.example\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--zz\r\n\r\nsecond, never closed\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "first\n\nsecond, never closed"
    assert _tree(parse_mime(raw)) == _tree(parse_mime_stdlib(raw))


def _decoded_the_long_way(raw: str) -> str:
    """What decode_header_value did for every value before it took plain values as they are."""
    from email.header import decode_header, make_header

    try:
        text = str(make_header(decode_header(raw)))
    except ValueError:  # non-ASCII text (8-bit bytes kept as surrogates) cannot be a Header
        text = "".join(value if isinstance(value, str) else "" for value, _ in decode_header(raw))
    return " ".join(text.split())


_HEADER_PIECES = ["a", "Z", " ", "\t", "\r\n ", "é", "\udcc3", "<", "@", ",", '"', "=", "?"]


@given(st.lists(st.sampled_from(_HEADER_PIECES)).map("".join))
def test_a_header_without_encoded_words_is_taken_as_it_is(raw: str) -> None:
    from opsdesk.channels.email_parsing import decode_header_value

    if "=?" not in raw:
        assert decode_header_value(raw) == _decoded_the_long_way(raw)


def test_encoded_words_are_still_decoded() -> None:
    from opsdesk.channels.email_parsing import decode_header_value

    assert decode_header_value("=?utf-8?q?Gr=C3=BC=C3=9Fe?=  aus  Wien") == "Grüße aus Wien"
    assert decode_header_value("=?x-unknown-charset?q?abc?=") == "abc"


_ADDRESS_PIECES = [
    "kim",
    "K",
    "Lee",
    "O'Brien",
    "j",
    ".",
    " ",
    "  ",
    "-",
    "+tag",
    "@",
    "x.example",
    "<",
    ">",
    "_",
]
_ADDRESS_PIECES += ['"', ",", "(c)", ":", ";", "\\", "=?utf-8?q?J=C3=B6rg?= ", "Jörg", "[1.2.3.4]", "!", "#"]


_NAME_WORDS = st.sampled_from(["Kim", "Lee", "O'Brien", "J", "J.", "de", "van-Dam", "3M", "Ann-Marie", "x_y"])
_LOCAL_PARTS = st.sampled_from(
    ["kim", "k.lee", "kim+tag", "o'brien", "a_b", "x-y", "a..b", ".a", "a.", "a=b"]
)
_DOMAINS = st.sampled_from(["x.example", "X.Example", "mail.x.example", "x", "x..example", "-x.example"])


@st.composite
def _plausible_address(draw: st.DrawFn) -> str:
    address = f"{draw(_LOCAL_PARTS)}@{draw(_DOMAINS)}"
    if draw(st.booleans()):
        return draw(st.sampled_from(["", " "])) + address + draw(st.sampled_from(["", " "]))
    separator = draw(st.sampled_from([" ", ".", ". ", "  ", "-"]))
    name = separator.join(draw(st.lists(_NAME_WORDS, min_size=1, max_size=3)))
    return f"{name}{draw(st.sampled_from(['', ' ', '  ']))}<{address}>"


@given(st.one_of(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=12).map("".join), _plausible_address()))
def test_plain_addresses_are_read_as_getaddresses_reads_them(value: str) -> None:
    from email.utils import getaddresses

    from opsdesk.channels.email_parsing import addresses_in, decode_header_value

    expected = []
    for name, address in getaddresses([decode_header_value(value)]):
        address = address.strip().strip("<>").lower()
        if "@" in address and " " not in address:
            expected.append((name.strip().strip('"'), address))
    assert addresses_in([value]) == expected


@pytest.mark.parametrize(
    "value",
    ["kim@x.example", "Kim Lee <Kim@X.example>", "J. Doe <j.doe+t@x.example>", "O'Brien<o@x.example>"],
)
def test_plain_addresses_take_the_short_way(value: str) -> None:
    from opsdesk.channels.email_parsing import _plain_address, decode_header_value

    assert _plain_address(decode_header_value(value)) is not None
