"""The team's triage settings: target precision for hand-off thresholds, the needs-triage group,
whether routing assigns agents automatically. One row, created on first use."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from opsdesk import clock, config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.triage.enums import DEFAULT_TARGET_PRECISION
from opsdesk.triage.errors import InvalidTriageSettingsError
from opsdesk.triage.models import TriageSettings

SETTINGS_ID = 1


def triage_settings(session: Session) -> TriageSettings:
    """The stored settings, or the defaults (not stored: reading never writes, so concurrent
    first tickets cannot race to insert the row)."""
    settings = session.get(TriageSettings, SETTINGS_ID)
    if settings is None:
        settings = _defaults()
    return settings


@dataclass(frozen=True, slots=True)
class TriageSettingsView:
    """What the per-ticket reactions read of the settings (cached per process)."""

    target_precision: float
    needs_triage_group_id: int | None
    auto_assign: bool


def _load_view(session: Session) -> TriageSettingsView:
    row = triage_settings(session)
    return TriageSettingsView(row.target_precision, row.needs_triage_group_id, row.auto_assign)


def settings_view(session: Session) -> TriageSettingsView:
    """The settings as the hot path reads them: no query while the configuration is unchanged."""
    return config_cache.cached(session, "triage.settings", _load_view)


def _defaults() -> TriageSettings:
    return TriageSettings(
        id=SETTINGS_ID,
        target_precision=DEFAULT_TARGET_PRECISION,
        auto_assign=True,
        needs_triage_group_id=None,
        updated_at=clock.now(),
    )


def stored_settings(session: Session) -> TriageSettings:
    settings = session.get(TriageSettings, SETTINGS_ID)
    if settings is None:
        settings = _defaults()
        session.add(settings)
        session.flush()
    return settings


_UNSET: object = object()


def update_triage_settings(
    session: Session,
    actor: Actor,
    *,
    target_precision: float | str | None = None,
    needs_triage_group_id: int | object | None = _UNSET,
    auto_assign: bool | None = None,
) -> TriageSettings:
    """Change the given settings; ``target_precision`` may be the text a person typed ("0.95").
    Refused with every problem at once, changing nothing."""
    require(actor, Permission.FIELD_MANAGE)
    problems: list[FieldProblem] = []
    if isinstance(target_precision, str):
        target_precision = _number(target_precision)
        if target_precision is None:
            problems.append(FieldProblem(("target_precision",), "must be a number such as 0.95"))
    if target_precision is not None and not 0.5 <= target_precision <= 0.999:
        problems.append(FieldProblem(("target_precision",), "must be between 0.5 and 0.999"))
    if (
        needs_triage_group_id is not _UNSET
        and needs_triage_group_id is not None
        and (not isinstance(needs_triage_group_id, int) or session.get(Group, needs_triage_group_id) is None)
    ):
        problems.append(
            FieldProblem(("needs_triage_group_id",), f"group {needs_triage_group_id} does not exist")
        )
    if problems:
        raise InvalidTriageSettingsError("the triage settings are not valid", fields=problems)
    settings = stored_settings(session)
    changes: dict[str, tuple[object, object]] = {}
    if target_precision is not None and target_precision != settings.target_precision:
        changes["target_precision"] = (settings.target_precision, target_precision)
        settings.target_precision = target_precision
    if needs_triage_group_id is not _UNSET and needs_triage_group_id != settings.needs_triage_group_id:
        changes["needs_triage_group_id"] = (settings.needs_triage_group_id, needs_triage_group_id)
        settings.needs_triage_group_id = needs_triage_group_id  # type: ignore[assignment]
    if auto_assign is not None and auto_assign != settings.auto_assign:
        changes["auto_assign"] = (settings.auto_assign, auto_assign)
        settings.auto_assign = auto_assign
    if changes:
        settings.updated_at = clock.now()
        session.flush()
        if "target_precision" in changes:
            # registry reads these settings, so it is imported here rather than at the top
            from opsdesk.triage.service.registry import retune_thresholds

            retune_thresholds(session, settings.target_precision)
        audit.record_changes(
            session, actor, entity_type="triage_settings", entity_id=SETTINGS_ID, changes=changes
        )
    return settings


def _number(typed: str) -> float | None:
    """The number a person typed ("0.95"), or None when it is not one."""
    try:
        return float(typed)
    except ValueError:
        return None
