"""A lean HTTP/1.1 load generator for ``opsdesk bench``: keep-alive connections on asyncio streams.

The bench measures the server, but it shares the machine's two cores with its load generator:
httpx spends about 2.7 ms of CPU per request, which the server then cannot use. This client
writes each request as prepared bytes and reads the status line, the headers and the whole
body (Content-Length or chunked) of every answer, like wrk; about a tenth of httpx's cost.
Only what the bench needs: no TLS, no redirects, no cookies.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class HttpLoadError(Exception):
    """The server closed the connection or answered something that is not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class KeepAliveConnection:
    """One persistent connection; requests on it go one after another."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host = host
        self.port = port
        self._fixed = "".join(
            f"{name}: {value}\r\n" for name, value in {"Host": f"{host}:{port}", **headers}.items()
        )
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> Answer:
        reader, writer = await self._open()
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        try:
            return await self._read_answer(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            await self.close()
            raise HttpLoadError(f"the connection broke: {error}") from error

    async def _read_answer(self, reader: asyncio.StreamReader) -> Answer:
        status_line = await reader.readline()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpLoadError(f"not an HTTP answer: {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value.strip())
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            body = await self._read_chunks(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            close = True
        if close:
            await self.close()
        return Answer(status, body)

    @staticmethod
    async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
        pieces: list[bytes] = []
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()  # the blank line after the last chunk (no trailers sent)
                return b"".join(pieces)
            pieces.append(await reader.readexactly(size))
            await reader.readline()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
