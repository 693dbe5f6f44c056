"""Links from a figure to the tickets behind it: the drill-down URL carries the very query the
figure was computed with, so the list shows exactly the tickets counted. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

DRILLDOWN_PATH = "/insights/tickets"


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def drilldown_url(
    metric: str,
    start: datetime,
    end: datetime,
    *,
    by: str | None = None,
    key: str | None = None,
    grain: str | None = None,
    bucket: str | None = None,
    filters: dict[str, str] | None = None,
) -> str:
    parameters: dict[str, str] = {"metric": metric, "from": _instant(start), "to": _instant(end)}
    if by is not None:
        parameters["by"] = by
        parameters["key"] = key if key is not None else "none"
    if grain is not None and bucket is not None:
        parameters["grain"] = grain
        parameters["bucket"] = bucket
    parameters.update(filters or {})
    return f"{DRILLDOWN_PATH}?{urlencode(parameters)}"
