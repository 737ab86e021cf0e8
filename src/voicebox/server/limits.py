"""Body-size limit for every request: declared lengths are refused up front, streamed ones counted."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .apierror import ApiError


class BodyLimit:
    """ASGI middleware: multipart bodies may reach `upload_limit` bytes, any other body `json_limit`."""

    def __init__(self, app: ASGIApp, upload_limit: int, json_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.json_limit = json_limit

    def _limit(self, scope: Scope) -> tuple[int, int | None]:
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").lower()
        limit = self.upload_limit if ctype.startswith(b"multipart/") else self.json_limit
        declared = headers.get(b"content-length")
        try:
            return limit, int(declared) if declared is not None else None
        except ValueError:
            return limit, None

    def error(self, limit: int) -> ApiError:
        if limit == self.upload_limit:
            return ApiError(
                413, f"upload is larger than the server's limit of {limit / 2**20:.0f} MB"
            )
        return ApiError(413, f"request body is over {limit // 1024} KB")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, declared = self._limit(scope)
        if declared is not None and declared > limit:
            from starlette.responses import JSONResponse

            err = self.error(limit)
            await JSONResponse(err.body(), status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise self.error(limit)
            return message

        await self.app(scope, counted, send)
