"""The weekly ops review as a document: JSON, Markdown, HTML and PDF (WeasyPrint).

The same :class:`WeeklyReview` feeds every format, and the HTML page of the web UI renders the
same template body, so the emailed PDF, the CLI's Markdown and the page never disagree. Charts
are inline SVG (see :mod:`opsdesk.insights.charts`); the PDF uses the Debian DejaVu fonts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from opsdesk.insights import charts
from opsdesk.insights.enums import MetricKind
from opsdesk.insights.service.weekly_review import Figure, Row, WeeklyReview

FORMATS = ("html", "pdf", "md", "json")
_TEMPLATES = Path(__file__).parent / "templates"


def _figure_json(figure: Figure) -> dict[str, Any]:
    return {
        "metric": figure.metric,
        "label": figure.label,
        "kind": figure.kind,
        "count": figure.count,
        "value": figure.value,
        "p50": figure.p50,
        "p90": figure.p90,
        "previous_value": figure.previous_value,
        "previous_count": figure.previous_count,
        "change": figure.change,
        "tickets_url": figure.href,
        "unavailable": figure.unavailable,
    }


def _rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "key": row.key,
            "label": row.label,
            "count": row.count,
            "previous_count": row.previous_count,
            "value": row.value,
            "tickets_url": row.href,
        }
        for row in rows
    ]


def as_json(review: WeeklyReview) -> dict[str, Any]:
    return {
        "week": review.week,
        "from": review.start.isoformat(),
        "to": review.end.isoformat(),
        "generated_at": review.generated_at.isoformat(),
        "summary": review.summary,
        "headline": [_figure_json(figure) for figure in review.headline],
        "volume_trend": [{"week": week, "count": count} for week, count in review.volume_trend],
        "channel_trend": {
            channel: [{"week": week, "count": count} for week, count in points]
            for channel, points in review.channel_trend.items()
        },
        "by_channel": _rows_json(review.by_channel),
        "by_category": _rows_json(review.by_category),
        "backlog": {"total": review.backlog_total, "by_age": _rows_json(review.backlog)},
        "drivers": {
            "categories_by_volume": _rows_json(review.drivers_category_volume),
            "categories_by_handle_hours": _rows_json(review.drivers_category_time),
            "accounts_by_volume": _rows_json(review.drivers_account_volume),
            "accounts_by_handle_hours": _rows_json(review.drivers_account_time),
        },
        "vendors": [
            {"vendor": label, "metrics": {name: _figure_json(figure) for name, figure in figures.items()}}
            for label, figures in zip(review.vendor_labels, review.vendors, strict=True)
        ],
    }


def _value(figure: Figure | None, which: str = "value") -> str:
    if figure is None:
        return "-"
    return figure.shown(getattr(figure, which))


def as_markdown(review: WeeklyReview) -> str:
    lines = [f"# Weekly ops review {review.week}", ""]
    lines += [f"{review.start:%Y-%m-%d} to {review.end:%Y-%m-%d} (UTC), against the week before.", ""]
    lines += ["## What changed", ""] + [f"- {sentence}" for sentence in review.summary] + [""]
    lines += [
        "## Headline",
        "",
        "| metric | this week | p50 | p90 | last week | change | tickets |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure in review.headline:
        if figure.unavailable:
            lines.append(f"| {figure.label} | unavailable: {figure.unavailable} | | | | | |")
            continue
        durations = figure.kind in (MetricKind.DURATION, MetricKind.SCORE)
        lines.append(
            f"| {figure.label} | {_value(figure)} | {_value(figure, 'p50') if durations else ''} | "
            f"{_value(figure, 'p90') if durations else ''} | {figure.shown(figure.previous_value)} | "
            f"{figure.change_text} | {figure.count:,} |"
        )
    for title, rows in (("Volume by channel", review.by_channel), ("Volume by category", review.by_category)):
        lines += ["", f"## {title}", "", "| | this week | last week |", "|---|---|---|"]
        lines += [f"| {row.label} | {row.count:,} | {row.previous_count:,} |" for row in rows]
    lines += ["", f"## Backlog at week end: {review.backlog_total:,}", "", "| age | tickets |", "|---|---|"]
    lines += [f"| {row.label} | {row.count:,} |" for row in review.backlog]
    lines += ["", "## Top drivers", "", "| categories by volume | tickets |", "|---|---|"]
    lines += [f"| {row.label} | {row.count:,} |" for row in review.drivers_category_volume]
    lines += ["", "| accounts by handle time | hours | tickets |", "|---|---|---|"]
    lines += [
        f"| {row.label} | {row.value or 0:,.1f} | {row.count:,} |" for row in review.drivers_account_time
    ]
    lines += [
        "",
        "## Contractors and in-house",
        "",
        "| | solved | first reply p50 | AHT | CSAT | FCR |",
        "|---|---|---|---|---|---|",
    ]
    for label, figures in zip(review.vendor_labels, review.vendors, strict=True):
        lines.append(
            f"| {label} | {_value(figures.get('tickets_solved'))} | "
            f"{_value(figures.get('first_reply_time'), 'p50')} | "
            f"{_value(figures.get('handle_time'))} | {_value(figures.get('csat'))} | "
            f"{_value(figures.get('first_contact_resolution'))} |"
        )
    return "\n".join(lines) + "\n"


def charts_for(review: WeeklyReview) -> dict[str, Markup]:
    """The review's SVG charts, marked safe (charts escape their own text)."""
    volume = charts.line_chart(
        "Tickets created per week",
        [charts.Line("all channels", [charts.Datum(week, count) for week, count in review.volume_trend])]
        + [
            charts.Line(channel, [charts.Datum(week, count) for week, count in points])
            for channel, points in sorted(
                review.channel_trend.items(), key=lambda item: -sum(c for _, c in item[1])
            )[:5]
        ],
    )
    categories = charts.bar_chart(
        f"Tickets by category, {review.week}",
        [charts.Datum(row.label, row.count, row.href) for row in review.by_category[:10]],
    )
    backlog = charts.bar_chart(
        "Backlog at week end by age", [charts.Datum(row.label, row.count) for row in review.backlog]
    )
    return {"volume": Markup(volume), "categories": Markup(categories), "backlog": Markup(backlog)}  # noqa: S704 - escaped by charts


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader([str(_TEMPLATES), str(_TEMPLATES.parent.parent / "web" / "templates")]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def as_html(review: WeeklyReview, *, base_url: str = "") -> str:
    """A standalone HTML document (email, PDF), links absolute when ``base_url`` is given."""
    return (
        _environment()
        .get_template("insights/weekly_report.html")
        .render(
            review=review, charts=charts_for(review), base_url=base_url.rstrip("/"), MetricKind=MetricKind
        )
    )


def as_pdf(review: WeeklyReview, *, base_url: str = "") -> bytes:
    from weasyprint import HTML

    document: bytes = HTML(string=as_html(review, base_url=base_url)).write_pdf()
    return document
