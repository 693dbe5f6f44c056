"""What opsdesk tells a customer about billing, as plain-language templates (the fallback for
macros: used only when a person deleted the notice's macro, see
:mod:`opsdesk.billing.service.notices`). Pure: ``str.format_map`` over fields."""

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
    "subscription_canceled": "Hi {first_name},\n\nYour {plan} subscription {when}. {money}",
    "dispute_opened": (
        "Hi {first_name},\n\nYour bank told us you disputed a charge of {amount} from {charged_on}. If "
        "this was a mistake, or if we can fix the problem directly, reply to this message: it is "
        "usually faster than waiting for the bank."
    ),
}


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render_notice(key: str, **fields: object) -> str:
    """The built-in text of ``key``; a field the caller did not give renders empty."""
    return TEMPLATES[key].format_map(_Fields({name: str(value) for name, value in fields.items()}))
