"""The shared macros opsdesk installs for telling customers about billing, one per notice.

Each notice (refund issued, refund pending approval, plan changed, canceled, payment failed,
dispute opened, ...) is sent by applying a shared macro the team can edit on the macros page.
A template reads the usual macro context (``ticket``, ``account``, ``agent``) and ``billing``:
the notice's fields as plain strings (``billing.amount``, ``billing.currency``,
``billing.invoice``, ``billing.plan``, ...), and ``customer.first_name``. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NoticeMacro:
    key: str
    name: str
    body_template: str


_GREETING = "Hi {{ customer.first_name or ticket.requester.first_name or 'there' }},\n\n"

NOTICE_MACROS: tuple[NoticeMacro, ...] = (
    NoticeMacro(
        "refund_issued",
        "Billing: refund issued",
        _GREETING + "We have refunded {{ billing.amount }} to your {{ billing.card }}. Depending on your "
        "bank it takes 5 to 10 business days to show on your statement.\n\nThank you for your patience.",
    ),
    NoticeMacro(
        "refund_pending_approval",
        "Billing: refund pending approval",
        _GREETING + "We have asked for a refund of {{ billing.amount }}. A team lead reviews refunds of "
        "this size; we will write again as soon as it is approved.",
    ),
    NoticeMacro(
        "refund_rejected",
        "Billing: refund declined",
        _GREETING + "We looked at your refund request of {{ billing.amount }} and cannot refund it: "
        "{{ billing.reason }}\n\nReply to this message if you have questions.",
    ),
    NoticeMacro(
        "plan_changed",
        "Billing: plan change",
        _GREETING + "Your subscription is now {{ billing.plan }} with {{ billing.seats }} seat(s). "
        "{{ billing.proration }}",
    ),
    NoticeMacro(
        "subscription_canceled",
        "Billing: cancellation",
        _GREETING + "Your {{ billing.plan }} subscription {{ billing.when }}. {{ billing.money }}",
    ),
    NoticeMacro(
        "payment_failed",
        "Billing: payment failed",
        _GREETING + "We could not collect {{ billing.amount }} for invoice {{ billing.invoice }}. "
        "{{ billing.reason }}\n\nWe will try again on {{ billing.retry_on }}.",
    ),
    NoticeMacro(
        "dispute_opened",
        "Billing: dispute opened",
        _GREETING + "Your bank told us you disputed a charge of {{ billing.amount }} from "
        "{{ billing.charged_on }}. If this was a mistake, or if we can fix the problem directly, reply "
        "to this message: it is usually faster than waiting for the bank.",
    ),
)

BY_KEY: dict[str, NoticeMacro] = {item.key: item for item in NOTICE_MACROS}
