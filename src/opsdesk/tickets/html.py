"""Turning outside HTML into something safe to show, and into plain text.

Pure: no I/O. nh3 (ammonia) sanitizes; the text version keeps paragraphs and line breaks.
"""

from __future__ import annotations

import html
import re

import nh3

_ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
}
_BLOCK_END = re.compile(r"</(p|div|li|tr|h[1-6]|blockquote|pre)\s*>|<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n{3,}")


def sanitize_html(raw: str) -> str:
    """Keep formatting, drop scripts, styles, event handlers and unsafe URLs."""
    return nh3.clean(
        raw,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        link_rel="noopener noreferrer nofollow",
    )


def html_to_text(raw: str) -> str:
    """A readable plain-text version of (sanitized) HTML."""
    cleaned = nh3.clean(raw, tags=_ALLOWED_TAGS, attributes={})
    with_breaks = _BLOCK_END.sub("\n", cleaned)
    text = html.unescape(_TAG.sub("", with_breaks))
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    """Plain text as safe HTML paragraphs (for emails and display)."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text.strip()) if part]
    return "".join("<p>" + html.escape(part).replace("\n", "<br>") + "</p>" for part in paragraphs)
