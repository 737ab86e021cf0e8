"""Bearer-token check: with a token set, every API request must carry `Authorization: Bearer …`."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .apierror import ApiError

# The page shell holds no data: a browser must be able to load it to ask for the token.
PUBLIC_PATHS = ("/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


def authorized(request: Request, token: str) -> bool:
    """True when the request carries the server's token (compared in constant time)."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def middleware(token: str | None):  # noqa: ANN201 - returns a Starlette HTTP middleware function
    """An HTTP middleware that answers 401 to API requests without the right token."""

    async def check(request: Request, call_next) -> Response:  # noqa: ANN001
        path = request.url.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if token and not public and not authorized(request, token):
            error = ApiError(
                401,
                "missing or wrong token: send 'Authorization: Bearer <token>' "
                "(the token given to voicebox serve)",
                "authentication_error",
            )
            return JSONResponse(
                error.body(), status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return await call_next(request)

    return check
