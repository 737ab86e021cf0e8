"""HTTP errors in OpenAI's shape ({"error": {"message", "type", "code"}}), and our exceptions mapped to them."""

from __future__ import annotations

from ..errors import AudioError, EngineError, InputError, NotReadyError, VoiceboxError

KINDS = {
    401: "authentication_error",
    404: "not_found_error",
    408: "timeout",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "not_ready",
    504: "timeout",
}


class ApiError(Exception):
    """An error answered to the client with `status` and a one-line message."""

    def __init__(
        self, status: int, message: str, kind: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or KINDS.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        self.headers = headers or {}

    def body(self) -> dict:
        """The JSON body the OpenAI clients understand."""
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


def from_voicebox(exc: VoiceboxError) -> ApiError:
    """Map one of our library errors to the HTTP status a client can act on."""
    if isinstance(exc, NotReadyError):
        return ApiError(503, str(exc), "not_ready")
    if isinstance(exc, AudioError | InputError):
        return ApiError(400, str(exc))
    if isinstance(exc, EngineError):
        return ApiError(500, str(exc), "engine_error")
    return ApiError(400, str(exc))
