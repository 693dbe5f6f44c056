"""Insert a row with one Core statement and hand the session the object as if it had been loaded;
and attach an object built from a row that a Core query read.

The unit of work is the right tool for changing objects; for the few rows that every new ticket
creates (the ticket, its first message, its tags, a new requester) it costs several times the
INSERT itself (dependency sorting, history, ORM bulk-insert bookkeeping). Here the row gets all
its column values up front (Python-side defaults applied, as the ORM would), is inserted with a
plain table INSERT … RETURNING, and the mapped object is built with the same values and attached
with :func:`make_transient_to_detached`: clean and persistent, so later attribute changes flush as
ordinary UPDATEs and relationships not given load lazily as usual.

Database-side effects (triggers, foreign keys) are the same as for any INSERT; ORM-level insert
events do not fire (opsdesk has none on these classes).

:func:`attach_as_loaded` is the reading side: a hot path that read a row with a plain Core
statement (a join that also brings the rows of a collection, say) gets the mapped object without
the ORM's loading machinery, which costs several times the query for one object with eager
relationships.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Insert, Table, inspect
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

ModelT = TypeVar("ModelT")


@dataclass(frozen=True, slots=True)
class _Shape:
    table: Table
    insert: Insert
    insert_many: Insert
    key_of_primary: str
    # (attribute key, column name, default value or callable, is callable)
    columns: tuple[tuple[str, str, Any, bool], ...]
    # The column attributes' keys but the primary key's (checked against on every call).
    keys: frozenset[str]


_shapes: dict[type, _Shape] = {}


def _shape(model: type) -> _Shape:
    shape = _shapes.get(model)
    if shape is not None:
        return shape
    mapper: Mapper[Any] = inspect(model)
    table: Table = mapper.local_table  # type: ignore[assignment]
    primary = mapper.primary_key[0]
    columns: list[tuple[str, str, Any, bool]] = []
    key_of_primary = ""
    for attribute in mapper.column_attrs:
        column = attribute.columns[0]
        if column is primary:
            key_of_primary = attribute.key
            continue
        default = column.default
        if default is None:
            columns.append((attribute.key, column.name, None, False))
        elif default.is_callable:
            columns.append((attribute.key, column.name, default.arg, True))  # type: ignore[attr-defined]
        elif default.is_scalar:
            columns.append((attribute.key, column.name, default.arg, False))  # type: ignore[attr-defined]
        else:
            raise TypeError(f"{model.__name__}.{attribute.key}: only Python-side defaults are supported")
    shape = _Shape(
        table,
        table.insert().returning(primary),
        table.insert().returning(primary, sort_by_parameter_order=True),
        key_of_primary,
        tuple(columns),
        frozenset(key for key, *_ in columns),
    )
    _shapes[model] = shape
    return shape


def insert_as_loaded(
    session: Session, model: type[ModelT], values: Mapping[str, Any], **related: Any
) -> ModelT:
    """Insert one ``model`` row from ``values`` (attribute keys; missing ones get the column's
    default) and return the persistent object. ``related`` sets relationships that should count
    as loaded (a many-to-one's object, a collection's list of objects built the same way)."""
    shape = _shape(model)
    by_key, row = _row_of(shape, model, values)
    identity = session.execute(shape.insert, row).scalar_one()
    return _attach(session, model, {**by_key, shape.key_of_primary: identity}, related)


def insert_all_as_loaded(
    session: Session, model: type[ModelT], rows: Sequence[Mapping[str, Any]]
) -> list[ModelT]:
    """Insert several ``model`` rows with one statement and return their persistent objects, in
    the order given (as :func:`insert_as_loaded` does for one row).

    One round trip on PostgreSQL: SQLAlchemy sends the rows as one ``INSERT … RETURNING`` and
    matches each returned key to its row (``sort_by_parameter_order``). SQLite, in process,
    inserts them one by one (it cannot order a multi-row ``RETURNING``)."""
    if not rows:
        return []
    shape = _shape(model)
    built = [_row_of(shape, model, values) for values in rows]
    identities = session.execute(shape.insert_many, [row for _, row in built]).scalars().all()
    return [
        _attach(session, model, {**by_key, shape.key_of_primary: identity}, {})
        for (by_key, _), identity in zip(built, identities, strict=True)
    ]


def _row_of(shape: _Shape, model: type, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A row's values by attribute key and by column name, with the columns' Python defaults."""
    unknown = values.keys() - shape.keys
    if unknown:
        raise TypeError(f"{model.__name__} has no column attributes {sorted(unknown)}")
    by_key: dict[str, Any] = {}
    row: dict[str, Any] = {}
    for key, column_name, default, is_callable in shape.columns:
        if key in values:
            value = values[key]
        elif is_callable:
            value = default(None)  # SQLAlchemy wraps plain callables to take an execution context
        else:
            value = default
        by_key[key] = value
        row[column_name] = value
    return by_key, row


def attach_as_loaded(
    session: Session, model: type[ModelT], values: Mapping[str, Any], **related: Any
) -> ModelT:
    """The persistent object for a row read with Core: ``values`` holds every column attribute
    (keys as mapped), ``related`` the relationships that count as loaded (others load lazily on
    first use). If the session already holds the object, that one is returned unchanged: it may
    carry changes this row does not know about."""
    shape = _shape(model)
    missing = shape.keys - values.keys()
    if missing or shape.key_of_primary not in values:
        raise TypeError(f"{model.__name__}: values lack {sorted(missing) or [shape.key_of_primary]}")
    if len(values) != len(shape.keys) + 1:  # the instance takes them as they are: no strangers
        unknown = sorted(values.keys() - shape.keys - {shape.key_of_primary})
        raise TypeError(f"{model.__name__} has no column attributes {unknown}")
    existing = held_by_session(session, model, values[shape.key_of_primary])
    if existing is not None:
        return existing
    return _attach(session, model, values, related)


def held_by_session(session: Session, model: type[ModelT], primary_key: Any) -> ModelT | None:
    """The object the session already holds for this primary key, without a query."""
    held: ModelT | None = session.identity_map.get(
        inspect(model).identity_key_from_primary_key([primary_key])
    )
    return held


def unattached(model: type[ModelT], values: Mapping[str, Any]) -> ModelT:
    """An object for a row read with Core, to pass in ``related`` of :func:`attach_as_loaded`
    (a collection's members): it is attached, as loaded, together with its parent."""
    return model(**values)


def _attach(
    session: Session, model: type[ModelT], values: Mapping[str, Any], related: Mapping[str, Any]
) -> ModelT:
    # As the ORM's loading builds an object: a bare instance with its column values in its
    # __dict__, no attribute events (the mapped constructor fires one per attribute set: most of
    # this function's cost for a ticket's thirty-odd columns). make_transient_to_detached below
    # commits them as loaded, as it did the constructor's values.
    instance: ModelT = manager_of_class(model).new_instance()
    instance.__dict__.update(values)
    for name, value in related.items():
        setattr(instance, name, value)
        # Members built by `unattached` become loaded now, after the relationship (and its
        # backref on them) was set: had they been attached first, setting the backref would
        # leave them dirty and the next query would flush them.
        for member in value if isinstance(value, list) else [value]:
            if member is not None and inspect(member).transient:
                make_transient_to_detached(member)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance
