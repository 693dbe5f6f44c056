"""Admin pages of channel settings: brands, IMAP mailboxes (with "Test connection") and Slack
connections, under ``/admin/channels``. Admins change them; leads see them read-only.

Handlers parse the form, call the channel services and render a view model; a refused form is
shown again with the problem of each field (422) and nothing changed. Secrets are never put in a
page: a secret field is always empty and says whether one is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.channels.models import EmailBrand, ImapMailbox, SlackConnection
from opsdesk.channels.service import brands, mailboxes, slack
from opsdesk.config import Settings
from opsdesk.errors import DomainError
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import database_of, request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
# The "Channels" item itself comes from the base layout (admins and leads see it on every page).
NAV = [{"href": "/", "label": "Tickets"}]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


def _field(
    name: str,
    label: str,
    value: Any = "",
    *,
    type: str = "text",
    help: str = "",
    options: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "value": value,
        "type": type,
        "help": help,
        "options": options or [],
    }


def _with_errors(fields: list[dict[str, Any]], errors: dict[str, str]) -> list[dict[str, Any]]:
    return [{**field, "error": errors.get(field["name"], "")} for field in fields]


def _problems(error: DomainError) -> tuple[dict[str, str], str]:
    errors: dict[str, str] = {}
    for problem in error.fields:
        key = str(problem.location[-1]) if problem.location else ""
        errors.setdefault(key, problem.message)
    return errors, error.detail


def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return render(
        request,
        template,
        {"nav_items": NAV, "csrf_token": csrf_token(request), **context},
        status_code=status_code,
    )


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "")


def _number(form: FormData, name: str, default: int) -> int:
    raw = _text(form, name).strip()
    return int(raw) if raw.lstrip("-").isdigit() else (default if not raw else -1)


def _save(session: Session, action: Callable[[], Any]) -> tuple[Any, DomainError | None]:
    """Run a service call; a refusal (not a permission refusal) comes back to be shown."""
    try:
        with session.begin_nested():
            return action(), None
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        return None, error


@router.get("/admin/channels", response_model=None)
def channels_home() -> Response:
    return RedirectResponse("/admin/channels/brands", status_code=303)


# ------------------------------------------------------------------------------------ brands


def _brand_fields(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _field("name", "Name", values.get("name", "")),
        _field(
            "support_address",
            "Support address",
            values.get("support_address", ""),
            type="email",
            help="Mail to this address (and its +tags) opens tickets of the brand; replies come back here.",
        ),
        _field(
            "from_address",
            "From address",
            values.get("from_address", ""),
            type="email",
            help="Mail goes out from this address; empty: the support address.",
        ),
        _field("from_name", "From name", values.get("from_name", ""), help="Empty: the brand's name."),
        _field("signature", "Signature", values.get("signature", ""), type="textarea"),
        _field(
            "receipt_template",
            "Receipt text",
            values.get("receipt_template", ""),
            type="textarea",
            help="Sent when a new ticket arrives; may use {name}, {ticket_id} and {subject}. "
            "Empty: the default.",
        ),
    ]


def _brand_values(brand: EmailBrand) -> dict[str, Any]:
    return {
        "name": brand.name,
        "support_address": brand.support_address,
        "from_address": brand.from_address,
        "from_name": brand.from_name,
        "signature": brand.signature,
        "receipt_template": brand.receipt_template,
    }


def _brands_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    rows = [
        {
            "href": f"/admin/channels/brands/{brand.id}",
            "cells": [
                brand.name,
                brand.support_address,
                brand.from_address or brand.support_address,
                brand.from_name,
            ],
        }
        for brand in brands.list_brands(session, actor)
    ]
    return _page(
        request,
        "channels/admin_list.html",
        {
            "title": "Brands",
            "section": "Brands",
            "intro": "The addresses, names, signatures and receipt texts the team answers under.",
            "columns": ["Name", "Support address", "From address", "From name"],
            "rows": rows,
            "empty": "No brands yet: mail is answered from the default support address.",
            "can_manage": has_permission(actor, Permission.CHANNEL_MANAGE),
            "add_title": "Add a brand",
            "add_button": "Add brand",
            "action": "/admin/channels/brands",
            "form_fields": _with_errors(_brand_fields(form or {}), errors or {}),
            "problem": problem,
            "notice": request.query_params.get("notice", ""),
        },
        status_code,
    )


@router.get("/admin/channels/brands", response_class=HTMLResponse)
def brands_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    return _brands_page(request, session, actor)


def _brand_form(form: FormData) -> brands.BrandValues:
    return brands.BrandValues(
        name=_text(form, "name"),
        support_address=_text(form, "support_address"),
        from_address=_text(form, "from_address"),
        from_name=_text(form, "from_name"),
        signature=_text(form, "signature"),
        receipt_template=_text(form, "receipt_template"),
    )


@router.post("/admin/channels/brands", response_model=None)
async def create_brand_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    form = await request.form()
    values = _brand_form(form)
    brand, error = _save(session, lambda: brands.create_brand(session, actor, values))
    if error is not None:
        errors, problem = _problems(error)
        return _brands_page(
            request, session, actor, form=dict(form), errors=errors, problem=problem, status_code=422
        )
    return RedirectResponse(f"/admin/channels/brands/{brand.id}?notice=Brand+added", status_code=303)


def _brand_edit(
    request: Request,
    actor: Actor,
    brand_id: int,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return _page(
        request,
        "channels/admin_edit.html",
        {
            "title": f"Brand: {values.get('name', '')}",
            "section": "Brands",
            "back_href": "/admin/channels/brands",
            "action": f"/admin/channels/brands/{brand_id}",
            "form_fields": _with_errors(_brand_fields(values), errors or {}),
            "can_manage": has_permission(actor, Permission.CHANNEL_MANAGE),
            "problem": problem,
            "notice": request.query_params.get("notice", ""),
            "facts": [],
        },
        status_code,
    )


@router.get("/admin/channels/brands/{brand_id}", response_class=HTMLResponse)
def brand_page(
    brand_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    brand = brands.access_brand(session, actor, brand_id)
    return _brand_edit(request, actor, brand.id, _brand_values(brand))


@router.post("/admin/channels/brands/{brand_id}", response_model=None)
async def update_brand_page(
    brand_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form = await request.form()
    values = _brand_form(form)
    _, error = _save(session, lambda: brands.update_brand(session, actor, brand_id, values))
    if error is not None:
        errors, problem = _problems(error)
        return _brand_edit(
            request, actor, brand_id, dict(form), errors=errors, problem=problem, status_code=422
        )
    return RedirectResponse(f"/admin/channels/brands/{brand_id}?notice=Saved", status_code=303)


# ------------------------------------------------------------------------------------ mailboxes


def _mailbox_fields(values: dict[str, Any], *, has_password: bool) -> list[dict[str, Any]]:
    return [
        _field("name", "Name", values.get("name", "")),
        _field("host", "IMAP host", values.get("host", ""), help="For example imap.gmail.com"),
        _field("port", "Port", values.get("port", 993), type="number"),
        _field(
            "security",
            "Security",
            values.get("security", "tls"),
            type="select",
            options=[
                ("tls", "TLS (port 993)"),
                ("starttls", "STARTTLS (port 143)"),
                ("none", "None (loopback only)"),
            ],
        ),
        _field("username", "Username", values.get("username", "")),
        _field(
            "password",
            "Password",
            "",
            type="password",
            help=(
                "A password is stored (encrypted); leave empty to keep it."
                if has_password
                else "Stored encrypted; never shown again."
            ),
        ),
        _field("folder", "Folder", values.get("folder", "INBOX")),
        _field(
            "poll_interval_seconds",
            "Check every (seconds)",
            values.get("poll_interval_seconds", 60),
            type="number",
            help=f"Between {mailboxes.MIN_POLL_SECONDS} seconds and a day.",
        ),
        _field(
            "is_active",
            "Enabled (checked on its interval)",
            bool(values.get("is_active", True)),
            type="checkbox",
        ),
    ]


def _mailbox_values(mailbox: ImapMailbox) -> dict[str, Any]:
    return {
        "name": mailbox.name,
        "host": mailbox.host,
        "port": mailbox.port,
        "security": mailbox.security,
        "username": mailbox.username,
        "folder": mailbox.folder,
        "poll_interval_seconds": mailbox.poll_interval_seconds,
        "is_active": mailbox.is_active,
    }


def _mailbox_form(form: FormData) -> mailboxes.MailboxValues:
    return mailboxes.MailboxValues(
        name=_text(form, "name"),
        host=_text(form, "host"),
        port=_number(form, "port", 993),
        security=_text(form, "security") or "tls",
        username=_text(form, "username"),
        password=_text(form, "password") or None,
        folder=_text(form, "folder") or "INBOX",
        poll_interval_seconds=_number(form, "poll_interval_seconds", 60),
        is_active=form.get("is_active") == "on",
    )


def _mailboxes_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    rows = [
        {
            "href": f"/admin/channels/mailboxes/{mailbox.id}",
            "cells": [
                mailbox.name,
                f"{mailbox.username} @ {mailbox.host}:{mailbox.port} ({mailbox.security})",
                mailbox.folder,
                f"every {mailbox.poll_interval_seconds} s" if mailbox.is_active else "disabled",
                _when(mailbox.last_polled_at),
                mailbox.last_error or "",
            ],
        }
        for mailbox in mailboxes.list_mailboxes(session, actor)
    ]
    return _page(
        request,
        "channels/admin_list.html",
        {
            "title": "Mailboxes",
            "section": "Mailboxes",
            "intro": "IMAP mailboxes checked for support mail; each new message lands on its ticket once.",
            "columns": ["Name", "Account", "Folder", "Checked", "Last checked", "Last error"],
            "rows": rows,
            "empty": "No mailboxes yet.",
            "can_manage": has_permission(actor, Permission.CHANNEL_MANAGE),
            "add_title": "Add a mailbox",
            "add_button": "Add mailbox",
            "action": "/admin/channels/mailboxes",
            "form_fields": _with_errors(_mailbox_fields(form or {}, has_password=False), errors or {}),
            "problem": problem,
            "notice": request.query_params.get("notice", ""),
        },
        status_code,
    )


@router.get("/admin/channels/mailboxes", response_class=HTMLResponse)
def mailboxes_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    return _mailboxes_page(request, session, actor)


@router.post("/admin/channels/mailboxes", response_model=None)
async def create_mailbox_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    form = await request.form()
    values = _mailbox_form(form)
    settings = _settings(request)
    mailbox, error = _save(session, lambda: mailboxes.add_mailbox(session, actor, settings, values))
    if error is not None:
        errors, problem = _problems(error)
        shown = {**dict(form), "is_active": form.get("is_active") == "on"}
        return _mailboxes_page(
            request, session, actor, form=shown, errors=errors, problem=problem, status_code=422
        )
    return RedirectResponse(f"/admin/channels/mailboxes/{mailbox.id}?notice=Mailbox+added", status_code=303)


def _mailbox_edit(
    request: Request,
    actor: Actor,
    mailbox: ImapMailbox,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    problem: str = "",
    check: Any = None,
    status_code: int = 200,
) -> HTMLResponse:
    facts = [f"Last checked: {_when(mailbox.last_polled_at)}; last message UID {mailbox.last_uid}."]
    if mailbox.last_error:
        facts.append(f"Last error: {mailbox.last_error}")
    return _page(
        request,
        "channels/admin_edit.html",
        {
            "title": f"Mailbox: {mailbox.name}",
            "section": "Mailboxes",
            "back_href": "/admin/channels/mailboxes",
            "action": f"/admin/channels/mailboxes/{mailbox.id}",
            "test_action": f"/admin/channels/mailboxes/{mailbox.id}/test",
            "delete_action": f"/admin/channels/mailboxes/{mailbox.id}/delete",
            "delete_label": "Delete mailbox",
            "form_fields": _with_errors(
                _mailbox_fields(values, has_password=bool(mailbox.password)), errors or {}
            ),
            "can_manage": has_permission(actor, Permission.CHANNEL_MANAGE),
            "problem": problem,
            "notice": request.query_params.get("notice", ""),
            "check": check,
            "facts": facts,
        },
        status_code,
    )


@router.get("/admin/channels/mailboxes/{mailbox_id}", response_class=HTMLResponse)
def mailbox_page(
    mailbox_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    mailbox = mailboxes.access_mailbox(session, actor, mailbox_id)
    return _mailbox_edit(request, actor, mailbox, _mailbox_values(mailbox))


@router.post("/admin/channels/mailboxes/{mailbox_id}", response_model=None)
async def update_mailbox_page(
    mailbox_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form = await request.form()
    values = _mailbox_form(form)
    settings = _settings(request)
    _, error = _save(session, lambda: mailboxes.update_mailbox(session, actor, settings, mailbox_id, values))
    if error is not None:
        errors, problem = _problems(error)
        mailbox = mailboxes.access_mailbox(session, actor, mailbox_id)
        shown = {**dict(form), "is_active": form.get("is_active") == "on"}
        return _mailbox_edit(request, actor, mailbox, shown, errors=errors, problem=problem, status_code=422)
    return RedirectResponse(f"/admin/channels/mailboxes/{mailbox_id}?notice=Saved", status_code=303)


@router.post("/admin/channels/mailboxes/{mailbox_id}/test", response_class=HTMLResponse)
def check_mailbox_page(
    mailbox_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    from opsdesk.channels.imap_polling import check_connection

    require(actor, Permission.CHANNEL_MANAGE)
    mailbox = mailboxes.access_mailbox(session, actor, mailbox_id)
    check = check_connection(database_of(request), _settings(request), mailbox_id)
    return _mailbox_edit(request, actor, mailbox, _mailbox_values(mailbox), check=check)


@router.post("/admin/channels/mailboxes/{mailbox_id}/delete", response_model=None)
def delete_mailbox_page(
    mailbox_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    mailboxes.delete_mailbox(session, actor, mailbox_id)
    return RedirectResponse("/admin/channels/mailboxes?notice=Mailbox+deleted", status_code=303)


# ------------------------------------------------------------------------------------ Slack


def _slack_fields(
    values: dict[str, Any], *, has_token: bool, has_secret: bool, accounts: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    return [
        _field(
            "name", "Name", values.get("name", ""), help="How agents know the channel, e.g. #acme-support."
        ),
        _field("team_id", "Workspace (team) id", values.get("team_id", ""), help="Like T0123ABCD."),
        _field("channel_id", "Channel id", values.get("channel_id", ""), help="Like C0123ABCD."),
        _field(
            "account_id",
            "Customer account",
            str(values.get("account_id") or ""),
            type="select",
            options=[("", "— none —"), *accounts],
            help="People writing in this channel join the account; their tickets belong to it.",
        ),
        _field(
            "bot_token",
            "Bot token",
            "",
            type="password",
            help="A token is stored (encrypted); leave empty to keep it."
            if has_token
            else "xoxb-…; stored encrypted.",
        ),
        _field(
            "signing_secret",
            "Signing secret",
            "",
            type="password",
            help=(
                "A secret is stored (encrypted); leave empty to keep it."
                if has_secret
                else "The Slack app's signing secret; empty: OPSDESK_SLACK_SIGNING_SECRET."
            ),
        ),
    ]


def _account_options(session: Session, actor: Actor) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from opsdesk.tickets.models import Account

    require(actor, Permission.CHANNEL_READ)
    return [
        (str(account_id), name)
        for account_id, name in session.execute(
            select(Account.id, Account.name).order_by(Account.name).limit(500)
        )
    ]


def _slack_values(connection: SlackConnection) -> dict[str, Any]:
    return {
        "name": connection.name,
        "team_id": connection.team_id,
        "channel_id": connection.channel_id,
        "account_id": connection.account_id,
    }


def _slack_form(form: FormData) -> slack.SlackConnectionValues:
    account = _text(form, "account_id").strip()
    return slack.SlackConnectionValues(
        team_id=_text(form, "team_id"),
        channel_id=_text(form, "channel_id"),
        name=_text(form, "name"),
        bot_token=_text(form, "bot_token") or None,
        signing_secret=_text(form, "signing_secret") or None,
        account_id=int(account) if account.isdigit() else None,
    )


def _slack_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    accounts = _account_options(session, actor)
    names = dict(accounts)
    rows = [
        {
            "href": f"/admin/channels/slack/{connection.id}",
            "cells": [
                connection.name or connection.channel_id,
                connection.team_id,
                connection.channel_id,
                names.get(str(connection.account_id), "—") if connection.account_id else "—",
                "own" if connection.signing_secret else "installation's",
            ],
        }
        for connection in slack.list_connections(session, actor)
    ]
    return _page(
        request,
        "channels/admin_list.html",
        {
            "title": "Slack connections",
            "section": "Slack",
            "intro": "Shared Slack channels: a new message opens a ticket, thread replies add to it, "
            "agents' public replies post back into the thread.",
            "columns": ["Name", "Workspace", "Channel", "Account", "Signing secret"],
            "rows": rows,
            "empty": "No Slack channels connected yet.",
            "can_manage": has_permission(actor, Permission.CHANNEL_MANAGE),
            "add_title": "Connect a channel",
            "add_button": "Connect channel",
            "action": "/admin/channels/slack",
            "form_fields": _with_errors(
                _slack_fields(form or {}, has_token=False, has_secret=False, accounts=accounts), errors or {}
            ),
            "problem": problem,
            "notice": request.query_params.get("notice", ""),
        },
        status_code,
    )


@router.get("/admin/channels/slack", response_class=HTMLResponse)
def slack_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    return _slack_page(request, session, actor)


@router.post("/admin/channels/slack", response_model=None)
async def create_slack_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    form = await request.form()
    values = _slack_form(form)
    settings = _settings(request)
    connection, error = _save(session, lambda: slack.create_connection(session, actor, settings, values))
    if error is not None:
        errors, problem = _problems(error)
        return _slack_page(
            request, session, actor, form=dict(form), errors=errors, problem=problem, status_code=422
        )
    return RedirectResponse(
        f"/admin/channels/slack/{connection.id}?notice=Channel+connected", status_code=303
    )


def _slack_edit(
    request: Request,
    session: Session,
    actor: Actor,
    connection: SlackConnection,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    fields = _slack_fields(
        values,
        has_token=bool(connection.bot_token),
        has_secret=connection.signing_secret is not None,
        accounts=_account_options(session, actor),
    )
    return _page(
        request,
        "channels/admin_edit.html",
        {
            "title": f"Slack: {connection.name or connection.channel_id}",
            "section": "Slack",
            "back_href": "/admin/channels/slack",
            "action": f"/admin/channels/slack/{connection.id}",
            "delete_action": f"/admin/channels/slack/{connection.id}/delete",
            "delete_label": "Disconnect channel",
            "form_fields": _with_errors(fields, errors or {}),
            "can_manage": has_permission(actor, Permission.CHANNEL_MANAGE),
            "problem": problem,
            "notice": request.query_params.get("notice", ""),
            "facts": [],
        },
        status_code,
    )


@router.get("/admin/channels/slack/{connection_id}", response_class=HTMLResponse)
def slack_connection_page(
    connection_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    connection = slack.access_connection(session, actor, connection_id)
    return _slack_edit(request, session, actor, connection, _slack_values(connection))


@router.post("/admin/channels/slack/{connection_id}", response_model=None)
async def update_slack_page(
    connection_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form = await request.form()
    values = _slack_form(form)
    settings = _settings(request)
    _, error = _save(
        session, lambda: slack.update_connection(session, actor, settings, connection_id, values)
    )
    if error is not None:
        errors, problem = _problems(error)
        connection = slack.access_connection(session, actor, connection_id)
        return _slack_edit(
            request, session, actor, connection, dict(form), errors=errors, problem=problem, status_code=422
        )
    return RedirectResponse(f"/admin/channels/slack/{connection_id}?notice=Saved", status_code=303)


@router.post("/admin/channels/slack/{connection_id}/delete", response_model=None)
def delete_slack_page(
    connection_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    slack.disconnect(session, actor, connection_id)
    return RedirectResponse("/admin/channels/slack?notice=Channel+disconnected", status_code=303)
