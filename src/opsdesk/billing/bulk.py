"""Set-based writes for the billing runs: the Core table behind a model, typed for mypy."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from opsdesk.db import Base


def table_of(model: type[Base]) -> Table:
    """The model's Core ``Table`` (bulk inserts and updates skip the ORM's per-row work)."""
    return cast(Table, model.__table__)
