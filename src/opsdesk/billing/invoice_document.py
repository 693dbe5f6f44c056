"""An invoice as a PDF: seller and customer, number, dates, PO and terms, lines, tax, credit,
paid and due. Pure rendering (ReportLab, the same fonts as the evidence packet); the caller
gathers the facts into an :class:`InvoiceDocument`."""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from opsdesk.billing.evidence_packet import fonts, table


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    number: str
    status: str
    customer: str
    customer_email: str
    facts: list[tuple[str, str]]
    lines: list[list[str]]
    totals: list[tuple[str, str]]


def render_invoice(document: InvoiceDocument) -> bytes:
    regular, bold = fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=regular, fontSize=9, leading=12)
    title = ParagraphStyle("title", parent=styles["Title"], fontName=bold)
    story: list[object] = [
        Paragraph(escape(f"Invoice {document.number}"), title),
        Paragraph(escape(f"{document.customer} <{document.customer_email}> · {document.status}"), body),
        Spacer(1, 6),
        table(
            [["Item", "Detail"], *[[key, value] for key, value in document.facts]], body, [50 * mm, 120 * mm]
        ),
        Spacer(1, 8),
        table([["Description", "Quantity", "Amount"], *document.lines], body, [110 * mm, 25 * mm, 35 * mm]),
        Spacer(1, 8),
        table([["", ""], *[[key, value] for key, value in document.totals]], body, [135 * mm, 35 * mm]),
    ]
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Invoice {document.number}",
        author="opsdesk",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    ).build(story)
    return buffer.getvalue()
