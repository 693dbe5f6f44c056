"""Telling the customer, through the team's shared macros.

Each billing notice (``refund_issued``, ``plan_changed``, ``payment_failed``, ...) has a shared
macro (:mod:`opsdesk.billing.notice_macros`), installed the first time the notice is needed (or
by the demo seed) and then the team's to edit. A notice on a ticket applies the macro to it with
the notice's fields in the template context as ``billing`` (the reply, the macro's field changes,
its usage count and the ``macro_applied`` audit row on the ticket, exactly as an agent applying it);
a notice without a ticket (dunning emails) renders the same macro into an email through the outbox.

When a person deleted the macro, opsdesk sends its built-in text (:mod:`opsdesk.billing.notice_texts`)
instead and writes an audit row saying so, so nobody is left untold. Everything is written in the
caller's transaction: a refused or rolled-back operation tells nobody anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.automation import macros as automation_macros
from opsdesk.automation.errors import InvalidMacroError
from opsdesk.automation.models import Macro
from opsdesk.automation.templating import TemplateProblem, render
from opsdesk.billing.models import BillingCustomer, NoticeMacroLink
from opsdesk.billing.notice_macros import BY_KEY, NOTICE_MACROS
from opsdesk.billing.notice_texts import render_notice
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Message, Ticket

EMAIL_JOB = "billing.customer_email"
INSTALLER = Actor.system("billing")


def first_name(customer: BillingCustomer) -> str:
    if customer.person is not None and customer.person.first_name:
        return customer.person.first_name
    return "there"


def install_notice_macros(session: Session, actor: Actor = INSTALLER) -> list[Macro]:
    """Create the shared macro of every notice that never had one (a deleted one stays deleted)."""
    installed = set(session.scalars(select(NoticeMacroLink.notice)))
    created = []
    for item in NOTICE_MACROS:
        if item.key not in installed:
            created.append(_install(session, actor, item.key))
    return created


def _install(session: Session, actor: Actor, key: str) -> Macro:
    spec = BY_KEY[key]
    macro = automation_macros.save_macro(
        session, actor, name=spec.name, body_template=spec.body_template, public_reply=True, shared=True
    )
    session.add(NoticeMacroLink(notice=key, macro_id=macro.id))
    session.flush()
    return macro


def macro_for(session: Session, key: str) -> Macro | None:
    """The notice's macro; installed now if it never was; None when a person deleted it."""
    link = session.scalars(select(NoticeMacroLink).where(NoticeMacroLink.notice == key)).first()
    if link is None:
        return _install(session, INSTALLER, key) if key in BY_KEY else None
    return link.macro


def _billing_context(customer: BillingCustomer | None, fields: Mapping[str, object]) -> dict[str, Any]:
    data = {name: "" if value is None else str(value) for name, value in fields.items()}
    return {
        "billing": data,
        "customer": {
            "first_name": data.get("first_name") or (first_name(customer) if customer is not None else ""),
            "name": customer.name if customer is not None else "",
            "email": customer.email if customer is not None else "",
        },
    }


def _fallback_audit(
    session: Session, actor: Actor, key: str, why: str, *, ticket_id: int | None, customer_id: int | None
) -> None:
    audit.record(
        session,
        actor,
        entity_type="billing_notice",
        entity_id=customer_id,
        action="fallback_text_sent",
        new={"notice": key},
        ticket_id=ticket_id,
        reason=f"{why}; opsdesk sent its built-in text for {key.replace('_', ' ')}",
    )


def reply_on_ticket(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    key: str,
    *,
    customer: BillingCustomer | None = None,
    **fields: object,
) -> Message | None:
    """Tell the customer on ``ticket`` by applying the notice's macro (as the acting person when
    there is one, through the macro's own actor), or the built-in text when the macro is gone."""
    macro = macro_for(session, key)
    why = "the macro was deleted"
    if macro is not None:
        macro_actor = actor if actor.user is None else Actor.macro(macro.name, macro.id, actor.user)
        try:
            with session.begin_nested():
                return automation_macros.apply_macro_as(
                    session, macro_actor, ticket, macro, extra_context=_billing_context(customer, fields)
                )
        except InvalidMacroError as error:
            why = f"the macro {macro.name!r} could not be rendered ({error.detail})"
    _fallback_audit(
        session,
        actor,
        key,
        why,
        ticket_id=ticket.id,
        customer_id=customer.id if customer is not None else None,
    )
    named = {"first_name": first_name(customer) if customer is not None else "there", **fields}
    return tickets.add_message(session, actor, ticket, body_text=render_notice(key, **named), public=True)


def note_on_ticket(session: Session, ticket: Ticket, text: str) -> Message:
    """An internal note by opsdesk (a system author), e.g. a payment failure reason."""
    return tickets.add_message(session, Actor.system("billing"), ticket, body_text=text, public=False)


def render_for_email(
    session: Session,
    customer: BillingCustomer,
    key: str,
    fields: Mapping[str, object],
    macros: dict[str, Macro | None] | None = None,
) -> tuple[str, Macro | None, str | None]:
    """The email body for a notice with no ticket: the macro rendered with the account and
    ``billing`` context; or the built-in text and why. ``macros``: a lookup shared by a bulk
    caller (thousands of dunning emails look the macro up once)."""
    if macros is None:
        macro = macro_for(session, key)
    else:
        if key not in macros:
            macros[key] = macro_for(session, key)
        macro = macros[key]
    if macro is None:
        return render_notice(key, **fields), None, "the macro was deleted"
    account = customer.account
    context = {
        "ticket": {"requester": {"first_name": "", "name": "", "email": customer.email}},
        "account": {"name": account.name, "plan_name": account.plan_name or "", "currency": account.currency},
        "agent": {"name": "", "first_name": "", "email": ""},
        **_billing_context(customer, fields),
    }
    try:
        return render(macro.body_template, context), macro, None
    except TemplateProblem as error:
        return render_notice(key, **fields), None, f"the macro {macro.name!r} could not be rendered ({error})"


def email_customer(
    session: Session,
    customer: BillingCustomer,
    key: str,
    *,
    idempotency_key: str,
    subject: str,
    actor: Actor = INSTALLER,
    macros: dict[str, Macro | None] | None = None,
    **fields: object,
) -> None:
    body, macro, why = render_for_email(session, customer, key, fields, macros)
    if why is not None:
        _fallback_audit(session, actor, key, why, ticket_id=None, customer_id=customer.id)
    outbox.enqueue(
        session,
        EMAIL_JOB,
        {
            "to": customer.email,
            "subject": subject,
            "body_text": body,
            "customer_id": customer.id,
            "notice": key,
            "macro_id": macro.id if macro is not None else None,
        },
        idempotency_key=idempotency_key,
    )


def open_ticket_of(session: Session, customer: BillingCustomer) -> Ticket | None:
    """The customer's account's most recent unsolved ticket, where billing news belongs."""
    return session.scalars(
        select(Ticket)
        .where(Ticket.account_id == customer.account_id, Ticket.status.in_(UNSOLVED_STATUSES))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()
