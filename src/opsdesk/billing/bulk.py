"""Set-based writes for the billing runs: the Core table behind a model, and a bulk insert that
is cheap on SQLite.

:func:`insert_rows` is ``connection.execute(table.insert(), rows)`` with the per-row work taken
out on SQLite: each column's bind processor (a UTC datetime's conversion, JSON encoding) runs
once per distinct value (a month-end run writes the same instants on every row) and the rows go
to the driver's ``executemany`` as tuples. Columns a row leaves out get their scalar default or
NULL, exactly as the Core insert would; a table whose left-out column needs a computed default
takes the Core path. Other databases always take the Core path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Column, Connection, Table, bindparam

from opsdesk.db import Base


def table_of(model: type[Base]) -> Table:
    """The model's Core ``Table`` (bulk inserts and updates skip the ORM's per-row work)."""
    return cast(Table, model.__table__)


def _left_out_value(column: Column[Any]) -> tuple[bool, Any]:
    """(usable, value) for a column the rows do not name."""
    default = column.default
    if default is None:
        return (column.nullable is not False or column.server_default is not None or column.primary_key), None
    if getattr(default, "is_scalar", False):
        return True, getattr(default, "arg", None)
    return False, None


def _memoized(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """The processor, run once per distinct hashable value; None when the driver takes values as is."""
    if processor is None:
        return None
    memo: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        try:
            return memo[value]
        except KeyError:
            converted = memo[value] = processor(value)
            return converted
        except TypeError:  # unhashable (a JSON list or dict): convert every time
            return processor(value)

    return convert


def insert_rows(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into the model's table."""
    if not rows:
        return
    table = table_of(model)
    dialect = connection.dialect
    if dialect.name != "sqlite":
        connection.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    constants: dict[str, Any] = {}
    for column in table.columns:
        if column.name in names or column.primary_key:
            continue
        usable, value = _left_out_value(column)
        if not usable:
            connection.execute(table.insert(), list(rows))
            return
        if value is not None:
            constants[column.name] = value
    columns = names + list(constants)
    converters = [
        _memoized(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in columns
    ]
    named = list(zip(names, converters[: len(names)], strict=True))
    tail = tuple(
        value if convert is None else convert(value)
        for value, convert in zip(constants.values(), converters[len(names) :], strict=True)
    )
    parameters = [
        tuple([row[name] if convert is None else convert(row[name]) for name, convert in named]) + tail
        for row in rows
    ]
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({quoted}) VALUES ({marks})",
        parameters,
    )


def update_rows(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """``UPDATE table SET <the rows' other keys> WHERE id = row["id"]`` for each row (same keys),
    with the same once-per-distinct-value conversion as :func:`insert_rows` on SQLite."""
    if not rows:
        return
    table = table_of(model)
    names = [name for name in rows[0] if name != "id"]
    dialect = connection.dialect
    if dialect.name != "sqlite":
        statement = (
            table.update()
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in names})
        )
        connection.execute(
            statement, [{f"b_{name}": row[name] for name in names} | {"b_id": row["id"]} for row in rows]
        )
        return
    named = [
        (name, _memoized(table.c[name].type.dialect_impl(dialect).bind_processor(dialect))) for name in names
    ]
    parameters = [
        (*[row[name] if convert is None else convert(row[name]) for name, convert in named], row["id"])
        for row in rows
    ]
    quote = dialect.identifier_preparer.quote
    assignments = ", ".join(f"{quote(name)} = ?" for name in names)
    connection.exec_driver_sql(
        f"UPDATE {dialect.identifier_preparer.format_table(table)} SET {assignments} WHERE id = ?",
        parameters,
    )
