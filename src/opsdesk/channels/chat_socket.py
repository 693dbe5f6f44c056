"""What the visitor's and the agent's chat sockets share: reading JSON frames, sending events the
hub delivers, running database work off the event loop, and turning domain errors into error
frames.

Frames are JSON objects with a ``type``. An error frame is
``{"type": "error", "code": …, "status": …, "detail": …, "errors": […], "ref": <client id or null>}``
(``errors`` as in the API's problem+json): the
request it answers changed nothing, and the connection stays open unless the code is fatal
(unknown brand, origin not allowed, not signed in).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from opsdesk.channels.chat_fanout import ChatHub, Subscription, hub_for, namespace_for
from opsdesk.config import Settings
from opsdesk.db import Database
from opsdesk.errors import DomainError

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_FRAME_BYTES = 64 * 1024
# Close codes in the private range: the widget shows the reason and does not retry.
CLOSE_POLICY = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_UNAUTHENTICATED = 4401


def error_frame(error: DomainError, ref: object = None) -> dict[str, Any]:
    return {
        "type": "error",
        "code": error.code,
        "status": error.status,
        "detail": error.detail,
        "errors": [
            {
                "location": list(item.location),
                "field": ".".join(str(part) for part in item.location),
                "message": item.message,
                "code": item.code,
            }
            for item in error.fields
        ],
        "ref": ref,
    }


class ChatSocket:
    """One accepted WebSocket with its hub subscription and a writer task."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        settings: Settings = websocket.app.state.settings
        self.settings = settings
        self.database: Database = websocket.app.state.database
        self.hub: ChatHub = hub_for(settings.broker_url)
        self.namespace = namespace_for(self.database.engine.url.render_as_string(hide_password=True))
        self.subscription = Subscription(asyncio.Queue(), asyncio.get_running_loop())
        self._send_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None

    async def run_db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(function, *args, **kwargs)

    async def send(self, frame: dict[str, Any]) -> None:
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.websocket.send_text(json.dumps(frame))

    async def receive(self) -> dict[str, Any] | None:
        """The next frame, or None when the peer left. A malformed frame answers an error frame."""
        while True:
            try:
                text = await self.websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return None
            if len(text) > MAX_FRAME_BYTES:
                await self.send(
                    {
                        "type": "error",
                        "code": "frame_too_large",
                        "status": 413,
                        "detail": f"frames are limited to {MAX_FRAME_BYTES} bytes",
                        "errors": [],
                        "ref": None,
                    }
                )
                continue
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await self.send(
                    {
                        "type": "error",
                        "code": "bad_frame",
                        "status": 400,
                        "detail": "send a JSON object with a type",
                        "errors": [],
                        "ref": None,
                    }
                )
                continue
            return frame

    def follow(self, topic: str) -> None:
        self.hub.subscribe(topic, self.subscription)

    def unfollow(self, topic: str) -> None:
        self.hub.unsubscribe(topic, self.subscription)

    def start_writer(
        self, transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    ) -> None:
        async def pump() -> None:
            while True:
                item = await self.subscription.queue.get()
                frame = transform(item) if transform is not None else item
                if frame is not None:
                    await self.send(frame)

        self._writer = asyncio.create_task(pump())

    async def refuse(self, error: DomainError, close_code: int) -> None:
        await self.send(error_frame(error))
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close(code=close_code, reason=error.code)

    async def close(self) -> None:
        self.hub.unsubscribe_all(self.subscription)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.websocket.close()
