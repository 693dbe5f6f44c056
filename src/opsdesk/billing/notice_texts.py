"""What opsdesk tells a customer about billing, as plain-language templates (the fallback for
macros: a team's own macros replace these once it has them). Pure: ``str.format`` over fields."""

from __future__ import annotations

TEMPLATES: dict[str, str] = {
    "refund_issued": (
        "Hi {first_name},\n\nWe have refunded {amount} to your {card}. Depending on your bank it "
        "takes 5 to 10 business days to show on your statement.\n\nThank you for your patience."
    ),
    "refund_pending_approval": (
        "Hi {first_name},\n\nWe have asked for a refund of {amount}. A team lead reviews refunds of "
        "this size; we will write again as soon as it is approved."
    ),
    "refund_rejected": (
        "Hi {first_name},\n\nWe looked at your refund request of {amount} and cannot refund it: "
        "{reason}\n\nReply to this message if you have questions."
    ),
    "payment_failed": (
        "Hi {first_name},\n\nWe could not collect {amount} for invoice {invoice}. {reason}\n\n"
        "We will try again on {retry_on}."
    ),
    "payment_retry_failed": (
        "Hi {first_name},\n\nOur new attempt to collect {amount} for invoice {invoice} failed. "
        "{reason}\n\nWe will try again on {retry_on}."
    ),
    "subscription_unpaid": (
        "Hi {first_name},\n\nWe could not collect {amount} for invoice {invoice} after several "
        "attempts. {reason}\n\nYour subscription is now unpaid; please update your card to keep "
        "your service."
    ),
    "subscription_canceled_unpaid": (
        "Hi {first_name},\n\nYour subscription was canceled because invoice {invoice} stayed unpaid. "
        "Reply to this message and we will help you restart it."
    ),
    "invoice_reminder_before": (
        "Hello,\n\nA reminder that invoice {invoice} for {amount} (PO {po_number}) is due on {due_on}."
    ),
    "invoice_reminder_after": (
        "Hello,\n\nInvoice {invoice} for {amount} (PO {po_number}) was due on {due_on} and is still "
        "open. Please arrange payment or tell us if something is wrong with it."
    ),
    "plan_changed": ("Hi {first_name},\n\nYour subscription is now {plan} with {seats} seat(s). {proration}"),
    "subscription_canceled": "Hi {first_name},\n\nYour subscription {when}. {money}",
}


def render_notice(key: str, **fields: object) -> str:
    return TEMPLATES[key].format(**{name: str(value) for name, value in fields.items()})
