"""Charts drawn server-side as SVG: readable without JavaScript, printable in the PDF report.

Every chart is an ``<svg role="img">`` labelled by its ``<title>`` and a ``<desc>`` that states
the data in words (the text alternative screen readers read); each bar and point also carries
its own ``<title>`` (a tooltip) and, when given, a link to the tickets behind it. Text is escaped
here, so the markup is safe to embed. Pure: no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#4b5563", "#db2777")
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Datum:
    label: str
    value: float
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    points: Sequence[Datum]


def _number(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _open(width: int, height: int, title: str, description: str) -> tuple[str, str]:
    number = next(_ids)
    title_id, desc_id = f"chart-title-{number}", f"chart-desc-{number}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-labelledby="{title_id} {desc_id}" '
        'font-family="DejaVu Sans, sans-serif" font-size="11">'
        f'<title id="{title_id}">{escape(title)}</title><desc id="{desc_id}">{escape(description)}</desc>'
    )
    return head, "</svg>"


def _linked(href: str | None, inner: str) -> str:
    return f'<a href="{escape(href)}">{inner}</a>' if href else inner


def bar_chart(
    title: str,
    data: Sequence[Datum],
    *,
    width: int = 560,
    bar_height: int = 22,
    format_value: Callable[[float], str] = _number,
) -> str:
    """Horizontal bars, one per datum, largest label space on the left."""
    label_width = min(220, max((len(datum.label) for datum in data), default=4) * 7 + 12)
    height = max(1, len(data)) * (bar_height + 6) + 10
    description = "; ".join(f"{datum.label}: {format_value(datum.value)}" for datum in data) or "no data"
    head, tail = _open(width, height, title, description)
    parts = [head]
    largest = max((datum.value for datum in data), default=0) or 1
    room = width - label_width - 70
    for index, datum in enumerate(data):
        y = 5 + index * (bar_height + 6)
        length = max(1.0, room * max(datum.value, 0) / largest)
        text = f"{datum.label}: {format_value(datum.value)}"
        bar = (
            f"<g><title>{escape(text)}</title>"
            f'<text x="{label_width - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">{escape(datum.label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{PALETTE[0]}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + bar_height * 0.7:.1f}">{escape(format_value(datum.value))}</text></g>'
        )
        parts.append(_linked(datum.href, bar))
    parts.append(tail)
    return "".join(parts)


def line_chart(
    title: str,
    lines: Sequence[Line],
    *,
    width: int = 560,
    height: int = 220,
    format_value: Callable[[float], str] = _number,
) -> str:
    """One or more series over the same ordered labels (the x axis), with a legend."""
    labels: list[str] = []
    for line in lines:
        for datum in line.points:
            if datum.label not in labels:
                labels.append(datum.label)
    description = (
        " | ".join(
            f"{line.name}: " + ", ".join(f"{d.label} {format_value(d.value)}" for d in line.points)
            for line in lines
        )
        or "no data"
    )
    head, tail = _open(width, height, title, description)
    left, right, top, bottom = 56, 36, 12, 40 + 14 * ((len(lines) + 2) // 3)
    plot_width, plot_height = width - left - right, height - top - bottom
    values = [datum.value for line in lines for datum in line.points]
    high = max(values, default=1) or 1
    low = min(0.0, min(values, default=0))
    span = (high - low) or 1

    def x_of(label: str) -> float:
        if len(labels) <= 1:
            return left + plot_width / 2
        return left + plot_width * labels.index(label) / (len(labels) - 1)

    def y_of(value: float) -> float:
        return top + plot_height * (1 - (value - low) / span)

    parts = [head, '<g stroke="#d1d5db">']
    for step in range(5):
        value = low + span * step / 4
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" stroke="none" fill="#374151">'
            f"{escape(format_value(value))}</text>"
        )
    parts.append("</g>")
    shown = max(1, len(labels) // 8)
    for index, label in enumerate(labels):
        if index % shown == 0:
            parts.append(
                f'<text x="{x_of(label):.1f}" y="{top + plot_height + 14}" text-anchor="middle" fill="#374151">'
                f"{escape(label)}</text>"
            )
    for number, line in enumerate(lines):
        color = PALETTE[number % len(PALETTE)]
        path = " ".join(f"{x_of(d.label):.1f},{y_of(d.value):.1f}" for d in line.points)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for datum in line.points:
            dot = (
                f'<circle cx="{x_of(datum.label):.1f}" cy="{y_of(datum.value):.1f}" r="3" fill="{color}">'
                f"<title>{escape(f'{line.name}, {datum.label}: {format_value(datum.value)}')}</title></circle>"
            )
            parts.append(_linked(datum.href, dot))
        legend_x = left + (number % 3) * (plot_width / 3)
        legend_y = height - bottom + 30 + 14 * (number // 3)
        parts.append(
            f'<rect x="{legend_x:.1f}" y="{legend_y - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14:.1f}" y="{legend_y}">{escape(line.name)}</text>'
        )
    parts.append(tail)
    return "".join(parts)


def format_duration(seconds: float) -> str:
    """Seconds as the unit a person reads: 45s, 12m, 3.4h, 2.1d."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_share(share: float) -> str:
    return f"{share * 100:.1f} %"
