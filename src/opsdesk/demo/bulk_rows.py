"""Many rows into a table on a raw driver connection: ``executemany`` on SQLite, ``COPY … FROM
STDIN`` on PostgreSQL. The one way the seeder's writers (the bulk writer, the expansion's
sources, the store writer, the side load) put rows of Python values into a table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def insert_rows(
    raw: Any, dialect: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    names = ", ".join(columns)
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in columns)
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        finally:
            cursor.close()
        return
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
