"""CSV and XLSX of any metric table or ticket list: a header row and plain values.

Pure: takes rows, returns bytes. CSV is UTF-8 with a BOM so spreadsheet programs read accents;
cells that start with ``= + - @`` are prefixed with a quote so a ticket subject can never run as
a spreadsheet formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else _safe(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def to_xlsx(header: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "opsdesk") -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31] or "opsdesk")
    sheet.append(list(header))
    for row in rows:
        sheet.append(
            [value.replace(tzinfo=None) if isinstance(value, datetime) else _safe(value) for value in row]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export(
    kind: str, header: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "opsdesk"
) -> bytes:
    return to_xlsx(header, rows, title=title) if kind == "xlsx" else to_csv(header, rows)
