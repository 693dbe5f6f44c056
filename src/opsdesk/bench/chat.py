"""``opsdesk bench chat``: live chat round trips on loopback WebSockets. Prints one JSON object.

A real server (Uvicorn serving ``create_app()``, SQLite in a temporary directory) runs in this
process on a free port; a visitor socket (as the widget opens it, with an allowed ``Origin``) and
a signed-in agent socket talk through it.

- customer → agent: the visitor sends a message; timed until the agent's socket receives it
  (stored in ``raw_inbound``, committed, made a ticket message, committed, fanned out);
- agent → customer: the agent replies; timed until the visitor's socket receives it;
- throughput: several visitors send without waiting; messages per second until the agent has
  received every one.

One message at a time for the latencies (p50/p99/max in ms); wall time on a shared machine, so
CPU seconds and the load average are printed beside them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

ORIGIN = "http://bench.example"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(p99, 2),
        "max": round(ordered[-1], 2),
    }


class _Reader:
    """Reads one socket's frames and lets the bench wait for a frame matching a predicate."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.connection:
            await self.frames.put(json.loads(text))

    async def wait(self, kind: str, **match: Any) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.frames.get(), timeout=30)
            if frame.get("type") == "error":
                raise RuntimeError(f"chat error: {frame}")
            if frame.get("type") == kind and all(frame.get(key) == value for key, value in match.items()):
                return frame


