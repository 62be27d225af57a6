"""Dropping a connection with no HTTP answer, as close to a TCP reset as uvicorn allows.

ASGI gives an application no way to abort its connection, so the server uses a uvicorn
protocol subclass that puts the connection's transport into the request scope. A reset then
sets SO_LINGER to 0 on the socket and aborts the transport: the kernel sends RST instead of
FIN and any unread request bytes are discarded, which is what a crashed proxy or a dropped
NAT entry looks like to a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

SCOPE_KEY = "sandbox.transport"


def protocol_class() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools if installed, else h11), exposing the transport."""
    base: type[Any]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is optional for uvicorn
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    class TransportExposingProtocol(base):
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            inner: ASGIApp = self.app

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                scope[SCOPE_KEY] = transport
                await inner(scope, receive, send)

            self.app = app

    return TransportExposingProtocol


async def reset_connection(scope: Scope) -> bool:
    """Abort the request's connection with RST; False if the transport is unreachable."""
    transport = scope.get(SCOPE_KEY)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let uvicorn see the connection as lost before the app returns without a response,
    # so it neither logs an error nor tries to send a 500.
    for _ in range(3):
        await asyncio.sleep(0)
    return True
