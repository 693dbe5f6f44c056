"""Time arithmetic as SQL expressions that compile for SQLite and PostgreSQL.

- :class:`seconds_between` is ``end - start`` in seconds (a float). SQLite stores instants as
  naive UTC text, so it goes through ``julianday``; PostgreSQL uses ``EXTRACT(EPOCH ...)``.
- :class:`time_bucket` is the start of the hour / day / ISO week (Monday) / month holding an
  instant, as text ``YYYY-MM-DDTHH:MM``, identical on both databases so buckets compare and sort
  as strings and tests can assert exact values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, SQLColumnExpression, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from opsdesk.insights.enums import Grain


class seconds_between(FunctionElement[float]):  # noqa: N801 - reads as SQL
    type = Float()
    inherit_cache = True
    name = "seconds_between"

    def __init__(self, end: SQLColumnExpression[Any], start: SQLColumnExpression[Any]) -> None:
        super().__init__(end, start)


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    return (
        f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 86400.0)"
    )


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


class time_bucket(FunctionElement[str]):  # noqa: N801 - reads as SQL
    type = String()
    inherit_cache = False
    name = "time_bucket"

    def __init__(self, grain: Grain, instant: SQLColumnExpression[Any]) -> None:
        self.grain = grain
        super().__init__(instant)


_SQLITE_FORMATS = {
    Grain.HOUR: "%Y-%m-%dT%H:00",
    Grain.DAY: "%Y-%m-%dT00:00",
    Grain.MONTH: "%Y-%m-01T00:00",
}


@compiles(time_bucket, "sqlite")
def _bucket_sqlite(element: time_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = list(element.clauses)
    column = compiler.process(instant, **kw)
    if element.grain is Grain.WEEK:
        # Back to Monday: %w is 0 for Sunday, so (w + 6) % 7 days since Monday.
        return (
            f"strftime('%Y-%m-%dT00:00', {column}, '-' || "
            f"((CAST(strftime('%w', {column}) AS INTEGER) + 6) % 7) || ' days')"
        )
    return f"strftime('{_SQLITE_FORMATS[element.grain]}', {column})"


@compiles(time_bucket, "postgresql")
def _bucket_postgresql(element: time_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = list(element.clauses)
    column = compiler.process(instant, **kw)
    return (
        f"to_char(date_trunc('{element.grain.value}', ({column}) AT TIME ZONE 'UTC'), "
        "'YYYY-MM-DD\"T\"HH24:MI')"
    )
