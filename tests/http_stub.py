"""A minimal HTTP/1.1 server on a local port for tests that need a real endpoint (a price API,
an RPC proxy): keep-alive, Content-Length bodies, JSON answers. Subclasses implement
:meth:`HttpStub.respond`."""

from __future__ import annotations

import asyncio
from typing import Self

from perpool.localnet import free_port


class HttpStub:
    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()

    async def respond(self, request_line: str, body: bytes) -> tuple[int, bytes]:
        """(status, JSON body) for a request such as ``"GET /path?query HTTP/1.1"``."""
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                length = 0
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                status, answer = await self.respond(head[0], await reader.readexactly(length))
                reason = "OK" if status == 200 else "Error"
                header = (
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(answer)}\r\n\r\n"
                )
                writer.write(header.encode() + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
