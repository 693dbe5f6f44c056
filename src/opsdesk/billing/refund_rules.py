"""The refund rules, as pure decisions over numbers (the service feeds them from the ledger).

- Never refund more than captured minus already refunded minus what pending approvals reserve.
- Never refund a charge with an open or lost chargeback; an inquiry (``warning_*``) stays
  refundable, as at Stripe.
- Within the actor's limit the refund is issued at once; above it, it waits for a lead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from opsdesk.billing.enums import INQUIRY_STATUSES

BLOCKING_DISPUTE_STATUSES: frozenset[str] = frozenset({"needs_response", "under_review", "lost"})


class RefundDecision(StrEnum):
    ISSUE = "issue"
    NEEDS_APPROVAL = "needs_approval"


@dataclass(frozen=True, slots=True)
class RefundRefusal:
    field: str
    message: str


def refundable_amount(captured: int, refunded: int, reserved: int) -> int:
    return max(captured - refunded - reserved, 0)


def blocking_dispute(dispute_statuses: Iterable[str]) -> str | None:
    """The status of a dispute that forbids refunds, if any (inquiries never do)."""
    for status in dispute_statuses:
        if status in BLOCKING_DISPUTE_STATUSES and status not in INQUIRY_STATUSES:
            return status
    return None


def check_refund(
    *,
    amount: int,
    captured: int,
    refunded: int,
    reserved: int,
    payment_succeeded: bool,
    dispute_statuses: Iterable[str],
) -> RefundRefusal | None:
    """Why this refund may not happen at all, or ``None`` when the ledger allows it."""
    if amount <= 0:
        return RefundRefusal("amount_minor", "must be greater than zero")
    if not payment_succeeded:
        return RefundRefusal("payment_id", "only a captured payment can be refunded")
    blocking = blocking_dispute(dispute_statuses)
    if blocking is not None:
        return RefundRefusal("payment_id", f"the charge has a chargeback ({blocking}); it cannot be refunded")
    available = refundable_amount(captured, refunded, reserved)
    if amount > available:
        return RefundRefusal(
            "amount_minor", f"at most {available} can be refunded (captured minus refunded and pending)"
        )
    return None


def decide(amount: int, limit: int | None, may_approve: bool) -> RefundDecision:
    """Issue now when within the actor's limit (``None``: no limit); otherwise a lead approves."""
    if may_approve or (limit is not None and amount <= limit):
        return RefundDecision.ISSUE
    return RefundDecision.NEEDS_APPROVAL


def may_dispute(captured: int, refunded: int) -> bool:
    """A fully refunded charge cannot be disputed."""
    return refunded < captured
