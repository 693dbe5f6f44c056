"""The chat's pages, mounted by ``channels.pages``: the widget script, the agents' live chat page
and their socket, and the form posts behind the chat panel of the ticket page.

- ``GET /widget.js``: our own vanilla script (no build step, no CDN); embed it with
  ``<script src="https://desk.example/widget.js" data-brand="KEY" async></script>``.
- ``GET /chat``: waiting and active conversations, accept, reply, end, presence.
- ``WS /chat/agent-ws``: the agent's socket (session cookie; the ``Origin`` must be opsdesk's own,
  so another site cannot ride the cookie). Frames from the page: ``hello {status}``, ``heartbeat``,
  ``presence {status}``, ``open {conversation_id}``, ``accept``, ``reply {conversation_id,
  client_id, body}``, ``end``, ``typing``; from opsdesk: ``queue``, ``transcript``, ``message``,
  ``status``, ``presence``, ``typing``, ``ack``, ``error``.
- ``/admin/chat``: the widget's brands, their allowed origins and the embedding snippet (admins).
- ``POST /chat/conversations/{id}/accept|reply|end`` and ``POST /chat/presence``: the same
  actions for forms without JavaScript; they redirect back (``next``, default the ticket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.channels import chat_pipeline
from opsdesk.channels.chat_fanout import agents_topic, conversation_topic
from opsdesk.channels.chat_socket import CLOSE_POLICY, CLOSE_UNAUTHENTICATED, ChatSocket, error_frame
from opsdesk.channels.errors import InvalidChatError, OriginNotAllowedError
from opsdesk.channels.service import chat, chat_presence
from opsdesk.errors import DomainError, FieldProblem
from opsdesk.web.auth import SESSION_COOKIE, csrf_token, page_actor, safe_next
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent / "static"
_local_connections: dict[int, int] = {}  # user id -> open agent sockets in this process


@cache
def _script(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _javascript(name: str) -> Response:
    return Response(
        _script(name),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/widget.js")
def widget_script() -> Response:
    """The embeddable chat widget (any site may load the script; the brand's origins decide
    where it may talk to opsdesk)."""
    return _javascript("widget.js")


@router.get("/chat/agent.js")
def agent_script() -> Response:
    return _javascript("chat_agent.js")


@router.get("/chat", response_class=HTMLResponse)
def chat_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    queue = chat.queue_for_agent(session, actor)
    assert actor.user_id is not None
    return render(
        request,
        "channels/chat.html",
        {
            "waiting": queue["waiting"],
            "active": queue["active"],
            "presence": chat_presence.presence_of(session, actor.user_id),
            "agents_online": chat_presence.online_agent_count(session),
            "csrf_token": csrf_token(request),
            "nav_items": [
                {"href": "/", "label": "Tickets"},
                {"href": "/chat", "label": "Chat", "active": True},
            ],
        },
    )


def _brands_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    values: dict[str, str],
    errors: dict[str, list[str]],
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    base = str(request.app.state.settings.base_url).rstrip("/")
    brands = [
        {
            "id": brand.id,
            "key": brand.key,
            "name": brand.name,
            "origins": "\n".join(brand.allowed_origins),
            "origins_list": ", ".join(brand.allowed_origins),
            "timeout": brand.accept_timeout_seconds,
            "snippet": f'<script src="{base}/widget.js" data-brand="{brand.key}" async></script>',
        }
        for brand in chat.list_brands(session, actor)
    ]
    return render(
        request,
        "channels/chat_brands.html",
        {
            "brands": brands,
            "values": values,
            "errors": errors,
            "notice": notice,
            "csrf_token": csrf_token(request),
            "nav_items": [
                {"href": "/", "label": "Tickets"},
                {"href": "/chat", "label": "Chat"},
            ],
        },
        status_code=status_code,
    )


def _form_errors(error: DomainError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in error.fields:
        errors.setdefault(str(problem.location[0]), []).append(problem.message)
    return errors


@router.get("/admin/chat", response_class=HTMLResponse)
def chat_brands_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    return _brands_page(
        request, session, actor, values={}, errors={}, notice=request.query_params.get("saved", "")
    )


@router.post("/admin/chat", response_model=None)
def add_chat_brand(
    request: Request,
    key: str = Form(""),
    name: str = Form(""),
    origins: str = Form(""),
    greeting: str = Form("Hi! How can we help?"),
    accept_timeout_seconds: str = Form("120"),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    values = {
        "key": key,
        "name": name,
        "origins": origins,
        "greeting": greeting,
        "timeout": accept_timeout_seconds,
    }
    try:
        timeout = int(accept_timeout_seconds)
    except ValueError:
        timeout = -1
    try:
        with session.begin_nested():
            chat.create_brand(
                session,
                actor,
                key=key.strip(),
                name=name,
                allowed_origins=[line.strip() for line in origins.splitlines() if line.strip()],
                greeting=greeting,
                accept_timeout_seconds=timeout,
            )
    except InvalidChatError as error:
        return _brands_page(
            request,
            session,
            actor,
            values=values,
            errors=_form_errors(error),
            notice=error.detail,
            status_code=422,
        )
    return RedirectResponse(f"/admin/chat?saved={key.strip()}", status_code=303)


@router.post("/admin/chat/{brand_id}/origins", response_model=None)
def change_chat_origins(
    request: Request,
    brand_id: int,
    origins: str = Form(""),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    try:
        with session.begin_nested():
            brand = chat.set_allowed_origins(
                session, actor, brand_id, [line.strip() for line in origins.splitlines() if line.strip()]
            )
    except InvalidChatError as error:
        return _brands_page(
            request,
            session,
            actor,
            values={},
            errors=_form_errors(error),
            notice=error.detail,
            status_code=422,
        )
    return RedirectResponse(f"/admin/chat?saved={brand.key}", status_code=303)


def _back(next_path: str | None, fallback: str) -> RedirectResponse:
    return RedirectResponse(safe_next(next_path) if next_path else fallback, status_code=303)


def _ticket_path(session: Session, actor: Actor, conversation_id: int) -> str:
    conversation = chat.access_conversation(session, actor, conversation_id)
    return f"/tickets/{conversation.ticket_id}" if conversation.ticket_id else "/chat"


@router.post("/chat/conversations/{conversation_id}/accept", response_model=None)
def accept_from_form(
    conversation_id: int,
    next_path: str | None = Form(None, alias="next"),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    chat.accept(session, actor, conversation_id)
    return _back(next_path, _ticket_path(session, actor, conversation_id))


@router.post("/chat/conversations/{conversation_id}/reply", response_model=None)
def reply_from_form(
    conversation_id: int,
    body: str = Form(""),
    client_id: str = Form(""),
    next_path: str | None = Form(None, alias="next"),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    chat.agent_reply(session, actor, conversation_id, client_id=client_id, body=body)
    return _back(next_path, _ticket_path(session, actor, conversation_id))


@router.post("/chat/conversations/{conversation_id}/end", response_model=None)
def end_from_form(
    conversation_id: int,
    next_path: str | None = Form(None, alias="next"),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    chat.end_by_agent(session, actor, conversation_id)
    return _back(next_path, _ticket_path(session, actor, conversation_id))


@router.post("/chat/presence", response_model=None)
def presence_from_form(
    status: str = Form(""),
    next_path: str | None = Form(None, alias="next"),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    chat_presence.set_presence(session, actor, status)
    return _back(next_path, "/chat")


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if not origin:
        return False
    return urlsplit(origin).netloc.lower() == (websocket.headers.get("host") or "").lower()


def _conversation_id(frame: dict[str, Any]) -> int:
    value = frame.get("conversation_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidChatError(
            "which conversation?", fields=[FieldProblem(("conversation_id",), "an integer is required")]
        )
    return value


@router.websocket("/chat/agent-ws")
async def agent_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    socket = ChatSocket(websocket)
    user_id: int | None = None
    try:
        if not _same_origin(websocket):
            await socket.refuse(
                OriginNotAllowedError("the agent chat only accepts connections from opsdesk's own pages"),
                CLOSE_POLICY,
            )
            return
        agent = await socket.run_db(
            chat_pipeline.agent_for_cookie, socket.database, websocket.cookies.get(SESSION_COOKIE)
        )
        if agent is None:
            error = DomainError("sign in to answer chats")
            error.code = "not_signed_in"
            error.status = 401
            await socket.refuse(error, CLOSE_UNAUTHENTICATED)
            return
        user_id = agent.user_id
        _local_connections[user_id] = _local_connections.get(user_id, 0) + 1
        await _serve_agent(socket, user_id, agent.group_ids)
    finally:
        if user_id is not None and user_id in _local_connections:
            _local_connections[user_id] -= 1
            if _local_connections[user_id] <= 0:
                del _local_connections[user_id]
                # the last tab of this agent in this process closed: offline for chat
                with contextlib.suppress(Exception):
                    await socket.run_db(chat_pipeline.agent_gone, socket.database, user_id)
        await socket.close()


async def _serve_agent(socket: ChatSocket, user_id: int, group_ids: frozenset[int] | None) -> None:
    database = socket.database
    socket.follow(agents_topic(socket.namespace))
    opened: set[int] = set()

    def visible(item: dict[str, Any]) -> dict[str, Any] | None:
        if item.get("type") == "typing" and item.get("from") == "agent":
            return None
        # a contractor hears only of chats in their groups (opening others is refused anyway)
        if (
            group_ids is not None
            and item.get("type") == "status"
            and item["conversation"].get("group_id") not in group_ids
        ):
            return None
        return item

    socket.start_writer(visible)
    while True:
        frame = await socket.receive()
        if frame is None:
            return
        kind = frame["type"]
        ref = frame.get("client_id")
        try:
            if kind == "hello":
                status = frame.get("status")
                await socket.send(
                    await socket.run_db(
                        chat_pipeline.agent_hello,
                        database,
                        user_id,
                        status if isinstance(status, str) else None,
                    )
                )
            elif kind == "heartbeat":
                await socket.run_db(chat_pipeline.agent_heartbeat, database, user_id)
                await socket.send({"type": "pong"})
            elif kind == "queue":
                await socket.send(await socket.run_db(chat_pipeline.agent_queue, database, user_id))
            elif kind == "presence":
                await socket.send(
                    await socket.run_db(chat_pipeline.agent_presence, database, user_id, frame.get("status"))
                )
            elif kind == "open":
                conversation_id = _conversation_id(frame)
                answer = await socket.run_db(chat_pipeline.agent_open, database, user_id, conversation_id)
                if conversation_id not in opened:
                    opened.add(conversation_id)
                    socket.follow(conversation_topic(socket.namespace, conversation_id))
                await socket.send(answer)
            elif kind == "accept":
                conversation_id = _conversation_id(frame)
                await socket.send(
                    await socket.run_db(chat_pipeline.agent_accept, database, user_id, conversation_id)
                )
            elif kind == "reply":
                conversation_id = _conversation_id(frame)
                await socket.send(
                    await socket.run_db(
                        chat_pipeline.agent_reply,
                        database,
                        user_id,
                        conversation_id,
                        client_id=frame.get("client_id"),
                        body=frame.get("body"),
                    )
                )
            elif kind == "end":
                conversation_id = _conversation_id(frame)
                await socket.send(
                    await socket.run_db(chat_pipeline.agent_end, database, user_id, conversation_id)
                )
            elif kind == "typing":
                conversation_id = _conversation_id(frame)
                if conversation_id in opened:
                    socket.hub.publish(
                        conversation_topic(socket.namespace, conversation_id),
                        {"type": "typing", "from": "agent", "conversation_id": conversation_id},
                    )
            else:
                raise InvalidChatError(f"unknown frame type {kind!r}", fields=[])
        except DomainError as error:
            await socket.send(error_frame(error, ref))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("chat frame %s failed", kind)
            await socket.send(
                {
                    "type": "error",
                    "code": "server_error",
                    "status": 500,
                    "detail": "something went wrong; please retry",
                    "errors": [],
                    "ref": ref,
                }
            )
