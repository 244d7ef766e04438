"""uvicorn's httptools protocol, answering each REST request with one socket write instead of two.

uvicorn writes a response's status line and headers when the app sends ``http.response.start`` and
the body when it sends ``http.response.body``: two ``write`` calls, so two ``writev`` system calls
and two TCP segments per response on an idle connection. The ``/api/v3`` answers are complete
bytes sent back to back, so :class:`OneWrite` holds the header block and writes it together with
the body. What it holds goes out at the latest on the event loop's next iteration (a response
whose body never comes, such as ``HEAD``), or before the transport closes. Other paths (the page's
static files, streamed) are left as uvicorn writes them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

COALESCED_PREFIX: Final = "/api/"


class OneWrite:
    """A transport stand-in for one request/response cycle: holds the first write (the headers)
    until the next one (the body), then writes both at once."""

    __slots__ = ("_held", "_loop", "_scheduled", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._scheduled = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held + data)
        elif not self._scheduled:
            self._held = data
            self._scheduled = True
            self._loop.call_soon(self.flush)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class GatewayHttp(HttpToolsProtocol):
    """``uvicorn.Config(http=GatewayHttp)``: httptools, with one write per ``/api`` response."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not before and cycle is not None and cycle.scope["path"].startswith(COALESCED_PREFIX):
            cycle.transport = OneWrite(self.transport, self.loop)  # type: ignore[assignment]