async def _run(base: str, cookie: str, messages: int, visitors: int, per_visitor: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    ws_base = base.replace("http://", "ws://")
    visitor_url = f"{ws_base}/api/v1/channels/chat/ws?brand=bench"
    async with (
        connect(
            f"{ws_base}/chat/agent-ws", origin=Origin(base), additional_headers={"Cookie": cookie}
        ) as agent,
        connect(visitor_url, origin=Origin(ORIGIN)) as visitor,
    ):
        desk, customer = _Reader(agent), _Reader(visitor)
        await agent.send(json.dumps({"type": "hello"}))
        await desk.wait("queue")
        await visitor.send(json.dumps({"type": "hello"}))
        await customer.wait("welcome")
        await visitor.send(
            json.dumps({"type": "start", "name": "Bench Visitor", "email": "bench@customer.example"})
        )
        await customer.wait("started")
        await visitor.send(json.dumps({"type": "message", "client_id": "first", "body": "Hello"}))
        conversation_id = (await customer.wait("ack", client_id="first"))["conversation"]["id"]
        await agent.send(json.dumps({"type": "accept", "conversation_id": conversation_id}))
        await agent.send(json.dumps({"type": "open", "conversation_id": conversation_id}))
        await desk.wait("transcript")

        to_agent: list[float] = []
        to_customer: list[float] = []
        cpu_start = time.process_time()
        for number in range(messages):
            client_id = f"v{number}"
            started = time.perf_counter()
            await visitor.send(
                json.dumps({"type": "message", "client_id": client_id, "body": f"Customer message {number}"})
            )
            await desk.wait("message", client_id=client_id)
            to_agent.append((time.perf_counter() - started) * 1000)
            await customer.wait("ack", client_id=client_id)

            client_id = f"a{number}"
            started = time.perf_counter()
            await agent.send(
                json.dumps(
                    {
                        "type": "reply",
                        "conversation_id": conversation_id,
                        "client_id": client_id,
                        "body": f"Agent reply {number}",
                    }
                )
            )
            await customer.wait("message", client_id=client_id)
            to_customer.append((time.perf_counter() - started) * 1000)
            await desk.wait("ack", client_id=client_id)
        round_trip_cpu = time.process_time() - cpu_start

        # throughput: several visitors write without waiting; the agent follows every conversation
        senders = []
        expected: set[str] = set()
        for index in range(visitors):
            connection = await connect(visitor_url, origin=Origin(ORIGIN)).__aenter__()
            reader = _Reader(connection)
            await connection.send(json.dumps({"type": "hello"}))
            await reader.wait("welcome")
            await connection.send(
                json.dumps(
                    {"type": "start", "name": f"Visitor {index}", "email": f"load{index}@customer.example"}
                )
            )
            await reader.wait("started")
            await connection.send(
                json.dumps({"type": "message", "client_id": f"t{index}-open", "body": "Hi"})
            )
            opened = (await reader.wait("ack", client_id=f"t{index}-open"))["conversation"]["id"]
            await agent.send(json.dumps({"type": "open", "conversation_id": opened}))
            await desk.wait("transcript")
            senders.append((connection, reader))
        cpu_start = time.process_time()
        started = time.perf_counter()
        for index, (connection, _reader) in enumerate(senders):
            for number in range(per_visitor):
                client_id = f"t{index}-{number}"
                expected.add(client_id)
                await connection.send(
                    json.dumps({"type": "message", "client_id": client_id, "body": f"Load {number}"})
                )
        while expected:
            frame = await asyncio.wait_for(desk.frames.get(), timeout=60)
            if frame.get("type") == "message" and frame.get("client_id") in expected:
                expected.discard(frame["client_id"])
        throughput_seconds = time.perf_counter() - started
        throughput_cpu = time.process_time() - cpu_start
        for connection, reader in senders:
            reader.task.cancel()
            await connection.close()
        desk.task.cancel()
        customer.task.cancel()
    total = visitors * per_visitor
    return {
        "customer_to_agent_ms": _percentiles(to_agent),
        "agent_to_customer_ms": _percentiles(to_customer),
        "round_trip_cpu_seconds": round(round_trip_cpu, 2),
        "throughput_messages": total,
        "throughput_visitors": visitors,
        "messages_per_second": round(total / throughput_seconds, 1) if throughput_seconds else 0.0,
        "throughput_cpu_seconds": round(throughput_cpu, 2),
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("chat")
    def chat_bench(
        messages: Annotated[int, typer.Option(help="Messages each way, one at a time (latency).")] = 300,
        visitors: Annotated[int, typer.Option(help="Visitors writing at once (throughput).")] = 10,
        per_visitor: Annotated[int, typer.Option(help="Messages each visitor sends (throughput).")] = 30,
    ) -> None:
        """Chat message latency customer→agent and agent→customer, and messages per second."""
        import uvicorn

        from opsdesk import migrate
        from opsdesk.app import create_app
        from opsdesk.auth import service as auth_service
        from opsdesk.auth.actor import Actor
        from opsdesk.auth.sessions import start_session
        from opsdesk.channels.service import chat
        from opsdesk.config import Settings
        from opsdesk.db import Database
        from opsdesk.web.auth import SESSION_COOKIE

        with tempfile.TemporaryDirectory(prefix="opsdesk-bench-chat-") as directory:
            root = Path(directory)
            url = f"sqlite:///{root / 'bench.db'}"
            migrate.upgrade(url)
            database = Database(url)
            system = Actor.system("bench")
            with database.transaction() as session:
                chat.create_brand(session, system, key="bench", name="Bench", allowed_origins=[ORIGIN])
                agent = auth_service.create_user(
                    session,
                    system,
                    email="agent@bench.example",
                    name="Bench Agent",
                    role="agent",
                    password=None,
                )
                from datetime import timedelta

                secret = start_session(session, agent, max_age=timedelta(hours=1)).secret
            settings = Settings(
                data_dir=root / "data",
                database_url=url,
                chat_messages_per_minute=1_000_000,
                chat_starts_per_ten_minutes=1_000_000,
            )
            port = _free_port()
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, database=database),
                    host="127.0.0.1",
                    port=port,
                    log_level="warning",
                    access_log=False,
                )
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                result = asyncio.run(
                    _run(
                        f"http://127.0.0.1:{port}",
                        f"{SESSION_COOKIE}={secret}",
                        messages,
                        visitors,
                        per_visitor,
                    )
                )
            finally:
                server.should_exit = True
                thread.join(timeout=15)
                database.dispose()
        typer.echo(
            json.dumps(
                {
                    "bench": "chat",
                    "database": "sqlite",
                    "messages_each_way": messages,
                    **result,
                    "load_average": [round(value, 2) for value in os.getloadavg()],
                    "target_ms": 1000,
                }
            )
        )
