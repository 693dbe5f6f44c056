"""Time arithmetic as SQL expressions that compile for SQLite and PostgreSQL.

- :class:`seconds_between` is ``end - start`` in seconds (a float). SQLite stores instants as
  naive UTC text, so it goes through ``julianday``; PostgreSQL uses ``EXTRACT(EPOCH ...)``.
- :class:`time_bucket` is the start of the hour / day / ISO week (Monday) / month holding an
  instant, as text ``YYYY-MM-DDTHH:MM``, identical on both databases so buckets compare and sort
  as strings and tests can assert exact values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, SQLColumnExpression, String, Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from opsdesk.insights.enums import Grain
from opsdesk.insights.histogram import BINS_PER_OCTAVE


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


class TimeBucket(FunctionElement[str]):
    """The start of the grain holding an instant; one subclass per grain so statements cache."""

    type = String()
    inherit_cache = True
    name = "time_bucket"
    grain: Grain = Grain.DAY


class HourBucket(TimeBucket):
    inherit_cache = True
    grain = Grain.HOUR


class DayBucket(TimeBucket):
    inherit_cache = True
    grain = Grain.DAY


class WeekBucket(TimeBucket):
    inherit_cache = True
    grain = Grain.WEEK


class MonthBucket(TimeBucket):
    inherit_cache = True
    grain = Grain.MONTH


_BUCKETS: dict[Grain, type[TimeBucket]] = {
    Grain.HOUR: HourBucket,
    Grain.DAY: DayBucket,
    Grain.WEEK: WeekBucket,
    Grain.MONTH: MonthBucket,
}


def time_bucket(grain: Grain, instant: SQLColumnExpression[Any]) -> TimeBucket:
    return _BUCKETS[grain](instant)


_SQLITE_FORMATS = {
    Grain.HOUR: "%Y-%m-%dT%H:00",
    Grain.DAY: "%Y-%m-%dT00:00",
    Grain.MONTH: "%Y-%m-01T00:00",
}


@compiles(TimeBucket, "sqlite")
def _bucket_sqlite(element: TimeBucket, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = list(element.clauses)
    column = compiler.process(instant, **kw)
    if element.grain is Grain.WEEK:
        # Back to Monday: %w is 0 for Sunday, so (w + 6) % 7 days since Monday.
        return (
            f"strftime('%Y-%m-%dT00:00', {column}, '-' || "
            f"((CAST(strftime('%w', {column}) AS INTEGER) + 6) % 7) || ' days')"
        )
    return f"strftime('{_SQLITE_FORMATS[element.grain]}', {column})"


@compiles(TimeBucket, "postgresql")
def _bucket_postgresql(element: TimeBucket, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = list(element.clauses)
    column = compiler.process(instant, **kw)
    return (
        f"to_char(date_trunc('{element.grain.value}', ({column}) AT TIME ZONE 'UTC'), "
        "'YYYY-MM-DD\"T\"HH24:MI')"
    )


class unindexed(FunctionElement[Any]):  # noqa: N801 - reads as SQL
    """A column the SQLite planner must not drive the query from.

    Without statistics SQLite prefers any index on an equality (``status IN (...)``) over the
    range on the anchor instant, and so walks every solved ticket ever to find one week's. A
    unary ``+`` keeps the value and hides the index; PostgreSQL plans by statistics and gets
    the column unchanged.
    """

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: SQLColumnExpression[Any]) -> None:
        super().__init__(column)
        self.type = column.type  # type: ignore[attr-defined]


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"+{compiler.process(column, **kw)}"


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return compiler.process(column, **kw)


class log_bin(FunctionElement[int]):  # noqa: N801 - reads as SQL
    """The histogram bin of a duration in seconds (:mod:`opsdesk.insights.histogram`): 0 for
    zero, 1 below a second, else ``2 + floor(8 * log2(v))``. SQLite's built-in math functions
    (ln, floor) and PostgreSQL's compute the same bins."""

    type = Integer()
    inherit_cache = True
    name = "log_bin"

    def __init__(self, value: SQLColumnExpression[Any]) -> None:
        super().__init__(value)


@compiles(log_bin)
def _log_bin(element: log_bin, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    column = compiler.process(value, **kw)
    per_octave = BINS_PER_OCTAVE
    return (
        f"(CASE WHEN {column} <= 0 THEN 0 WHEN {column} < 1 THEN 1 "
        f"ELSE 2 + CAST(floor(ln({column}) * {per_octave} / ln(2.0)) AS INTEGER) END)"
    )


class concat_agg(FunctionElement[str]):  # noqa: N801 - reads as SQL
    """An aggregate joining text values with commas (order unspecified): SQLite's
    ``group_concat``, PostgreSQL's ``string_agg``."""

    type = Text()
    inherit_cache = True
    name = "concat_agg"

    def __init__(self, value: SQLColumnExpression[Any]) -> None:
        super().__init__(value)


@compiles(concat_agg, "sqlite")
def _concat_sqlite(element: concat_agg, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    return f"group_concat({compiler.process(value, **kw)}, ',')"


@compiles(concat_agg, "postgresql")
def _concat_postgresql(element: concat_agg, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    return f"string_agg({compiler.process(value, **kw)}, ',')"
