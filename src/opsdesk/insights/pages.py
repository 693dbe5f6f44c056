"""Insights pages: live floor, weekly ops review, metric explorer with drill-down to tickets,
agent and team pages, trends and experiments. Parse, call a service, build a view model, render.
Every number links to the tickets behind it (``/insights/tickets`` with the figure's query)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from opsdesk import clock
from opsdesk.auth.models import Group, User
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.errors import DomainError, FieldProblem
from opsdesk.insights import charts, report
from opsdesk.insights.definitions import DIMENSIONS, METRICS
from opsdesk.insights.enums import Dimension, Grain, MetricKind, TimeBasis
from opsdesk.insights.errors import InvalidMetricQueryError
from opsdesk.insights.links import drilldown_url
from opsdesk.insights.service import cost, experiments
from opsdesk.insights.service.live_floor import live_floor
from opsdesk.insights.service.series import MetricQuery, MetricSeries, metric_series, tickets_behind
from opsdesk.insights.service.trends import topic_trends
from opsdesk.insights.service.weekly_review import weekly_review
from opsdesk.money import minor_digits
from opsdesk.web.auth import PageActor
from opsdesk.web.sessions import DbSession
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)

SECTIONS = (
    ("/insights/live", "Live floor"),
    ("/insights/weekly", "Weekly review"),
    ("/insights/metrics", "Metrics"),
    ("/insights/trends", "Trends"),
    ("/insights/experiments", "Experiments"),
    ("/insights/cost", "Cost to serve"),
)


def _page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    sections = [
        {"href": href, "label": label, "active": request.url.path.startswith(href)}
        for href, label in SECTIONS
    ]
    return render(request, template, {"sections": sections, **context}, status_code=status_code)


def _problem_page(request: Request, error: DomainError) -> HTMLResponse:
    return _page(request, "insights/problem.html", {"error": error}, status_code=error.status)


def _format(kind: MetricKind, value: float | None) -> str:
    if value is None:
        return "-"
    if kind is MetricKind.DURATION:
        return charts.format_duration(value)
    if kind is MetricKind.RATE:
        return charts.format_share(value)
    if kind is MetricKind.SCORE:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _instant(text: str | None, name: str, default: datetime) -> datetime:
    """A date (``2026-11-02``) or an ISO instant from the query string, as aware UTC."""
    if not text:
        return default
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidMetricQueryError(
            f"{name} is not a date", fields=[FieldProblem(("query", name), "use YYYY-MM-DD")]
        ) from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _enum(kind: Any, text: str | None, name: str) -> Any:
    if not text:
        return None
    try:
        return kind(text)
    except ValueError as error:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidMetricQueryError(
            f"unknown {name} {text!r}", fields=[FieldProblem(("query", name), f"must be one of {allowed}")]
        ) from error


def _query_from(request: Request, *, default_days: int = 90) -> MetricQuery:
    parameters = request.query_params
    now = clock.now()
    end = _instant(parameters.get("to"), "to", now)
    start = _instant(parameters.get("from"), "from", end - timedelta(days=default_days))
    filters = {
        dimension: parameters[dimension.value] for dimension in Dimension if parameters.get(dimension.value)
    }
    return MetricQuery(
        parameters.get("metric") or "first_reply_time",
        start,
        end,
        by=_enum(Dimension, parameters.get("by"), "by"),
        grain=_enum(Grain, parameters.get("grain"), "grain"),
        filters=filters,
        time_basis=_enum(TimeBasis, parameters.get("basis"), "basis") or TimeBasis.CALENDAR,
    )


def _series_view(series: MetricSeries) -> dict[str, Any]:
    query, definition = series.query, series.definition
    filters = {dimension.value: value for dimension, value in query.filters.items()}
    rows = [
        {
            "bucket": point.bucket,
            "label": point.label,
            "count": point.count,
            "value": _format(definition.kind, point.value),
            "p50": _format(definition.kind, point.p50) if definition.has_percentiles else "",
            "p90": _format(definition.kind, point.p90) if definition.has_percentiles else "",
            "href": drilldown_url(
                query.metric,
                query.start,
                query.end,
                by=query.by.value if query.by else None,
                key=point.key,
                grain=query.grain.value if query.grain else None,
                bucket=point.bucket,
                filters=filters,
            ),
        }
        for point in series.points
    ]
    lines: dict[str, list[charts.Datum]] = {}
    for point, row in zip(series.points, rows, strict=True):
        value = point.p50 if definition.has_percentiles else point.value
        if value is not None:
            datum = charts.Datum(point.bucket or "all", value, str(row["href"]))
            lines.setdefault(point.label, []).append(datum)
    biggest = sorted(lines.items(), key=lambda item: -len(item[1]))[:6]
    chart_title = f"{definition.label}{' (median)' if definition.has_percentiles else ''}"
    formatter = {
        MetricKind.DURATION: charts.format_duration,
        MetricKind.RATE: charts.format_share,
    }.get(definition.kind, lambda value: f"{value:,.2f}" if value != int(value) else f"{value:,.0f}")
    chart = (
        charts.line_chart(
            chart_title, [charts.Line(name, data) for name, data in biggest], format_value=formatter
        )
        if query.grain is not None
        else charts.bar_chart(chart_title, [data[0] for _, data in biggest], format_value=formatter)
    )
    export = urlencode(
        {
            "metric": query.metric,
            "from": query.start.isoformat(),
            "to": query.end.isoformat(),
            **({"by": query.by.value} if query.by else {}),
            **({"grain": query.grain.value} if query.grain else {}),
            **filters,
        }
    )
    return {
        "definition": definition,
        "rows": rows,
        "chart": Markup(chart),  # noqa: S704 - the chart escapes its own text
        "csv_href": f"/api/v1/metrics?{export}&format=csv",
        "xlsx_href": f"/api/v1/metrics?{export}&format=xlsx",
        "has_percentiles": definition.has_percentiles,
    }


@router.get("/insights")
def insights_home() -> RedirectResponse:
    return RedirectResponse("/insights/live", status_code=303)


@router.get("/insights/live")
def live_page(request: Request, actor: PageActor, session: DbSession) -> HTMLResponse:
    try:
        floor = live_floor(session, actor)
    except DomainError as error:
        return _problem_page(request, error)
    backlog_chart = charts.bar_chart(
        "Unsolved backlog by age", [charts.Datum(name, count) for name, count in floor.backlog]
    )
    hour = {"from": floor.at - timedelta(hours=1), "to": floor.at}
    return _page(
        request,
        "insights/live.html",
        {
            "floor": floor,
            "backlog_chart": Markup(backlog_chart),  # noqa: S704 - escaped by charts
            "new_href": drilldown_url("tickets_created", hour["from"], hour["to"]),
            "format_duration": charts.format_duration,
        },
    )


@router.get("/insights/weekly")
def weekly_page(
    request: Request, actor: PageActor, session: DbSession, week: str | None = None
) -> HTMLResponse:
    try:
        review = weekly_review(session, actor, week or None)
    except DomainError as error:
        return _problem_page(request, error)
    return _page(
        request,
        "insights/weekly.html",
        {"review": review, "charts": report.charts_for(review), "base_url": ""},
    )


@router.get("/insights/metrics")
def metrics_page(request: Request, actor: PageActor, session: DbSession) -> HTMLResponse:
    try:
        query = _query_from(request)
        if "grain" not in request.query_params:
            query = MetricQuery(
                query.metric, query.start, query.end, query.by, Grain.WEEK, query.filters, query.time_basis
            )
        series = metric_series(session, actor, query)
    except DomainError as error:
        return _problem_page(request, error)
    return _page(
        request,
        "insights/metrics.html",
        {
            "query": query,
            "metrics": [definition for definition in METRICS.values() if definition.unavailable is None],
            "unavailable": [
                definition for definition in METRICS.values() if definition.unavailable is not None
            ],
            "dimensions": list(DIMENSIONS.values()),
            "grains": list(Grain),
            **_series_view(series),
        },
    )


@router.get("/insights/tickets")
def drilldown_page(request: Request, actor: PageActor, session: DbSession) -> HTMLResponse:
    parameters = request.query_params
    try:
        query = _query_from(request)
        page = max(1, int(parameters.get("page") or 1))
        total, tickets = tickets_behind(
            session,
            actor,
            query,
            bucket=parameters.get("bucket"),
            key=parameters.get("key"),
            limit=100,
            offset=(page - 1) * 100,
        )
    except DomainError as error:
        return _problem_page(request, error)
    except ValueError:
        return _problem_page(request, InvalidMetricQueryError("page must be a number"))
    export = urlencode([(name, value) for name, value in parameters.multi_items() if name != "page"])
    return _page(
        request,
        "insights/tickets.html",
        {
            "definition": METRICS[query.metric],
            "query": query,
            "total": total,
            "tickets": tickets,
            "page": page,
            "next_href": f"/insights/tickets?{export}&page={page + 1}" if page * 100 < total else None,
            "csv_href": f"/api/v1/metrics/tickets?{export}&format=csv&limit=10000",
            "xlsx_href": f"/api/v1/metrics/tickets?{export}&format=xlsx&limit=10000",
        },
    )


def _person_page(
    request: Request, actor: PageActor, session: DbSession, dimension: Dimension, key: int, title: str
) -> HTMLResponse:
    end = clock.now()
    start = end - timedelta(weeks=8)
    metrics = ("tickets_solved", "handle_time", "csat", "first_contact_resolution", "first_reply_time")
    panels = []
    try:
        for metric in metrics:
            series = metric_series(
                session,
                actor,
                MetricQuery(metric, start, end, grain=Grain.WEEK, filters={dimension: str(key)}),
            )
            panels.append(_series_view(series))
    except DomainError as error:
        return _problem_page(request, error)
    return _page(
        request, "insights/person.html", {"title": title, "panels": panels, "start": start, "end": end}
    )


@router.get("/insights/agents/{user_id}")
def agent_page(request: Request, user_id: int, actor: PageActor, session: DbSession) -> HTMLResponse:
    user = session.get(User, user_id)
    if user is None:
        return _page(
            request,
            "insights/problem.html",
            {"error": DomainError(f"agent {user_id} does not exist")},
            status_code=404,
        )
    title = f"{user.name}{f' ({user.vendor})' if user.vendor else ''}"
    return _person_page(request, actor, session, Dimension.AGENT, user_id, title)


@router.get("/insights/teams/{group_id}")
def team_page(request: Request, group_id: int, actor: PageActor, session: DbSession) -> HTMLResponse:
    group = session.get(Group, group_id)
    if group is None:
        return _page(
            request,
            "insights/problem.html",
            {"error": DomainError(f"team {group_id} does not exist")},
            status_code=404,
        )
    return _person_page(request, actor, session, Dimension.GROUP, group_id, f"Team {group.name}")


@router.get("/insights/trends")
def trends_page(request: Request, actor: PageActor, session: DbSession, days: int = 7) -> HTMLResponse:
    try:
        trends = topic_trends(session, actor, days=days)
    except DomainError as error:
        return _problem_page(request, error)
    return _page(request, "insights/trends.html", {"trends": trends})


@router.get("/insights/experiments")
def experiments_page(request: Request, actor: PageActor, session: DbSession) -> HTMLResponse:
    try:
        found = experiments.list_experiments(session, actor)
    except DomainError as error:
        return _problem_page(request, error)
    metrics = [
        d
        for d in METRICS.values()
        if d.unavailable is None and d.kind in (MetricKind.RATE, MetricKind.DURATION)
    ]
    return _page(
        request,
        "insights/experiments.html",
        {"experiments": found, "metrics": metrics, "form": {}, "error": None},
    )


@router.post("/insights/experiments", response_model=None)
def create_experiment_page(
    request: Request,
    actor: PageActor,
    session: DbSession,
    key: str = Form(""),
    name: str = Form(""),
    subject: str = Form("macro"),
    subject_ref: str = Form(""),
    metric: str = Form(""),
    arms: str = Form("A, B"),
    baseline: str = Form(""),
    baseline_spread: str = Form(""),
    minimum_effect: str = Form(""),
    hypothesis: str = Form(""),
) -> Response:
    form = {
        "key": key,
        "name": name,
        "subject": subject,
        "subject_ref": subject_ref,
        "metric": metric,
        "arms": arms,
        "baseline": baseline,
        "baseline_spread": baseline_spread,
        "minimum_effect": minimum_effect,
        "hypothesis": hypothesis,
    }
    try:
        numbers = {}
        for field_name in ("baseline", "minimum_effect", "baseline_spread"):
            text = form[field_name].strip()
            if text or field_name != "baseline_spread":
                try:
                    numbers[field_name] = float(text)
                except ValueError as error:
                    raise InvalidMetricQueryError(
                        f"{field_name} must be a number",
                        fields=[FieldProblem((field_name,), "must be a number")],
                    ) from error
        experiment = experiments.create_experiment(
            session,
            actor,
            experiments.NewExperiment(
                key=key.strip(),
                name=name,
                subject=subject,
                subject_ref=subject_ref,
                metric=metric,
                arms=tuple(arm.strip() for arm in arms.split(",")),
                baseline=numbers["baseline"],
                minimum_effect=numbers["minimum_effect"],
                baseline_spread=numbers.get("baseline_spread"),
                hypothesis=hypothesis,
            ),
        )
    except DomainError as error:
        session.rollback()
        found = experiments.list_experiments(session, actor)
        metrics = [
            d
            for d in METRICS.values()
            if d.unavailable is None and d.kind in (MetricKind.RATE, MetricKind.DURATION)
        ]
        return _page(
            request,
            "insights/experiments.html",
            {"experiments": found, "metrics": metrics, "form": form, "error": error},
            status_code=error.status,
        )
    return RedirectResponse(f"/insights/experiments/{experiment.id}", status_code=303)


@router.get("/insights/experiments/{experiment_id}")
def experiment_page(
    request: Request, experiment_id: int, actor: PageActor, session: DbSession
) -> HTMLResponse:
    try:
        experiment = experiments.access_experiment(session, actor, experiment_id)
        results = experiments.experiment_results(session, actor, experiment)
    except DomainError as error:
        return _problem_page(request, error)
    return _page(
        request,
        "insights/experiment.html",
        {"experiment": experiment, "results": results, "format": lambda value: _format(results.kind, value)},
    )


@router.post("/insights/experiments/{experiment_id}/{action}", response_model=None)
def experiment_action(
    request: Request, experiment_id: int, action: str, actor: PageActor, session: DbSession
) -> Response:
    try:
        experiment = experiments.access_experiment(session, actor, experiment_id)
        if action == "start":
            experiments.start_experiment(session, actor, experiment)
        elif action == "stop":
            experiments.stop_experiment(session, actor, experiment)
        else:
            raise InvalidMetricQueryError(f"unknown action {action!r}")
    except DomainError as error:
        session.rollback()
        return _problem_page(request, error)
    return RedirectResponse(f"/insights/experiments/{experiment_id}", status_code=303)


# --- cost to serve ---------------------------------------------------------------------------


def _cost_row_view(row: cost.CostRow, currency: str) -> dict[str, Any]:
    return {
        "label": row.label,
        "tickets": row.tickets,
        "handle_hours": f"{row.handle_hours:,.1f}",
        "labour": cost.format_minor(row.labour_minor, currency),
        "tooling": cost.format_minor(row.tooling_minor, currency),
        "total": cost.format_minor(row.total_minor, currency),
        "per_ticket": cost.format_minor(row.per_ticket_minor, currency),
    }


@router.get("/insights/cost")
def cost_page(request: Request, actor: PageActor, session: DbSession) -> HTMLResponse:
    parameters = request.query_params
    try:
        end = _instant(parameters.get("to"), "to", clock.now())
        start = _instant(parameters.get("from"), "from", end - timedelta(days=30))
        by = _enum(Dimension, parameters.get("by"), "by")
        result = cost.cost_to_serve(session, actor, start, end, by)
    except DomainError as error:
        return _page(
            request,
            "insights/cost.html",
            {"error": error, "result": None, "dimensions": _cost_dimensions(), "form": dict(parameters)},
            status_code=error.status,
        )
    return _page(
        request,
        "insights/cost.html",
        {
            "error": None,
            "result": result,
            "rows": [_cost_row_view(row, result.currency) for row in result.rows],
            "total": _cost_row_view(result.total, result.currency) if result.total else None,
            "tooling_period": cost.format_minor(result.tooling_period_minor, result.currency),
            "dimensions": _cost_dimensions(),
            "form": {
                "from": start.date().isoformat(),
                "to": end.date().isoformat(),
                "by": by.value if by else "",
            },
        },
    )


def _cost_dimensions() -> list[tuple[str, str]]:
    return [(d.value, DIMENSIONS[d].label) for d in Dimension if d is not Dimension.SLA_POLICY]


def _minor_from(text: str, currency: str, location: tuple[str, ...]) -> int:
    """``45.50`` (major units, as typed) -> 4550 minor units of the currency."""
    try:
        digits = minor_digits(currency)
    except ValueError:
        digits = 2
    try:
        value = Decimal(text.strip() or "0").scaleb(digits)
    except InvalidOperation as error:
        raise cost.InvalidCostSettingsError(
            "the cost settings are not valid", fields=[FieldProblem(location, "a number such as 45.50")]
        ) from error
    if value != value.to_integral_value() or value < 0:
        raise cost.InvalidCostSettingsError(
            "the cost settings are not valid",
            fields=[FieldProblem(location, f"0 or more, at most {digits} decimals")],
        )
    return int(value)


def _settings_view(session: Any, actor: Any, form: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = cost.cost_settings(session, actor)
    currency = settings.currency or "USD"

    def major(amount: int | None) -> str:
        if amount is None:
            return ""
        digits = minor_digits(currency)
        return f"{amount / 10**digits:.{digits}f}"

    known = cost.known_vendors(session)
    vendors = sorted(set(known) | set(settings.vendor_hourly_minor))
    return {
        "settings": settings,
        "form": form
        or {
            "currency": currency,
            "in_house": major(settings.in_house_hourly_minor),
            "tooling": major(settings.tooling_monthly_minor),
            "vendors": [(name, major(settings.vendor_hourly_minor.get(name))) for name in vendors],
        },
        "may_edit": has_permission(actor, Permission.USER_MANAGE),
    }


@router.get("/insights/cost/settings")
def cost_settings_page(request: Request, actor: PageActor, session: DbSession) -> HTMLResponse:
    try:
        view = _settings_view(session, actor)
    except DomainError as error:
        return _problem_page(request, error)
    return _page(
        request,
        "insights/cost_settings.html",
        {**view, "error": None, "saved": request.query_params.get("saved") == "1"},
    )


@router.post("/insights/cost/settings", response_model=None)
def save_cost_settings_page(
    request: Request,
    actor: PageActor,
    session: DbSession,
    currency: str = Form(""),
    in_house: str = Form(""),
    tooling: str = Form(""),
    vendor_name: list[str] = Form([]),
    vendor_rate: list[str] = Form([]),
) -> Response:
    pairs = [(name.strip(), rate) for name, rate in zip(vendor_name, vendor_rate, strict=False)]
    form = {"currency": currency, "in_house": in_house, "tooling": tooling, "vendors": pairs}
    try:
        code = currency.strip().upper()
        vendors = {
            name: _minor_from(rate, code, ("vendor_hourly_minor", name))
            for name, rate in pairs
            if name and rate.strip()
        }
        cost.save_cost_settings(
            session,
            actor,
            currency=code,
            in_house_hourly_minor=_minor_from(in_house, code, ("in_house_hourly_minor",)),
            vendor_hourly_minor=vendors,
            tooling_monthly_minor=_minor_from(tooling, code, ("tooling_monthly_minor",)),
        )
    except DomainError as error:
        session.rollback()
        try:
            view = _settings_view(session, actor, form)
        except DomainError:
            return _problem_page(request, error)
        return _page(
            request,
            "insights/cost_settings.html",
            {**view, "error": error, "saved": False},
            status_code=error.status,
        )
    return RedirectResponse("/insights/cost/settings?saved=1", status_code=303)
