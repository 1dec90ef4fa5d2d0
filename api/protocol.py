"""uvicorn's HTTP protocol (httptools) with a header read timeout, which uvicorn lacks.

A connection must deliver a request's whole head within ``header_timeout_s`` of its opening
(for its first request) or of the request's first byte (for later ones on a kept-alive
connection), else it is closed: a client that dribbles headers ("slowloris") held a
connection, and its buffers, for as long as it liked. A head over ``MAX_HEAD_BYTES`` gets 431
and the connection is closed (httptools, unlike h11, sets no limit). Idle kept-alive
connections are uvicorn's (``timeout_keep_alive``); a slow body is the app's
(``api.limits``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # request line and headers; h11's default limit is 16 KiB
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
             b"connection: close\r\n\r\n")


def header_timeout_protocol(header_timeout_s: float) -> type[HttpToolsProtocol]:
    """An ``HttpToolsProtocol`` class closing connections whose request head is late."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0  # received while the current request's head is incomplete

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def data_received(self, data: bytes) -> None:
            waiting = self._header_timer is not None
            super().data_received(data)
            if waiting and self._header_timer is not None:  # the head is still incomplete
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                    self._disarm()
                    self.transport.write(TOO_LARGE)
                    self.transport.close()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is None:
                self._head_bytes = 0
                self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol
