"""Request bodies over ``max_body_bytes`` get 413 before they are read in full; a body that
stalls gets 408.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is refused at once, without
reading a byte of the body; a body without one (chunked) is read only up to the limit. Bodies
within the limit are buffered (at most the limit) and replayed to the app. The whole body must
come within ``read_timeout_s``, else 408 (a slow client held a megabyte buffered for a minute,
and a half-sent body kept the server from stopping).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        try:  # one asyncio.timeout for the whole body (wait_for made a task per read)
            async with asyncio.timeout(self.read_timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            await _answer(send, 408, f"request body not received within "
                          f"{self.read_timeout_s:g} s")
            return
        if body is None:
            return
        if len(body) > self.max_bytes:
            await self._refuse(send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The body, or None if the client left; reading stops once it is over the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > self.max_bytes or not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, send: Send) -> None:
        await _answer(send, 413, f"request body over the broker's limit of {self.max_bytes} "
                      "bytes")


async def _answer(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"detail": message, "message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
