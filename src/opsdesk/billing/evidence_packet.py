"""The dispute evidence packet as a PDF: what opsdesk knows that proves the charge was right.

Sections: the dispute, the customer and their terms-of-service acceptance, invoices with lines,
receipts (captured payments and refunds), service usage, and the conversation with the customer.
Rendered with ReportLab in DejaVu Sans (Debian's fonts-dejavu-core) so any language prints; on a
machine without it, the PDF base font is used. No database access here: the service gathers the
facts into an :class:`EvidencePacket`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT_DIRECTORY = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True, slots=True)
class EvidencePacket:
    title: str
    facts: list[tuple[str, str]]
    terms: list[tuple[str, str]]
    invoices: list[list[str]]
    receipts: list[list[str]]
    usage: list[tuple[str, str]]
    conversation: list[tuple[str, str, str]] = field(default_factory=list)


@lru_cache(maxsize=1)
def fonts() -> tuple[str, str]:
    regular, bold = FONT_DIRECTORY / "DejaVuSans.ttf", FONT_DIRECTORY / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
        return "DejaVuSans", "DejaVuSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def table(rows: list[list[str]], body: ParagraphStyle, widths: list[float] | None = None) -> Table:
    cells = [[Paragraph(escape(cell), body) for cell in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def render_pdf(packet: EvidencePacket) -> bytes:
    regular, bold = fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=regular, fontSize=9, leading=12)
    heading = ParagraphStyle("heading", parent=styles["Heading2"], fontName=bold)
    title = ParagraphStyle("title", parent=styles["Title"], fontName=bold)
    story: list[object] = [Paragraph(escape(packet.title), title)]

    def pairs(name: str, rows: list[tuple[str, str]]) -> None:
        story.append(Paragraph(escape(name), heading))
        if rows:
            story.append(
                table([["Item", "Detail"], *[[key, value] for key, value in rows]], body, [50 * mm, 120 * mm])
            )
        else:
            story.append(Paragraph("None on record.", body))

    pairs("Dispute", packet.facts)
    pairs("Customer and terms of service", packet.terms)
    story.append(Paragraph("Invoices", heading))
    story.append(
        table([["Number", "Period", "Lines", "Total", "Status"], *packet.invoices], body)
        if packet.invoices
        else Paragraph("None on record.", body)
    )
    story.append(Paragraph("Receipts", heading))
    story.append(
        table([["Date", "Charge", "Amount", "Refunded", "Card"], *packet.receipts], body)
        if packet.receipts
        else Paragraph("None on record.", body)
    )
    pairs("Service usage", packet.usage)
    story.append(Paragraph("Conversation with the customer", heading))
    if not packet.conversation:
        story.append(Paragraph("No conversation on record.", body))
    for when, who, text in packet.conversation:
        story.append(Paragraph(f"<b>{escape(who)}</b> — {escape(when)}", body))
        story.append(Paragraph(escape(text).replace("\n", "<br/>"), body))
        story.append(Spacer(1, 4))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=packet.title,
        author="opsdesk",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    document.build(story)
    return buffer.getvalue()
