"""The triage API under ``/api/v1/triage``: taxonomy, keyword rules, settings, model versions
(train, activate, roll back), a ticket's prediction, routing rules with a dry run, group
assignment, agents' availability and the accuracy report."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.tickets.service import access_ticket
from opsdesk.triage.errors import PredictionNotFoundError
from opsdesk.triage.schemas import (
    AccuracyOut,
    AvailabilityIn,
    AvailabilityOut,
    BacklogOut,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    CorrectionIn,
    CorrectionOut,
    DryRunIn,
    DryRunOut,
    GroupAssignmentIn,
    GroupAssignmentOut,
    KeywordRuleIn,
    KeywordRuleOut,
    ModelOut,
    PredictionOut,
    RuleOut,
    RuleSetIn,
    SettingsIn,
    SettingsOut,
    TrainIn,
    TrainQueuedOut,
)
from opsdesk.triage.service import accuracy, assignment, classification, registry, routing, settings, taxonomy
from opsdesk.web.auth import api_actor
from opsdesk.web.sessions import request_session

router = APIRouter(prefix="/api/v1/triage", tags=["triage"])


# ---------------------------------------------------------------- taxonomy and keyword rules


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(
    session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> list[CategoryOut]:
    require(actor, Permission.TICKET_READ)
    return [CategoryOut.of(row) for row in taxonomy.list_categories(session)]


@router.post("/categories", response_model=CategoryOut, status_code=status.HTTP_201_CREATED)
def create_category(
    body: CategoryIn, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> CategoryOut:
    row = taxonomy.create_category(
        session, actor, path=body.path, label=body.label, description=body.description
    )
    return CategoryOut.of(row)


@router.patch("/categories/{category_id}", response_model=CategoryOut)
def patch_category(
    category_id: int,
    body: CategoryPatch,
    session: Session = Depends(request_session),
    actor: Actor = Depends(api_actor),
) -> CategoryOut:
    return CategoryOut.of(
        taxonomy.update_category(session, actor, category_id, label=body.label, active=body.is_active)
    )


@router.get("/keyword-rules", response_model=list[KeywordRuleOut])
def list_keyword_rules(
    session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> list[KeywordRuleOut]:
    require(actor, Permission.TICKET_READ)
    return [KeywordRuleOut.of(row) for row in taxonomy.list_keyword_rules(session)]


@router.post("/keyword-rules", response_model=KeywordRuleOut, status_code=status.HTTP_201_CREATED)
def create_keyword_rule(
    body: KeywordRuleIn, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> KeywordRuleOut:
    row = taxonomy.create_keyword_rule(
        session,
        actor,
        category=body.category,
        pattern=body.pattern,
        is_regex=body.is_regex,
        weight=body.weight,
    )
    return KeywordRuleOut.of(row)


@router.delete("/keyword-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_keyword_rule(
    rule_id: int, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> None:
    taxonomy.delete_keyword_rule(session, actor, rule_id)


# ---------------------------------------------------------------- settings and models


@router.get("/settings", response_model=SettingsOut)
def read_settings(
    session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> SettingsOut:
    require(actor, Permission.TICKET_READ)
    return SettingsOut.of(settings.triage_settings(session))


@router.patch("/settings", response_model=SettingsOut)
def patch_settings(
    body: SettingsIn, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> SettingsOut:
    values = body.model_dump(exclude_unset=True)
    row = settings.update_triage_settings(session, actor, **values)
    return SettingsOut.of(row)


@router.get("/models", response_model=list[ModelOut])
def list_models(
    session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> list[ModelOut]:
    require(actor, Permission.REPORT_READ)
    return [ModelOut.of(row) for row in registry.list_models(session)]


@router.post("/models/train", response_model=TrainQueuedOut, status_code=status.HTTP_202_ACCEPTED)
def train(
    body: TrainIn, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> TrainQueuedOut:
    """Queue a training run; the job runner trains in the background."""
    job = registry.request_training(session, actor, kind=body.kind, activate=body.activate)
    session.flush()
    return TrainQueuedOut(job_id=job.id, status=job.status)


@router.post("/models/{version}/activate", response_model=ModelOut)
def activate(
    version: int, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> ModelOut:
    return ModelOut.of(registry.activate_version(session, actor, version))


@router.post("/models/rollback", response_model=ModelOut | None)
def rollback(
    session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> ModelOut | None:
    """Put the previously active version back; ``null`` when the keyword rules take over."""
    row = registry.rollback(session, actor)
    return ModelOut.of(row) if row is not None else None


@router.get("/accuracy", response_model=AccuracyOut)
def read_accuracy(
    days: int = Query(30, ge=1, le=365),
    model_version: int | None = Query(None, ge=1),
    session: Session = Depends(request_session),
    actor: Actor = Depends(api_actor),
) -> AccuracyOut:
    return AccuracyOut.of(accuracy.accuracy_report(session, actor, days=days, model_version=model_version))


@router.get("/tickets/{ticket_id}/prediction", response_model=PredictionOut)
def read_prediction(
    ticket_id: int, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> PredictionOut:
    ticket = access_ticket(session, actor, ticket_id)
    prediction = classification.prediction_for(session, ticket.id)
    if prediction is None:
        raise PredictionNotFoundError(f"ticket {ticket_id} has not been classified")
    return PredictionOut.of(prediction)


@router.post("/tickets/{ticket_id}/category", response_model=CorrectionOut)
def correct_category(
    ticket_id: int,
    body: CorrectionIn,
    session: Session = Depends(request_session),
    actor: Actor = Depends(api_actor),
) -> CorrectionOut:
    """A person names (or corrects) the ticket's category: audit row, training example, and the
    ticket leaves the needs-triage queue."""
    ticket = classification.correct_category(session, actor, ticket_id, body.category)
    prediction = classification.prediction_for(session, ticket.id)
    return CorrectionOut(
        ticket_id=ticket.id,
        category=ticket.category or body.category,
        predicted=prediction.category if prediction is not None else None,
        corrected=bool(prediction is not None and prediction.corrected_category is not None),
    )


# ---------------------------------------------------------------- routing and assignment


@router.get("/routing-rules", response_model=list[RuleOut])
def list_rules(
    session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> list[RuleOut]:
    require(actor, Permission.TICKET_READ)
    return [RuleOut.of(row) for row in routing.list_rules(session)]


@router.put("/routing-rules", response_model=list[RuleOut])
def replace_rules(
    body: RuleSetIn, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> list[RuleOut]:
    """Replace the whole rule set; it is validated first and nothing changes when it is refused."""
    rows = routing.save_rule_set(session, actor, [rule.model_dump() for rule in body.rules])
    return [RuleOut.of(row) for row in rows]


@router.post("/routing-rules/dry-run", response_model=DryRunOut)
def dry_run(
    body: DryRunIn, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> DryRunOut:
    """Which rule would fire for a ticket (the saved rules, or the ``rules`` given), and why."""
    ticket = access_ticket(session, actor, body.ticket_id)
    rules = [rule.model_dump() for rule in body.rules] if body.rules is not None else None
    return DryRunOut.of(routing.dry_run(session, actor, ticket, rules))


@router.get("/groups/{group_id}/assignment", response_model=GroupAssignmentOut)
def read_group_assignment(
    group_id: int, session: Session = Depends(request_session), actor: Actor = Depends(api_actor)
) -> GroupAssignmentOut:
    require(actor, Permission.TICKET_READ)
    return GroupAssignmentOut.of(assignment.group_assignment(session, group_id))


@router.put("/groups/{group_id}/assignment", response_model=GroupAssignmentOut)
def put_group_assignment(
    group_id: int,
    body: GroupAssignmentIn,
    session: Session = Depends(request_session),
    actor: Actor = Depends(api_actor),
) -> GroupAssignmentOut:
    row = assignment.update_group_assignment(
        session,
        actor,
        group_id,
        mode=body.mode,
        senior_level=body.senior_level,
        required_skills=body.required_skills,
    )
    return GroupAssignmentOut.of(row)


@router.post("/groups/{group_id}/assign-backlog", response_model=BacklogOut)
def assign_backlog(
    group_id: int,
    limit: int = Query(1000, ge=1, le=10_000),
    session: Session = Depends(request_session),
    actor: Actor = Depends(api_actor),
) -> BacklogOut:
    return BacklogOut(assigned=assignment.assign_backlog(session, actor, group_id, limit=limit))


@router.put("/agents/{user_id}/availability", response_model=AvailabilityOut)
def put_availability(
    user_id: int,
    body: AvailabilityIn,
    session: Session = Depends(request_session),
    actor: Actor = Depends(api_actor),
) -> AvailabilityOut:
    """Set an agent online, away or off shift; leaving hands their new and open tickets on."""
    user = assignment.set_availability(session, actor, user_id, body.availability)
    return AvailabilityOut(user_id=user.id, availability=user.availability)
