"""Cost to serve: (handle hours x loaded hourly cost + tooling share) / tickets, by segment.

Inputs
- Loaded hourly costs (``insights_cost_settings``): one for in-house staff, one per contractor
  vendor (the ``users.vendor`` name), and the monthly tooling cost; one currency. Admins set them
  (``user.manage``); anyone with ``report.read`` reads them and the figures.
- Handle time: what the product records, ``tickets.handle_seconds``: one total per ticket (time
  tracked by the workspace while the ticket is open and active, plus time logged by hand). It is
  not split per person, so a ticket's whole handle time is costed at the rate of the ticket's
  assignee (their vendor's rate, or the in-house rate; unassigned tickets at the in-house rate).
  A vendor without a rate falls back to the in-house rate and is listed in ``missing_rates``.

Population: tickets solved in the period (last solve in ``[from, to)``, solved or closed now,
merged-away excluded): the same tickets as ``tickets_solved`` and AHT. Tooling: the monthly cost
prorated to the period by days (a month is 365.25 / 12 days), shared equally by those tickets.
Money is computed in Decimal and rounded half-even to minor units once, per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import ConflictError, FieldProblem, ValidationFailedError
from opsdesk.insights.definitions import DIMENSIONS, METRICS, assignees, base_from, not_merged
from opsdesk.insights.enums import Dimension
from opsdesk.insights.models import CostSetting
from opsdesk.insights.service.series import labels_for
from opsdesk.money import minor_digits, validate_currency
from opsdesk.tickets.models import Ticket

IN_HOUSE = "in_house"
VENDOR = "vendor"
TOOLING = "tooling"
DAYS_PER_MONTH = Decimal("365.25") / 12
MAX_MINOR = 10**12


class InvalidCostSettingsError(ValidationFailedError):
    code = "invalid_cost_settings"


class CostSettingsMissingError(ConflictError):
    code = "cost_settings_missing"
    title = "Cost settings missing"


@dataclass(frozen=True, slots=True)
class CostSettings:
    currency: str | None
    in_house_hourly_minor: int | None
    vendor_hourly_minor: dict[str, int]
    tooling_monthly_minor: int | None
    updated_at: datetime | None = None

    @property
    def configured(self) -> bool:
        return self.currency is not None and self.in_house_hourly_minor is not None


@dataclass(frozen=True, slots=True)
class CostRow:
    key: str | None
    label: str
    tickets: int
    handle_hours: float
    labour_minor: int
    tooling_minor: int

    @property
    def total_minor(self) -> int:
        return self.labour_minor + self.tooling_minor

    @property
    def per_ticket_minor(self) -> int | None:
        if not self.tickets:
            return None
        return int((Decimal(self.total_minor) / self.tickets).quantize(Decimal(1), ROUND_HALF_EVEN))


@dataclass(slots=True)
class CostToServe:
    start: datetime
    end: datetime
    by: Dimension | None
    currency: str
    rows: list[CostRow] = field(default_factory=list)
    total: CostRow | None = None
    tooling_period_minor: int = 0
    missing_rates: list[str] = field(default_factory=list)


def known_vendors(session: Session) -> list[str]:
    """Contractor vendors named on staff accounts (to offer a rate for each)."""
    return [
        name
        for name in session.scalars(select(User.vendor).where(User.vendor.is_not(None)).distinct())
        if name
    ]


def cost_settings(session: Session, actor: Actor) -> CostSettings:
    require(actor, Permission.REPORT_READ)
    return _load(session)


def _load(session: Session) -> CostSettings:
    rows = list(session.scalars(select(CostSetting)))
    currency = rows[0].currency if rows else None
    in_house = next((row.amount_minor for row in rows if row.kind == IN_HOUSE), None)
    tooling = next((row.amount_minor for row in rows if row.kind == TOOLING), None)
    vendors = {row.vendor: row.amount_minor for row in rows if row.kind == VENDOR and row.vendor}
    updated = max((row.updated_at for row in rows), default=None)
    return CostSettings(currency, in_house, dict(sorted(vendors.items())), tooling, updated)


def save_cost_settings(
    session: Session,
    actor: Actor,
    *,
    currency: str,
    in_house_hourly_minor: int,
    vendor_hourly_minor: Mapping[str, int],
    tooling_monthly_minor: int,
) -> CostSettings:
    """Replace the cost settings; everything is validated first, so bad input changes nothing."""
    require(actor, Permission.USER_MANAGE)
    problems: list[FieldProblem] = []
    try:
        code = validate_currency(currency.strip())
    except ValueError:
        problems.append(FieldProblem(("currency",), "an ISO 4217 code such as USD or EUR"))
        code = ""

    def check(value: Any, where: tuple[str, ...]) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
            problems.append(FieldProblem(where, "a whole amount in minor units (cents), 0 or more"))

    check(in_house_hourly_minor, ("in_house_hourly_minor",))
    check(tooling_monthly_minor, ("tooling_monthly_minor",))
    vendors: dict[str, int] = {}
    for name, amount in vendor_hourly_minor.items():
        clean = name.strip()
        if not clean or len(clean) > 120:
            problems.append(FieldProblem(("vendor_hourly_minor", name), "a vendor name of 1-120 characters"))
            continue
        if clean in vendors:
            problems.append(FieldProblem(("vendor_hourly_minor", name), "given twice"))
        check(amount, ("vendor_hourly_minor", clean))
        vendors[clean] = amount
    if problems:
        raise InvalidCostSettingsError("the cost settings are not valid", fields=problems)
    before = _load(session)
    for row in session.scalars(select(CostSetting)):
        session.delete(row)
    session.flush()
    now = clock.now()
    entries: list[tuple[str, str | None, int]] = [
        (IN_HOUSE, None, in_house_hourly_minor),
        (TOOLING, None, tooling_monthly_minor),
    ]
    entries += [(VENDOR, name, amount) for name, amount in vendors.items()]
    for kind, vendor, amount in entries:
        session.add(
            CostSetting(
                kind=kind,
                vendor=vendor,
                amount_minor=amount,
                currency=code,
                updated_at=now,
                updated_by_id=actor.user_id,
            )
        )
    session.flush()
    after = _load(session)
    audit.record(
        session,
        actor,
        entity_type="cost_settings",
        entity_id=None,
        action="updated",
        old=_as_json(before),
        new=_as_json(after),
    )
    return after


def _as_json(settings: CostSettings) -> dict[str, Any]:
    return {
        "currency": settings.currency,
        "in_house_hourly_minor": settings.in_house_hourly_minor,
        "vendor_hourly_minor": settings.vendor_hourly_minor,
        "tooling_monthly_minor": settings.tooling_monthly_minor,
    }


def _minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_EVEN))


def cost_to_serve(
    session: Session, actor: Actor, start: datetime, end: datetime, by: Dimension | None = None
) -> CostToServe:
    require(actor, Permission.REPORT_READ)
    problems: list[FieldProblem] = []
    if start.tzinfo is None or end.tzinfo is None:
        problems.append(FieldProblem(("query", "from"), "needs a time zone (e.g. Z)"))
    elif end <= start:
        problems.append(FieldProblem(("query", "to"), "must be after from"))
    if by is Dimension.SLA_POLICY:
        problems.append(FieldProblem(("query", "by"), "sla_policy groups SLA attainment metrics only"))
    if problems:
        raise InvalidCostSettingsError("the cost query is not valid", fields=problems)
    settings = _load(session)
    if not settings.configured or settings.currency is None or settings.in_house_hourly_minor is None:
        raise CostSettingsMissingError(
            "cost to serve needs loaded costs: an admin sets the in-house hourly cost (and per "
            "vendor, and monthly tooling) at /insights/cost/settings or PUT /api/v1/insights/cost-settings"
        )
    definition = METRICS["tickets_solved"]
    joins = {"assignee", *(DIMENSIONS[by].joins if by is not None else ())}
    segment: Any = DIMENSIONS[by].key if by is not None else literal(None)
    vendor = case((Ticket.assignee_id.is_(None), literal(None)), else_=assignees.c.vendor)
    statement = (
        select(
            segment.label("segment"), vendor.label("vendor"), func.count(), func.sum(Ticket.handle_seconds)
        )
        .select_from(base_from(definition, joins))
        .where(definition.anchor >= start, definition.anchor < end, not_merged(), definition.population)
        .group_by(*([segment] if by is not None else []), vendor)
    )
    in_house = Decimal(settings.in_house_hourly_minor)
    missing: set[str] = set()
    by_segment: dict[Any, tuple[int, int, Decimal]] = {}
    for key, vendor_name, count, seconds in session.execute(statement):
        rate = in_house
        if vendor_name is not None:
            if vendor_name in settings.vendor_hourly_minor:
                rate = Decimal(settings.vendor_hourly_minor[vendor_name])
            else:
                missing.add(str(vendor_name))
        tickets, handled, labour = by_segment.get(key, (0, 0, Decimal(0)))
        seconds = int(seconds or 0)
        by_segment[key] = (tickets + int(count), handled + seconds, labour + Decimal(seconds) / 3600 * rate)
    days = Decimal((end - start).total_seconds()) / 86_400
    tooling_period = Decimal(settings.tooling_monthly_minor or 0) * days / DAYS_PER_MONTH
    all_tickets = sum(tickets for tickets, _, _ in by_segment.values())
    share = tooling_period / all_tickets if all_tickets else Decimal(0)
    labels = labels_for(session, by, {None if key is None else str(key) for key in by_segment})
    result = CostToServe(start, end, by, settings.currency, tooling_period_minor=_minor(tooling_period))
    for key, (tickets, handled, labour) in by_segment.items():
        text = None if key is None else str(key)
        result.rows.append(
            CostRow(
                text,
                labels.get(text, text if text is not None else "(none)"),
                tickets,
                handled / 3600,
                _minor(labour),
                _minor(share * tickets),
            )
        )
    result.rows.sort(key=lambda row: (-row.total_minor, row.label))
    result.total = CostRow(
        None,
        "All solved tickets",
        all_tickets,
        sum(row.handle_hours for row in result.rows),
        _minor(sum((labour for _, _, labour in by_segment.values()), Decimal(0))),
        _minor(share * all_tickets),
    )
    result.missing_rates = sorted(missing)
    return result


def format_minor(amount: int | None, currency: str) -> str:
    """``12345, USD`` -> ``USD 123.45`` (for pages and reports)."""
    if amount is None:
        return "-"
    digits = minor_digits(currency)
    value = Decimal(amount).scaleb(-digits)
    return f"{currency} {value:,.{digits}f}"
