"""Body checks for every request: the content type is one the routes read (else 415), declared
lengths are refused up front and streamed (chunked) ones counted (413)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .apierror import ApiError

BODY_TYPES = (b"multipart/form-data", b"application/json", b"application/x-www-form-urlencoded")
"""Content types a route reads: uploads as multipart forms, everything else as JSON."""


class BodyLimit:
    """ASGI middleware: multipart bodies may reach `upload_limit` bytes, any other body `json_limit`.

    A body that passes its limit while streaming is answered 413 whatever the route made of the
    cut-off body (a JSON parser would otherwise call it malformed, 400). A raw audio body
    (audio/wav, application/octet-stream) is answered 415 before it is read: uploads go in a
    multipart form's 'file' field.
    """

    def __init__(self, app: ASGIApp, upload_limit: int, json_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.json_limit = json_limit

    def _limit(self, scope: Scope) -> tuple[int, int | None, bytes]:
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").lower()
        limit = self.upload_limit if ctype.startswith(b"multipart/") else self.json_limit
        declared = headers.get(b"content-length")
        try:
            return limit, int(declared) if declared is not None else None, ctype
        except ValueError:
            return limit, None, ctype

    def error(self, limit: int) -> ApiError:
        if limit == self.upload_limit:
            return ApiError(
                413, f"upload is larger than the server's limit of {limit / 2**20:.0f} MB"
            )
        return ApiError(413, f"request body is over {limit // 1024} KB")

    @staticmethod
    def _unsupported(scope: Scope, ctype: bytes) -> ApiError | None:
        """415 for a body of a type no route reads (only for methods that carry a body)."""
        if scope.get("method") not in ("POST", "PUT", "PATCH") or not ctype:
            return None
        mime = ctype.split(b";", 1)[0].strip()
        if mime in BODY_TYPES or mime.endswith(b"+json"):
            return None
        shown = mime.decode("latin-1")[:60]
        return ApiError(
            415,
            f"unsupported content type '{shown}': send audio as multipart/form-data "
            "(the 'file' field), other requests as application/json",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, declared, ctype = self._limit(scope)
        refused = self._unsupported(scope, ctype)
        if refused is None and declared is not None and declared > limit:
            refused = self.error(limit)
        if refused is not None:
            await _answer(send, refused)
            return
        seen = 0
        over: ApiError | None = None
        started = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = self.error(limit)
                    raise over
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over is not None:
                # Whatever the route answered about the cut-off body, the answer is 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _answer(send, over)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if over is None or started:
                raise
            started = True
            await _answer(send, over)


async def _answer(send: Send, error: ApiError) -> None:
    """Send `error` as the whole JSON response."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
