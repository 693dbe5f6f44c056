"""Macros: a reply template (sandboxed Jinja) plus field changes, personal or shared.

The preview renders exactly what :func:`apply_macro` would send (the same template, context and
changes); applying counts the use with an SQL expression (no read-modify-write).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.automation.actions import field_changes, validate_actions
from opsdesk.automation.errors import InvalidMacroError, MacroNotFoundError, MacroPreviewOutdatedError
from opsdesk.automation.models import Macro
from opsdesk.automation.templating import TemplateProblem, check_template, render, template_context
from opsdesk.errors import FieldProblem
from opsdesk.tickets.models import Message, Ticket
from opsdesk.tickets.service import add_message, update_ticket

MACRO_ACTIONS = frozenset({"set_field", "add_tags", "remove_tags", "assign"})


@dataclass(frozen=True, slots=True)
class MacroPreview:
    body: str
    public_reply: bool
    changes: dict[str, Any]

    @property
    def digest(self) -> str:
        """A fingerprint of exactly what would be sent and changed: applying with it refuses to
        send anything else (the ticket or the macro changed since the preview)."""
        content = json.dumps(
            {"body": self.body, "public": self.public_reply, "changes": self.changes},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(content.encode()).hexdigest()


def visible_macros(session: Session, actor: Actor) -> list[Macro]:
    """Shared macros and the actor's own."""
    require(actor, Permission.TICKET_REPLY)
    return list(
        session.scalars(
            select(Macro)
            .where(or_(Macro.owner_id.is_(None), Macro.owner_id == actor.user_id))
            .order_by(Macro.usage_count.desc(), Macro.name)
        )
    )


def access_macro(session: Session, actor: Actor, macro_id: int) -> Macro:
    macro = session.get(Macro, macro_id)
    if macro is None or (macro.owner_id is not None and macro.owner_id != actor.user_id):
        raise MacroNotFoundError(f"macro {macro_id} not found")
    return macro


def save_macro(
    session: Session,
    actor: Actor,
    *,
    name: str,
    body_template: str,
    public_reply: bool = True,
    actions: Sequence[dict[str, Any]] = (),
    shared: bool = False,
    macro_id: int | None = None,
) -> Macro:
    """Create or change a macro. Shared macros need ``rule.manage``; anyone who replies may keep
    personal ones. Validated (template syntax, actions) before anything is saved."""
    require(actor, Permission.TICKET_REPLY)
    if shared:
        require(actor, Permission.RULE_MANAGE)
    problems: list[FieldProblem] = []
    clean_name = name.strip()
    if not clean_name or len(clean_name) > 120:
        problems.append(FieldProblem(("name",), "must be 1 to 120 characters"))
    try:
        check_template(body_template)
    except TemplateProblem as error:
        problems.append(FieldProblem(("body_template",), str(error)))
    action_list = list(actions)
    if action_list:
        problems.extend(validate_actions(session, action_list, allow_macro=False))
        for index, action in enumerate(action_list):
            if isinstance(action, dict) and action.get("type") not in MACRO_ACTIONS:
                problems.append(FieldProblem(("actions", index), f"a macro may only {sorted(MACRO_ACTIONS)}"))
    if not body_template.strip() and not action_list:
        problems.append(FieldProblem(("body_template",), "give a reply, field changes, or both"))
    if problems:
        raise InvalidMacroError("the macro is not valid", fields=problems)
    if macro_id is None:
        macro = Macro(usage_count=0)
        session.add(macro)
        action_name = "created"
    else:
        macro = access_macro(session, actor, macro_id)
        if macro.owner_id is None:
            require(actor, Permission.RULE_MANAGE)
        action_name = "updated"
    macro.name = clean_name
    macro.body_template = body_template
    macro.public_reply = public_reply
    macro.actions = action_list
    macro.owner_id = None if shared else actor.user_id
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="macro",
        entity_id=macro.id,
        action=action_name,
        new={"name": clean_name, "shared": shared},
    )
    return macro


def preview_macro(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    macro: Macro,
    *,
    extra_context: Mapping[str, Any] | None = None,
) -> MacroPreview:
    """Exactly what applying the macro would send and change, without changing anything.

    ``extra_context`` adds plain data a calling domain offers the template (billing passes
    ``billing`` with the amount, currency, invoice number, plan) beside ticket, account, agent."""
    del session
    require(actor, Permission.TICKET_REPLY)
    context = template_context(ticket, actor.user)
    if extra_context:
        context.update(extra_context)
    try:
        body = render(macro.body_template, context)
    except TemplateProblem as error:
        raise InvalidMacroError(f"the macro cannot be rendered: {error}") from error
    return MacroPreview(body=body, public_reply=macro.public_reply, changes=field_changes(macro.actions))


def apply_macro(
    session: Session, actor: Actor, ticket: Ticket, macro: Macro, *, preview_digest: str | None = None
) -> Message | None:
    """Reply (or note) with the rendered template and make the macro's changes, as the macro.
    With ``preview_digest`` (from :attr:`MacroPreview.digest`), refuse unless what would be sent
    now is exactly what was previewed."""
    require(actor, Permission.TICKET_REPLY)
    if preview_digest is not None and preview_macro(session, actor, ticket, macro).digest != preview_digest:
        raise MacroPreviewOutdatedError(
            "the ticket or the macro changed since the preview; nothing was applied, preview it again"
        )
    if actor.user is None:
        return apply_macro_as(session, actor, ticket, macro)
    return apply_macro_as(session, Actor.macro(macro.name, macro.id, actor.user), ticket, macro)


def apply_macro_as(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    macro: Macro,
    *,
    extra_context: Mapping[str, Any] | None = None,
) -> Message | None:
    preview = preview_macro(session, actor, ticket, macro, extra_context=extra_context)
    message = None
    if preview.body.strip():
        message = add_message(session, actor, ticket, body_text=preview.body, public=preview.public_reply)
    if preview.changes:
        update_ticket(session, actor, ticket, preview.changes)
    session.execute(
        update(Macro)
        .where(Macro.id == macro.id)
        .values(usage_count=Macro.usage_count + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(macro, ["usage_count"])
    audit.record(
        session,
        actor,
        entity_type="ticket",
        entity_id=ticket.id,
        action="macro_applied",
        new={"macro": macro.name, "macro_id": macro.id},
        ticket_id=ticket.id,
    )
    return message


def can_manage_shared(actor: Actor) -> bool:
    return has_permission(actor, Permission.RULE_MANAGE)
