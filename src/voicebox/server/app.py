"""The FastAPI application: OpenAI-compatible audio routes, jobs, voices, health and the web page.

`create_app` wires the pieces together; the routes live in routers (server/routes.py), the steps
they share in server/context.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import VoiceboxError
from . import auth, routes
from .apierror import ApiError, from_voicebox
from .backend import Backend
from .context import Server
from .limits import BodyLimit
from .settings import Settings

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """Build the server; `backend` defaults to the library's tasks (tests may pass their own)."""
    srv = Server(settings or Settings(), backend or Backend())
    settings = srv.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(srv))
        try:
            yield
        finally:
            sweeper.cancel()
            srv.jobs.shutdown()
            srv.workdir.close()

    app = FastAPI(
        title="voicebox",
        version=__version__,
        description="Offline speech studio with OpenAI-compatible audio routes.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads its scripts from a CDN; we are offline. Schema: /openapi.json
        redoc_url=None,
    )
    app.state.server = srv
    app.state.voicebox = {"workdir": srv.workdir, "jobs": srv.jobs}
    app.state.settings = settings
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes,
        json_limit=64 * 1024 + 8 * settings.max_text_chars,
    )
    app.middleware("http")(auth.middleware(settings.token))  # outermost: no token, no body read
    _add_error_handlers(app)
    for router in (routes.info, routes.audio, routes.jobs):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _sweep_forever(srv: Server) -> None:
    """Forget expired jobs (and their files) every quarter of the job lifetime."""
    period = max(0.5, min(30.0, srv.settings.job_ttl_s / 4))
    while True:
        await asyncio.sleep(period)
        srv.jobs.sweep()


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers OpenAI's shape, {"error": {"message": one line, ...}}."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(VoiceboxError)
    async def _vb_error(request: Request, exc: VoiceboxError) -> JSONResponse:
        api = from_voicebox(exc)
        return JSONResponse(api.body(), status_code=api.status)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        api = ApiError(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
        return JSONResponse(api.body(), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        api = ApiError(400, f"{where}: {first.get('msg', 'invalid request')}")
        return JSONResponse(api.body(), status_code=400)
