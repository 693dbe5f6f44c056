"""Choosing the agent of a group who takes a ticket: manual, round-robin or least-loaded.

Hard requirements (an agent who fails one is never chosen): active, online, under capacity (open
tickets < capacity), holding every required skill. Preferences (kept when someone satisfies them,
dropped with a stated reason otherwise): speaking the ticket's language, and — for hot or
enterprise accounts — seniority at or above the group's senior level.

Round-robin takes the next eligible agent after the last one the group assigned, in id order;
least-loaded takes the lowest open/capacity ratio (then fewest open tickets, then lowest id).
Pure: the service gathers the candidates and records the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opsdesk.triage.enums import AssignmentMode

ONLINE = "online"


@dataclass(slots=True)
class Candidate:
    user_id: int
    name: str
    open_count: int
    capacity: int
    skills: frozenset[str]
    languages: frozenset[str]
    availability: str
    seniority: int
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class Need:
    required_skills: frozenset[str] = frozenset()
    language: str | None = None
    needs_senior: bool = False
    senior_level: int = 2


@dataclass(frozen=True, slots=True)
class Choice:
    user_id: int | None
    reason: str


def _blocker(candidate: Candidate, need: Need) -> str | None:
    if not candidate.is_active:
        return "inactive"
    if candidate.availability != ONLINE:
        return candidate.availability
    if candidate.open_count >= candidate.capacity:
        return "at capacity"
    if not need.required_skills <= candidate.skills:
        return "missing skills"
    return None


def _by_preference(eligible: list[Candidate], need: Need, notes: list[str]) -> list[Candidate]:
    pool = eligible
    if need.language:
        speakers = [candidate for candidate in pool if need.language in candidate.languages]
        if speakers:
            pool = speakers
            notes.append(f"speaks {need.language}")
        else:
            notes.append(f"nobody available speaks {need.language}")
    if need.needs_senior:
        seniors = [candidate for candidate in pool if candidate.seniority >= need.senior_level]
        if seniors:
            pool = seniors
            notes.append(f"senior (level {need.senior_level}+) for a hot or enterprise account")
        else:
            notes.append("no senior agent available for a hot or enterprise account")
    return pool


def choose_agent(
    mode: str,
    candidates: Sequence[Candidate],
    need: Need,
    *,
    last_assigned_user_id: int | None = None,
) -> Choice:
    """Pick the agent for one ticket, or nobody with the reason why."""
    if mode == AssignmentMode.MANUAL:
        return Choice(None, "the group assigns by hand")
    blocked: dict[str, int] = {}
    eligible: list[Candidate] = []
    for candidate in candidates:
        blocker = _blocker(candidate, need)
        if blocker is None:
            eligible.append(candidate)
        else:
            blocked[blocker] = blocked.get(blocker, 0) + 1
    if not eligible:
        summary = ", ".join(f"{count} {why}" for why, count in sorted(blocked.items())) or "no members"
        return Choice(None, f"no eligible agent ({summary})")
    notes: list[str] = []
    pool = _by_preference(eligible, need, notes)
    if mode == AssignmentMode.ROUND_ROBIN:
        ordered = sorted(pool, key=lambda candidate: candidate.user_id)
        chosen = ordered[0]
        if last_assigned_user_id is not None:
            for candidate in ordered:
                if candidate.user_id > last_assigned_user_id:
                    chosen = candidate
                    break
        how = "round-robin: next in turn"
    else:
        chosen = min(
            pool,
            key=lambda candidate: (
                candidate.open_count / candidate.capacity if candidate.capacity else 1.0,
                candidate.open_count,
                candidate.user_id,
            ),
        )
        how = f"least-loaded: {chosen.open_count}/{chosen.capacity} open"
    detail = "; ".join([how, *notes])
    if need.required_skills:
        detail += f"; has {', '.join(sorted(need.required_skills))}"
    return Choice(chosen.user_id, f"{chosen.name} ({detail})")
