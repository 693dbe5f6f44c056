"""Macro and notification templates: Jinja in a sandbox, over plain data only.

Templates are written by staff, so they render in :class:`jinja2.sandbox.SandboxedEnvironment`
with a context of plain dicts and strings (no ORM objects, no callables): a template can read
``{{ ticket.requester.first_name }}``, ``{{ agent.name }}``, ``{{ account.plan_name }}`` and
nothing else. Undefined names render empty; syntax errors are refused when the template is saved.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from opsdesk.auth.models import User
from opsdesk.money import Money
from opsdesk.tickets.models import Ticket

_environment = SandboxedEnvironment(autoescape=False, trim_blocks=True, keep_trailing_newline=False)
MAX_TEMPLATE = 20_000


class TemplateProblem(ValueError):
    """A template that cannot be used, with a readable reason."""


def check_template(source: str) -> None:
    if len(source) > MAX_TEMPLATE:
        raise TemplateProblem(f"a template is at most {MAX_TEMPLATE} characters")
    try:
        _environment.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"line {error.lineno}: {error.message}") from error


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    """Compiled once per distinct source (bulk notices render one macro thousands of times)."""
    return _environment.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    try:
        return _compiled(source).render(context)
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"line {error.lineno}: {error.message}") from error
    except (SecurityError, UndefinedError, TypeError, ValueError) as error:
        raise TemplateProblem(str(error)) from error


def _first_name(name: str) -> str:
    return name.split(" ", 1)[0] if name else ""


def template_context(ticket: Ticket, agent: User | None) -> dict[str, Any]:
    requester = ticket.requester
    account = ticket.account
    account_data: dict[str, Any] = {}
    if account is not None:
        account_data = {
            "name": account.name,
            "tier": account.tier,
            "plan_name": account.plan_name or "",
            "mrr": f"{Money(account.mrr_amount_minor, account.currency).to_decimal()} {account.currency}",
            "currency": account.currency,
            "renewal_on": account.renewal_on.isoformat() if account.renewal_on else "",
            "is_hot": account.is_hot,
        }
    return {
        "ticket": {
            "id": ticket.id,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category or "",
            "channel": ticket.channel,
            "tags": list(ticket.tags),
            "requester": {
                "name": requester.name,
                "first_name": _first_name(requester.name),
                "email": requester.primary_email or "",
            },
            "assignee": {"name": ticket.assignee.name} if ticket.assignee else {"name": ""},
        },
        "account": account_data,
        "agent": {
            "name": agent.name if agent else "",
            "first_name": _first_name(agent.name) if agent else "",
            "email": agent.email if agent else "",
        },
    }
