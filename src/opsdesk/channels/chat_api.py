"""The chat widget's endpoints, mounted under ``/api/v1/channels`` by ``channels.api``.

- ``GET /chat/brands/{key}``: the widget's settings (name, greeting, whether an agent is online),
  with CORS for the brand's allowed origins only; other origins get 403 problem+json and no
  ``Access-Control-Allow-Origin``.
- ``GET|POST /chat/brands``, ``PUT /chat/brands/{id}/origins``: the widget's brands and their
  allowed origins (admins with ``channel.manage``; reading needs ``ticket.read``).
- ``WS /chat/ws?brand=<key>``: the visitor's socket. The ``Origin`` header must be on the brand's
  list. Frames (JSON) from the widget: ``hello {token}``, ``start {name, email}``,
  ``message {client_id, body}``, ``typing``, ``end``, ``ping``; from opsdesk: ``welcome``,
  ``started {token}``, ``ack {client_id, message_id, duplicate}``, ``message``, ``status``,
  ``typing``, ``pong``, ``error {code, detail, errors, ref}``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.channels import chat_pipeline
from opsdesk.channels.chat_fanout import conversation_topic
from opsdesk.channels.chat_socket import CLOSE_NOT_FOUND, CLOSE_POLICY, ChatSocket, error_frame
from opsdesk.channels.errors import BadVisitorTokenError, InvalidChatError, UnknownChatBrandError
from opsdesk.channels.models import ChatBrand
from opsdesk.channels.service import chat
from opsdesk.channels.service.brand_snapshots import ChatBrandInfo
from opsdesk.errors import DomainError
from opsdesk.web.auth import api_actor
from opsdesk.web.problems import problem_response
from opsdesk.web.sessions import request_session

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


class ChatBrandIn(BaseModel):
    key: str = Field(max_length=60)
    name: str = Field(max_length=120)
    allowed_origins: list[str] = Field(min_length=1, max_length=50)
    greeting: str = Field(default="Hi! How can we help?", max_length=500)
    accept_timeout_seconds: int = 120
    email_brand_id: int | None = None


class OriginsIn(BaseModel):
    allowed_origins: list[str] = Field(min_length=1, max_length=50)


def _brand_out(brand: ChatBrand, request: Request) -> dict[str, Any]:
    base = str(request.app.state.settings.base_url).rstrip("/")
    return {
        "id": brand.id,
        "key": brand.key,
        "name": brand.name,
        "allowed_origins": brand.allowed_origins,
        "greeting": brand.greeting,
        "accept_timeout_seconds": brand.accept_timeout_seconds,
        "email_brand_id": brand.email_brand_id,
        "snippet": f'<script src="{base}/widget.js" data-brand="{brand.key}" async></script>',
    }


@router.get("/chat/brands")
def list_chat_brands(
    request: Request, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[dict[str, Any]]:
    return [_brand_out(brand, request) for brand in chat.list_brands(session, actor)]


@router.post("/chat/brands", status_code=status.HTTP_201_CREATED)
def create_chat_brand(
    body: ChatBrandIn,
    request: Request,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> dict[str, Any]:
    """Add a site that embeds the widget; only the listed origins may talk to opsdesk."""
    brand = chat.create_brand(
        session,
        actor,
        key=body.key,
        name=body.name,
        allowed_origins=body.allowed_origins,
        greeting=body.greeting,
        accept_timeout_seconds=body.accept_timeout_seconds,
        email_brand_id=body.email_brand_id,
    )
    return _brand_out(brand, request)


@router.put("/chat/brands/{brand_id}/origins")
def set_chat_brand_origins(
    brand_id: int,
    body: OriginsIn,
    request: Request,
    actor: Actor = Depends(api_actor),
    session: Session = Depends(request_session),
) -> dict[str, Any]:
    return _brand_out(chat.set_allowed_origins(session, actor, brand_id, body.allowed_origins), request)


@router.get("/chat/brands/{key}")
async def widget_config(key: str, request: Request) -> Response:
    """The widget's settings for a site on the brand's allowed origins."""
    origin = request.headers.get("origin")
    try:
        config = await asyncio.to_thread(chat_pipeline.widget_config, request.app.state.database, key, origin)
    except DomainError as error:
        return problem_response(request, error.status, error.title, error.detail, error.code, error.fields)
    return JSONResponse(config, headers=_cors_headers(origin or ""))


@router.options("/chat/brands/{key}", include_in_schema=False)
async def widget_config_preflight(key: str, request: Request) -> Response:
    origin = request.headers.get("origin")
    try:
        await asyncio.to_thread(chat_pipeline.check_brand, request.app.state.database, key, origin)
    except DomainError as error:
        return problem_response(request, error.status, error.title, error.detail, error.code, error.fields)
    return Response(status_code=204, headers=_cors_headers(origin or ""))


@router.websocket("/chat/ws")
async def visitor_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    socket = ChatSocket(websocket)
    origin = websocket.headers.get("origin") or ""
    client = websocket.client.host if websocket.client is not None else "unknown"
    try:
        try:
            brand = await socket.run_db(
                chat_pipeline.check_brand, socket.database, websocket.query_params.get("brand", ""), origin
            )
        except DomainError as error:
            close = CLOSE_NOT_FOUND if isinstance(error, UnknownChatBrandError) else CLOSE_POLICY
            await socket.refuse(error, close)
            return
        await _serve_visitor(socket, brand, origin, client)
    finally:
        await socket.close()


async def _serve_visitor(socket: ChatSocket, brand: ChatBrandInfo, origin: str, client: str) -> None:
    database = socket.database
    conversation_id: int | None = None

    def attach(new_id: int) -> None:
        nonlocal conversation_id
        if conversation_id is not None:
            socket.unfollow(conversation_topic(socket.namespace, conversation_id))
        conversation_id = new_id
        socket.follow(conversation_topic(socket.namespace, new_id))

    def visible(item: dict[str, Any]) -> dict[str, Any] | None:
        # agents' typing is shown; the visitor's own typing echo is not
        if item.get("type") == "typing" and item.get("from") == "visitor":
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
                token = frame.get("token")
                found, answer = await socket.run_db(
                    chat_pipeline.visitor_hello, database, brand, token if isinstance(token, str) else None
                )
                if found is not None:
                    attach(found)
                await socket.send(answer)
            elif kind == "start":
                new_id, answer = await socket.run_db(
                    chat_pipeline.visitor_start,
                    database,
                    brand,
                    name=frame.get("name"),
                    email=frame.get("email"),
                    origin=origin,
                    client_address=client,
                    starts_per_ten_minutes=socket.settings.chat_starts_per_ten_minutes,
                )
                attach(new_id)
                await socket.send(answer)
            elif kind == "ping":
                if conversation_id is not None:
                    await socket.run_db(chat_pipeline.visitor_ping, database, conversation_id)
                await socket.send({"type": "pong"})
            elif conversation_id is None:
                raise BadVisitorTokenError("say hello with your token, or start a conversation first")
            elif kind == "message":
                answer = await socket.run_db(
                    chat_pipeline.visitor_message,
                    database,
                    conversation_id,
                    client_id=frame.get("client_id"),
                    body=frame.get("body"),
                    per_minute=socket.settings.chat_messages_per_minute,
                )
                await socket.send(answer)
            elif kind == "typing":
                socket.hub.publish(
                    conversation_topic(socket.namespace, conversation_id),
                    {"type": "typing", "from": "visitor", "conversation_id": conversation_id},
                )
            elif kind == "end":
                await socket.send(await socket.run_db(chat_pipeline.visitor_end, database, conversation_id))
            else:
                raise InvalidChatError(f"unknown frame type {kind!r}", fields=[])
        except DomainError as error:
            await socket.send(error_frame(error, ref))
        except Exception:
            log.exception("chat frame %s failed", kind)
            await socket.send(
                {
                    "type": "error",
                    "code": "server_error",
                    "status": 500,
                    "detail": "something went wrong; your message was kept and will be sent again",
                    "errors": [],
                    "ref": ref,
                }
            )
