"""The insights API under ``/api/v1``: metric series, the tickets behind them, exports and the
weekly report. Parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from opsdesk.insights import exports, report
from opsdesk.insights.definitions import METRICS
from opsdesk.insights.enums import Dimension, Grain, TimeBasis
from opsdesk.insights.links import drilldown_url
from opsdesk.insights.service import cost
from opsdesk.insights.service.series import (
    SERIES_HEADER,
    TICKET_HEADER,
    MetricQuery,
    metric_series,
    series_table,
    ticket_table,
    tickets_behind,
)
from opsdesk.insights.service.weekly_review import weekly_review
from opsdesk.web.auth import ApiActor
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1", tags=["insights"])

From = Annotated[datetime, Query(alias="from", description="Start, ISO 8601 with a zone (inclusive).")]
To = Annotated[datetime, Query(alias="to", description="End, ISO 8601 with a zone (exclusive).")]


def _filters(request: Request) -> dict[Dimension, str]:
    """Dimension filters from the query string: ``?channel=email&group=3`` (``none`` = no value)."""
    return {
        dimension: request.query_params[dimension.value]
        for dimension in Dimension
        if dimension.value in request.query_params
    }


def _query(
    request: Request,
    metric: str,
    start: datetime,
    end: datetime,
    by: Dimension | None,
    grain: Grain | None,
    basis: TimeBasis,
) -> MetricQuery:
    filters = _filters(request)
    return MetricQuery(metric, start, end, by=by, grain=grain, filters=filters, time_basis=basis)


@router.get("/metrics/definitions")
def metric_definitions(actor: ApiActor) -> dict[str, Any]:
    del actor
    return {
        "metrics": [
            {
                "name": definition.name,
                "label": definition.label,
                "kind": definition.kind.value,
                "unit": definition.unit,
                "description": definition.description,
                "higher_is_better": definition.higher_is_better,
                "available": definition.unavailable is None,
                "unavailable_reason": definition.unavailable,
            }
            for definition in METRICS.values()
        ],
        "dimensions": [dimension.value for dimension in Dimension],
        "grains": [grain.value for grain in Grain],
    }


@router.get("/metrics")
def get_metric(
    request: Request,
    actor: ApiActor,
    session: DbSession,
    metric: str,
    start: From,
    end: To,
    by: Dimension | None = None,
    grain: Grain | None = None,
    basis: TimeBasis = TimeBasis.CALENDAR,
    format: Annotated[str, Query(pattern="^(json|csv|xlsx)$")] = "json",
) -> Response:
    """One metric as a series: each point with its ticket count, mean, p50 and p90 and the URL
    of the tickets behind it. ``format=csv|xlsx`` downloads the same table."""
    query = _query(request, metric, start, end, by, grain, basis)
    series = metric_series(session, actor, query)
    if format != "json":
        content = exports.export(format, SERIES_HEADER, series_table(series), title=metric)
        return _download(content, format, f"{metric}.{format}")
    filters = {dimension.value: value for dimension, value in query.filters.items()}
    document = {
        "metric": series.definition.name,
        "label": series.definition.label,
        "kind": series.definition.kind.value,
        "unit": series.definition.unit,
        "by": by.value if by else None,
        "grain": grain.value if grain else None,
        "basis": basis.value,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "filters": filters,
        "points": [
            {
                "bucket": point.bucket,
                "key": point.key,
                "label": point.label,
                "count": point.count,
                "value": point.value,
                "mean": point.mean,
                "p50": point.p50,
                "p90": point.p90,
                "percentiles_estimated": point.percentiles_estimated,
                "tickets_url": drilldown_url(
                    metric,
                    start,
                    end,
                    by=by.value if by else None,
                    key=point.key,
                    grain=grain.value if grain else None,
                    bucket=point.bucket,
                    filters=filters,
                ),
            }
            for point in series.points
        ],
    }
    return Response(orjson.dumps(document), media_type="application/json")


@router.get("/metrics/tickets")
def get_metric_tickets(
    request: Request,
    actor: ApiActor,
    session: DbSession,
    metric: str,
    start: From,
    end: To,
    by: Dimension | None = None,
    key: str | None = None,
    grain: Grain | None = None,
    bucket: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Annotated[str, Query(pattern="^(json|csv|xlsx)$")] = "json",
) -> Response:
    """The tickets behind a metric (or one point of it: ``by`` + ``key``, ``grain`` + ``bucket``)."""
    query = _query(request, metric, start, end, by, grain, TimeBasis.CALENDAR)
    total, tickets = tickets_behind(session, actor, query, bucket=bucket, key=key, limit=limit, offset=offset)
    if format != "json":
        return _download(
            exports.export(format, TICKET_HEADER, ticket_table(tickets), title="tickets"),
            format,
            f"{metric}-tickets.{format}",
        )
    rows = [dict(zip(TICKET_HEADER, row, strict=True)) for row in ticket_table(tickets)]
    return Response(
        orjson.dumps({"total": total, "limit": limit, "offset": offset, "items": rows}),
        media_type="application/json",
    )


@router.get("/reports/weekly")
def get_weekly_report(
    actor: ApiActor,
    session: DbSession,
    week: Annotated[str | None, Query(description="ISO week, e.g. 2026-W46")] = None,
    format: Annotated[str, Query(pattern="^(json|md|html|pdf)$")] = "json",
) -> Response:
    review = weekly_review(session, actor, week)
    if format == "json":
        return Response(orjson.dumps(report.as_json(review)), media_type="application/json")
    if format == "md":
        return Response(report.as_markdown(review), media_type="text/markdown; charset=utf-8")
    if format == "html":
        return Response(report.as_html(review), media_type="text/html; charset=utf-8")
    return _download(report.as_pdf(review), "pdf", f"weekly-ops-review-{review.week}.pdf")


def _download(content: bytes, kind: str, filename: str) -> Response:
    media = exports.MEDIA_TYPES.get(kind, "application/pdf")
    return Response(
        content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


class CostSettingsIn(BaseModel):
    """Loaded costs, in minor units (cents) of one currency."""

    currency: str = Field(description="ISO 4217 code, e.g. USD.")
    in_house_hourly_minor: int = Field(description="Loaded hourly cost of in-house staff.")
    vendor_hourly_minor: dict[str, int] = Field(
        default_factory=dict, description="Loaded hourly cost per contractor vendor (users.vendor)."
    )
    tooling_monthly_minor: int = Field(0, description="Tooling cost per month.")


def _settings_json(settings: cost.CostSettings) -> dict[str, Any]:
    return {
        "currency": settings.currency,
        "in_house_hourly_minor": settings.in_house_hourly_minor,
        "vendor_hourly_minor": settings.vendor_hourly_minor,
        "tooling_monthly_minor": settings.tooling_monthly_minor,
        "configured": settings.configured,
        "updated_at": settings.updated_at.isoformat() if settings.updated_at else None,
    }


@router.get("/insights/cost-settings")
def get_cost_settings(actor: ApiActor, session: DbSession) -> dict[str, Any]:
    """The loaded hourly costs (in-house, per vendor) and the monthly tooling cost."""
    return _settings_json(cost.cost_settings(session, actor))


@router.put("/insights/cost-settings")
def put_cost_settings(body: CostSettingsIn, actor: ApiActor, session: DbSession) -> dict[str, Any]:
    """Replace the cost settings (admins). Bad input is a 422 problem and changes nothing."""
    return _settings_json(cost.save_cost_settings(session, actor, **body.model_dump()))


def _cost_row_json(row: cost.CostRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "tickets": row.tickets,
        "handle_hours": round(row.handle_hours, 4),
        "labour_minor": row.labour_minor,
        "tooling_minor": row.tooling_minor,
        "total_minor": row.total_minor,
        "per_ticket_minor": row.per_ticket_minor,
    }


@router.get("/insights/cost-to-serve")
def get_cost_to_serve(
    actor: ApiActor, session: DbSession, start: From, end: To, by: Dimension | None = None
) -> dict[str, Any]:
    """Cost per solved ticket in the period, overall and by segment (``by`` any dimension)."""
    result = cost.cost_to_serve(session, actor, start, end, by)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by.value if by else None,
        "currency": result.currency,
        "tooling_period_minor": result.tooling_period_minor,
        "missing_rates": result.missing_rates,
        "total": _cost_row_json(result.total) if result.total else None,
        "rows": [_cost_row_json(row) for row in result.rows],
    }
