"""The metric layer: every metric of the design's table defined once, as SQLAlchemy Core
expressions that run on SQLite and PostgreSQL. Dashboards, reports, exports, the API and the BI
views all read these definitions, so a number means the same everywhere.

A metric is
- a *unit* (a ticket, or for next reply time a staff reply), always joined to its ticket;
- an *anchor*: the instant that places a unit in a period (a first reply is counted in the week it
  was sent, a resolution in the week of the solve, a rating in the week it was given);
- a *population*: which units count (e.g. solved tickets for resolution time);
- a *value*: seconds for durations, 1/0 for rates, a rating for scores; counts have none.

Merged-away tickets never count. Invariants: durations are non-negative seconds measured in
calendar time here; business time needs a business calendar (developer "sla"), which plugs in as
``business_value`` on a definition. Metrics whose source tables do not exist in this installation
are listed with ``unavailable`` set to the reason, so every caller gets the same clear answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from opsdesk.auth.models import AuditEvent, User
from opsdesk.insights.enums import Dimension, MetricKind
from opsdesk.insights.sqltime import seconds_between, unindexed
from opsdesk.sla.enums import Metric as SlaMetric
from opsdesk.sla.enums import TargetStatus
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.models import Account, Message, Ticket

SOLVED_OR_CLOSED = ("solved", "closed")
WAITING_STATUSES = ("new", "open", "on_hold")  # requester wait: every status but pending

tickets_table = Ticket.__table__
assignees = User.__table__.alias("assignee")
accounts = Account.__table__.alias("account")


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    name: str
    label: str
    kind: MetricKind
    unit: str
    description: str
    anchor: SQLColumnExpression[Any]
    population: ColumnElement[bool]
    value: ColumnElement[Any] | None = None
    higher_is_better: bool = False
    # A unit other than the ticket (e.g. a staff reply) and how it joins its ticket.
    unit_table: FromClause | None = None
    unit_ticket_id: ColumnElement[Any] | None = None
    unavailable: str | None = None
    # (start, end) instants of a duration, for business time: the business seconds between them
    # on the default business calendar (SLA domain) replace the calendar-time value.
    business_span: tuple[SQLColumnExpression[Any], SQLColumnExpression[Any]] | None = None
    # When the anchor is the first present of several instants (coalesce): those instants, so a
    # period's range can be driven by each one's own index instead of scanning every unit.
    anchor_parts: tuple[SQLColumnExpression[Any], ...] = ()

    def in_period(self, start: datetime | None, end: datetime) -> ColumnElement[bool]:
        """The anchor in ``[start, end)`` (no lower bound when ``start`` is None)."""
        if not self.anchor_parts:
            bounds = [self.anchor < end] if start is None else [self.anchor >= start, self.anchor < end]
            return and_(*bounds)
        alternatives = []
        for number, part in enumerate(self.anchor_parts):
            earlier = [unindexed(before).is_(None) for before in self.anchor_parts[:number]]
            bounds = [part < end] if start is None else [part >= start, part < end]
            alternatives.append(and_(*earlier, *bounds))
        return or_(*alternatives)

    @property
    def supports_business_time(self) -> bool:
        return self.business_span is not None

    @property
    def has_percentiles(self) -> bool:
        return self.kind in (MetricKind.DURATION, MetricKind.SCORE)


def _not_until(label: str, domain: str, needs: str) -> str:
    """The one sentence every caller shows for a metric whose domain is not built yet."""
    return (
        f"{label} is not available until the {domain} domain exists: it needs {needs}, which no "
        f"table holds yet (docs/insights.md, 'Metrics not available yet')"
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[float]:
    return case((condition, literal(1.0, Float)), else_=literal(0.0, Float))


_solved = unindexed(Ticket.status).in_(SOLVED_OR_CLOSED)
_followed_up = exists(
    select(literal(1)).where(tickets_table.alias("follow_up").c.follow_up_of_id == Ticket.id)
)

# --- periodic update: the longest gap between consecutive public staff replies of a ticket.
_reply = Message.__table__.alias("reply")
_earlier = Message.__table__.alias("earlier_reply")
_previous_reply_at = (
    select(func.max(_earlier.c.created_at))
    .where(
        _earlier.c.ticket_id == _reply.c.ticket_id,
        _earlier.c.author_kind == "staff",
        _earlier.c.is_public.is_(True),
        _earlier.c.id < _reply.c.id,
    )
    .scalar_subquery()
)
_longest_gap = (
    select(func.max(seconds_between(_reply.c.created_at, _previous_reply_at)))
    .where(
        _reply.c.ticket_id == Ticket.id,
        _reply.c.author_kind == "staff",
        _reply.c.is_public.is_(True),
    )
    .scalar_subquery()
)

# --- requester wait: time in new / open / on-hold until the last solve, from the status trail.
_change = AuditEvent.__table__.alias("status_change")
_next_change = AuditEvent.__table__.alias("next_status_change")
# The trail stores the new status as a JSON string ('"open"'): as text on both databases.
_status_text = func.trim(cast(_change.c.new_value, String), '"')
_next_change_at = (
    select(func.min(_next_change.c.created_at))
    .where(
        _next_change.c.ticket_id == _change.c.ticket_id,
        _next_change.c.entity_type == "ticket",
        _next_change.c.field == "status",
        _next_change.c.id > _change.c.id,
    )
    .scalar_subquery()
)
_first_change_at = (
    select(func.min(_change.c.created_at))
    .where(_change.c.ticket_id == Ticket.id, _change.c.entity_type == "ticket", _change.c.field == "status")
    .scalar_subquery()
)
_waiting_after_changes = (
    select(
        func.coalesce(
            func.sum(seconds_between(func.coalesce(_next_change_at, Ticket.solved_at), _change.c.created_at)),
            0.0,
        )
    )
    .where(
        _change.c.ticket_id == Ticket.id,
        _change.c.entity_type == "ticket",
        _change.c.field == "status",
        _status_text.in_(WAITING_STATUSES),
    )
    .scalar_subquery()
)
# Every ticket starts in "new": the wait before the first status change counts too.
_requester_wait = _waiting_after_changes + seconds_between(
    func.coalesce(_first_change_at, Ticket.solved_at), Ticket.created_at
)

# --- next reply time: for each public staff reply that is not the first, the time since the
# oldest customer message it answers (sent after the previous public staff reply).
_answer = Message.__table__.alias("answer")
_asked = Message.__table__.alias("asked")
_before = Message.__table__.alias("before_answer")
_previous_answer_id = (
    select(func.coalesce(func.max(_before.c.id), 0))
    .where(
        _before.c.ticket_id == _answer.c.ticket_id,
        _before.c.author_kind == "staff",
        _before.c.is_public.is_(True),
        _before.c.id < _answer.c.id,
    )
    # Explicitly: inside _oldest_unanswered_at the answer is two levels up, where automatic
    # correlation does not reach (it would put a second, uncorrelated answer in this FROM).
    .correlate(_answer)
    .scalar_subquery()
)
_oldest_unanswered_at = (
    select(func.min(_asked.c.created_at))
    .where(
        _asked.c.ticket_id == _answer.c.ticket_id,
        _asked.c.author_kind == "customer",
        _asked.c.is_public.is_(True),
        _asked.c.id < _answer.c.id,
        _asked.c.id > _previous_answer_id,
    )
    .correlate(_answer)
    .scalar_subquery()
)

# --- SLA attainment: one unit per SLA target (sla_targets, developer "sla"), settled when it was
# achieved in time or fell due unmet. A target breached and met late stays breached.
_target = SlaTarget.__table__.alias("sla_target")
_settled = unindexed(_target.c.status).in_((TargetStatus.ACHIEVED.value, TargetStatus.BREACHED.value))


def _sla_metrics() -> list[MetricDefinition]:
    definitions = []
    for sla_metric in (None, *SlaMetric):
        suffix = "" if sla_metric is None else f"_{sla_metric.value}"
        words = "" if sla_metric is None else f" ({sla_metric.value.replace('_', ' ')})"
        population: ColumnElement[bool] = _settled
        if sla_metric is not None:
            population = and_(_settled, _target.c.metric == sla_metric.value)
        definitions.append(
            MetricDefinition(
                name=f"sla_attainment{suffix}",
                label=f"SLA attainment{words}",
                kind=MetricKind.RATE,
                unit="share",
                description=(
                    "Targets met over targets settled in the period"
                    + ("" if sla_metric is None else f", {sla_metric.value.replace('_', ' ')} targets only")
                    + ": a target counts when it is achieved in time (met) or falls due unmet (its "
                    "due instant); each keeps the policy and business calendar in force when it "
                    "started. Group by sla_policy for per-policy figures."
                ),
                anchor=func.coalesce(_target.c.breached_at, _target.c.achieved_at),
                anchor_parts=(_target.c.breached_at, _target.c.achieved_at),
                population=population,
                value=_flag(_target.c.status == TargetStatus.ACHIEVED.value),
                higher_is_better=True,
                unit_table=_target,
                unit_ticket_id=_target.c.ticket_id,
            )
        )
    return definitions


METRICS: dict[str, MetricDefinition] = {
    definition.name: definition
    for definition in (
        MetricDefinition(
            name="tickets_created",
            label="Tickets created",
            kind=MetricKind.COUNT,
            unit="tickets",
            description="Tickets created in the period (merged-away tickets excluded).",
            anchor=Ticket.created_at,
            population=true(),
        ),
        MetricDefinition(
            name="tickets_solved",
            label="Tickets solved",
            kind=MetricKind.COUNT,
            unit="tickets",
            description="Tickets whose last solve falls in the period and that are solved or closed now.",
            anchor=Ticket.solved_at,
            population=_solved,
            higher_is_better=True,
        ),
        MetricDefinition(
            name="first_reply_time",
            label="First reply time",
            kind=MetricKind.DURATION,
            unit="seconds",
            description="Created to the first public reply by staff; counted when the reply is sent.",
            anchor=Ticket.first_reply_at,
            population=Ticket.first_reply_at.is_not(None),
            value=seconds_between(Ticket.first_reply_at, Ticket.created_at),
            business_span=(Ticket.created_at, Ticket.first_reply_at),
        ),
        MetricDefinition(
            name="next_reply_time",
            label="Next reply time",
            kind=MetricKind.DURATION,
            unit="seconds",
            description=(
                "For each public staff reply after the first: the time since the oldest customer "
                "message it answers. Counted when the reply is sent; one row per reply."
            ),
            anchor=_answer.c.created_at,
            population=and_(
                _answer.c.author_kind == "staff",
                _answer.c.is_public.is_(True),
                _previous_answer_id > 0,
                _oldest_unanswered_at.is_not(None),
            ),
            value=seconds_between(_answer.c.created_at, _oldest_unanswered_at),
            unit_table=_answer,
            unit_ticket_id=_answer.c.ticket_id,
            business_span=(_oldest_unanswered_at, _answer.c.created_at),
        ),
        MetricDefinition(
            name="periodic_update",
            label="Periodic update",
            kind=MetricKind.DURATION,
            unit="seconds",
            description=(
                "Per solved ticket with two or more public staff replies: the longest gap between "
                "consecutive public staff replies. Counted at the last solve."
            ),
            anchor=Ticket.solved_at,
            population=and_(_solved, Ticket.staff_public_reply_count >= 2),
            value=_longest_gap,
        ),
        MetricDefinition(
            name="full_resolution_time",
            label="Full resolution time",
            kind=MetricKind.DURATION,
            unit="seconds",
            description="Created to the last solve, for tickets solved or closed now; counted at the solve.",
            anchor=Ticket.solved_at,
            population=_solved,
            value=seconds_between(Ticket.solved_at, Ticket.created_at),
            business_span=(Ticket.created_at, Ticket.solved_at),
        ),
        MetricDefinition(
            name="requester_wait_time",
            label="Requester wait time",
            kind=MetricKind.DURATION,
            unit="seconds",
            description=(
                "Time a solved ticket spent in new, open or on-hold (not pending) up to its last "
                "solve, from the status trail; counted at the solve."
            ),
            anchor=Ticket.solved_at,
            population=_solved,
            value=_requester_wait,
        ),
        MetricDefinition(
            name="handle_time",
            label="Handle time (AHT)",
            kind=MetricKind.DURATION,
            unit="seconds",
            description=(
                "Staff work time on the ticket (tracked while open and active, plus time logged by "
                "hand); the mean over solved tickets is AHT. Counted at the last solve."
            ),
            anchor=Ticket.solved_at,
            population=_solved,
            value=cast(Ticket.handle_seconds, Float),
        ),
        MetricDefinition(
            name="first_contact_resolution",
            label="First contact resolution",
            kind=MetricKind.RATE,
            unit="share",
            description=(
                "Of tickets first solved in the period with at least one public staff reply: the "
                "share solved with exactly one public staff reply and never reopened. Solves with "
                "no staff reply are counted apart (solved_without_reply)."
            ),
            anchor=Ticket.first_solved_at,
            population=and_(Ticket.first_solved_at.is_not(None), Ticket.staff_public_reply_count >= 1),
            value=_flag(and_(Ticket.staff_public_reply_count == 1, Ticket.reopened_count == 0)),
            higher_is_better=True,
        ),
        MetricDefinition(
            name="solved_without_reply",
            label="Solved without reply",
            kind=MetricKind.RATE,
            unit="share",
            description="Of tickets first solved in the period: the share with no public staff reply.",
            anchor=Ticket.first_solved_at,
            population=Ticket.first_solved_at.is_not(None),
            value=_flag(Ticket.staff_public_reply_count == 0),
        ),
        MetricDefinition(
            name="reopen_rate",
            label="Reopen rate",
            kind=MetricKind.RATE,
            unit="share",
            description="Of tickets first solved in the period: the share reopened later.",
            anchor=Ticket.first_solved_at,
            population=Ticket.first_solved_at.is_not(None),
            value=_flag(Ticket.reopened_count > 0),
        ),
        MetricDefinition(
            name="follow_up_rate",
            label="Follow-up rate",
            kind=MetricKind.RATE,
            unit="share",
            description=(
                "Of tickets first solved in the period: the share with a linked follow-up ticket "
                "(the customer wrote to it after it closed). Not a reopen."
            ),
            anchor=Ticket.first_solved_at,
            population=Ticket.first_solved_at.is_not(None),
            value=_flag(_followed_up),
        ),
        MetricDefinition(
            name="csat",
            label="CSAT",
            kind=MetricKind.RATE,
            unit="share",
            description="Good ratings (4 or 5 of 5) over all ratings given in the period.",
            anchor=Ticket.satisfaction_at,
            population=Ticket.satisfaction_score.is_not(None),
            value=_flag(Ticket.satisfaction_score >= 4),
            higher_is_better=True,
        ),
        MetricDefinition(
            name="satisfaction_score",
            label="Satisfaction score",
            kind=MetricKind.SCORE,
            unit="points",
            description="The mean rating (1-5) given in the period.",
            anchor=Ticket.satisfaction_at,
            population=Ticket.satisfaction_score.is_not(None),
            value=cast(Ticket.satisfaction_score, Float),
            higher_is_better=True,
        ),
        *_sla_metrics(),
        MetricDefinition(
            name="nps",
            label="NPS",
            kind=MetricKind.SCORE,
            unit="points",
            description="% promoters (9-10) minus % detractors (0-6).",
            anchor=Ticket.created_at,
            population=true(),
            higher_is_better=True,
            unavailable=_not_until("NPS", "success", "NPS survey responses (0-10)"),
        ),
        MetricDefinition(
            name="deflection_rate",
            label="Deflection rate",
            kind=MetricKind.RATE,
            unit="share",
            description="Self-service sessions resolved without a ticket over all self-service sessions.",
            anchor=Ticket.created_at,
            population=true(),
            higher_is_better=True,
            unavailable=_not_until("Deflection rate", "knowledge", "help-center self-service sessions"),
        ),
        MetricDefinition(
            name="mttr",
            label="MTTR (incidents)",
            kind=MetricKind.DURATION,
            unit="seconds",
            description="Incident opened to resolved.",
            anchor=Ticket.created_at,
            population=true(),
            unavailable=_not_until("MTTR", "incidents", "incidents with opened and resolved instants"),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class DimensionDefinition:
    name: Dimension
    label: str
    key: SQLColumnExpression[Any]
    # Which extra tables the key needs: "assignee" and/or "account".
    joins: tuple[str, ...] = ()


DIMENSIONS: dict[Dimension, DimensionDefinition] = {
    Dimension.GROUP: DimensionDefinition(Dimension.GROUP, "Group", Ticket.group_id),
    Dimension.AGENT: DimensionDefinition(Dimension.AGENT, "Agent", Ticket.assignee_id),
    Dimension.VENDOR: DimensionDefinition(
        Dimension.VENDOR,
        "Contractor vendor",
        case(
            (Ticket.assignee_id.is_(None), null()),
            else_=func.coalesce(assignees.c.vendor, literal("in-house")),
        ),
        ("assignee",),
    ),
    Dimension.CHANNEL: DimensionDefinition(Dimension.CHANNEL, "Channel", Ticket.channel),
    Dimension.CATEGORY: DimensionDefinition(Dimension.CATEGORY, "Category", Ticket.category),
    Dimension.PRIORITY: DimensionDefinition(Dimension.PRIORITY, "Priority", Ticket.priority),
    Dimension.TIER: DimensionDefinition(Dimension.TIER, "Account tier", accounts.c.tier, ("account",)),
    Dimension.PLAN: DimensionDefinition(Dimension.PLAN, "Plan", accounts.c.plan_name, ("account",)),
    Dimension.LANGUAGE: DimensionDefinition(Dimension.LANGUAGE, "Language", Ticket.language),
    Dimension.ACCOUNT: DimensionDefinition(Dimension.ACCOUNT, "Account", Ticket.account_id),
    # Only for SLA attainment metrics (their unit is the target, which names its policy).
    Dimension.SLA_POLICY: DimensionDefinition(Dimension.SLA_POLICY, "SLA policy", _target.c.policy_name),
}


def dimension_applies(definition: MetricDefinition, dimension: Dimension) -> bool:
    """SLA policy groups SLA attainment only; every other dimension groups every metric."""
    if dimension is Dimension.SLA_POLICY:
        return definition.unit_table is _target
    return True


def base_from(definition: MetricDefinition, joins: set[str]) -> FromClause:
    """The FROM clause of a metric: its unit joined to tickets, plus the dimension joins."""
    source: FromClause = tickets_table
    if definition.unit_table is not None and definition.unit_ticket_id is not None:
        source = definition.unit_table.join(tickets_table, definition.unit_ticket_id == Ticket.id)
    if "assignee" in joins:
        source = source.outerjoin(assignees, assignees.c.id == Ticket.assignee_id)
    if "account" in joins:
        source = source.outerjoin(accounts, accounts.c.id == Ticket.account_id)
    return source


def not_merged() -> ColumnElement[bool]:
    """Merged-away tickets live on in their target and never count on their own."""
    return Ticket.merged_into_id.is_(None)


# Filters on these keep to the anchor's index on SQLite (see sqltime.unindexed); selective
# ones (an account, an agent) may drive the query from their own index.
LOW_CARDINALITY = frozenset(
    {
        Dimension.GROUP,
        Dimension.CHANNEL,
        Dimension.CATEGORY,
        Dimension.PRIORITY,
        Dimension.LANGUAGE,
        Dimension.TIER,
        Dimension.PLAN,
        Dimension.VENDOR,
    }
)
