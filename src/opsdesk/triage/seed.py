"""Default triage configuration: the category taxonomy, cold-start keyword rules, the
"Needs triage" group that hand-offs go to and the shared "Needs triage" view (unsolved tickets
tagged ``needs_triage``; also created with the first category of a taxonomy built by hand, when
triage starts handing tickets off). Idempotent: existing rows are left as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import Group
from opsdesk.tickets.service.views import DefaultView, ensure_default_views
from opsdesk.triage.enums import NEEDS_TRIAGE_GROUP, NEEDS_TRIAGE_TAG
from opsdesk.triage.models import KeywordRuleRow, TriageCategory
from opsdesk.triage.service.settings import stored_settings

if TYPE_CHECKING:
    from opsdesk.demo.context import SeedContext

NEEDS_TRIAGE_VIEW = DefaultView(
    NEEDS_TRIAGE_GROUP, {"status": ["unsolved"], "tag": [NEEDS_TRIAGE_TAG]}, "created_at", 4
)

DEFAULT_TAXONOMY: tuple[tuple[str, str], ...] = (
    ("billing", "Billing"),
    ("billing/refund", "Refund"),
    ("billing/dispute", "Dispute"),
    ("billing/plan_change", "Plan change"),
    ("billing/payment_failed", "Payment failed"),
    ("billing/invoice", "Invoice"),
    ("account", "Account"),
    ("account/sso", "Single sign-on"),
    ("account/access", "Access"),
    ("technical", "Technical"),
    ("bug", "Bug"),
    ("how_to", "How to"),
    ("feature_request", "Feature request"),
    ("sales", "Sales"),
    ("other", "Other"),
)

# (category, pattern, is_regex, weight): phrases a team would write on day one
DEFAULT_KEYWORD_RULES: tuple[tuple[str, str, bool, float], ...] = (
    ("billing/refund", r"\brefund(s|ed)?\b", True, 2.0),
    ("billing/refund", "money back", False, 1.5),
    ("billing/dispute", r"\b(dispute|chargeback)s?\b", True, 2.0),
    ("billing/plan_change", r"\b(upgrade|downgrade|change (my|our) plan|switch plans?)\b", True, 2.0),
    (
        "billing/payment_failed",
        r"\b(payment|card) (failed|declined|was declined|did not go through)\b",
        True,
        2.0,
    ),
    ("billing/invoice", r"\binvoices?\b", True, 1.5),
    ("billing/invoice", "receipt", False, 1.0),
    ("billing", r"\b(charged?|billing|subscription|pricing)\b", True, 1.0),
    ("account/sso", r"\b(sso|saml|okta|single sign[- ]on)\b", True, 2.0),
    (
        "account/access",
        r"\b(locked out|can(no|')?t log ?in|reset (my )?password|2fa|two[- ]factor)\b",
        True,
        2.0,
    ),
    ("account", r"\b(delete my account|close (my|our) account|change (my )?email)\b", True, 1.5),
    ("bug", r"\b(bug|crash(es|ed)?|error 500|stack ?trace|exception)\b", True, 2.0),
    ("technical", r"\b(api|webhook|integration|timeout|latency|slow)\b", True, 1.0),
    ("how_to", r"\b(how (do|can) i|how to|where (do|can) i find|is there a way)\b", True, 1.5),
    ("feature_request", r"\b(feature request|would be (great|nice)|please add|could you add)\b", True, 2.0),
    ("sales", r"\b(quote|pricing for|enterprise plan|demo|talk to sales|volume discount)\b", True, 1.5),
)


def seed_defaults(session: Session) -> None:
    now = clock.now()
    existing = set(session.scalars(select(TriageCategory.path)))
    for position, (path, label) in enumerate(DEFAULT_TAXONOMY):
        if path not in existing:
            session.add(
                TriageCategory(path=path, label=label, position=position, is_active=True, created_at=now)
            )
    if session.scalar(select(KeywordRuleRow.id).limit(1)) is None:
        for category, pattern, is_regex, weight in DEFAULT_KEYWORD_RULES:
            session.add(
                KeywordRuleRow(
                    category=category,
                    pattern=pattern,
                    is_regex=is_regex,
                    weight=weight,
                    is_active=True,
                    created_at=now,
                )
            )
    group = session.scalar(select(Group).where(Group.name == NEEDS_TRIAGE_GROUP))
    if group is None:
        group = Group(
            name=NEEDS_TRIAGE_GROUP, description="Tickets triage was not sure about.", created_at=now
        )
        session.add(group)
    session.flush()
    settings = stored_settings(session)
    if settings.needs_triage_group_id is None:
        settings.needs_triage_group_id = group.id
    session.flush()
    ensure_needs_triage_view(session)


def ensure_needs_triage_view(session: Session) -> None:
    ensure_default_views(session, (NEEDS_TRIAGE_VIEW,))


def seed(session: Session, context: SeedContext) -> None:
    """The seeder's entry point (``opsdesk seed`` / ``opsdesk demo``)."""
    del context
    seed_defaults(session)
