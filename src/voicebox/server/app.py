"""The FastAPI application: OpenAI-compatible audio routes, jobs, voices, health and the web page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask

from .. import __version__
from ..errors import VoiceboxError
from . import auth
from .apierror import ApiError, from_voicebox
from .backend import OPENAI_VOICES, Backend
from .forms import Form, Upload, read_form
from .jobs import CANCELLED, DONE, FAILED, Job, JobManager, Work
from .limits import BodyLimit
from .models import model_card, model_list
from .settings import Settings
from .streaming import start_sse, start_stream
from .work import (
    CaptionedParams,
    CleanParams,
    EditParams,
    SpeechParams,
    TranscribeParams,
    captioned_work,
    check_text,
    clean_work,
    edit_work,
    instruction_headers,
    speech_work,
    transcribe_work,
)
from .workdir import WorkDir

STATIC = Path(__file__).parent / "static"
TASKS = ("speech", "clean", "transcribe", "edit")


def multipart_doc(model: type[BaseModel], file: bool = True) -> dict:
    """OpenAPI text for a multipart route whose fields are `model`'s (we parse the body ourselves)."""
    schema = model.model_json_schema()
    props = dict(schema.get("properties", {}))
    required = list(schema.get("required", []))
    if file:
        props["file"] = {"type": "string", "format": "binary", "description": "The audio file."}
        required.append("file")
    content = {"schema": {"type": "object", "properties": props, "required": required}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": content}}}


def params_from(model: type[BaseModel], data: dict) -> BaseModel:
    """Validate request fields, turning the first problem into a one-line 400."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        raise ApiError(400, f"{where}: {first.get('msg', 'invalid value')}") from None


def form_data(model: type[BaseModel], form: Form) -> dict:
    """Fields of `model` taken from a multipart form: lists from repeated fields, JSON for the rest."""
    data: dict = {}
    for name, info in model.model_fields.items():
        text = str(info.annotation)
        if name == "timestamp_granularities":
            values = form.getlist(name)
            if values:
                data[name] = values
            continue
        value = form.get(name)
        if value is None or value == "":
            continue
        if any(t in text for t in ("list", "dict", "tuple")):
            try:
                data[name] = json.loads(value)
            except json.JSONDecodeError:
                if str not in typing.get_args(info.annotation):
                    raise ApiError(400, f"{name}: not valid JSON") from None
                data[name] = value
        else:
            data[name] = value
    return data


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """Build the server; `backend` defaults to the library's tasks (tests may pass their own)."""
    settings = settings or Settings()
    backend = backend or Backend()
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            jobs.shutdown()
            workdir.close()

    async def _sweep_forever() -> None:
        period = max(0.5, min(30.0, settings.job_ttl_s / 4))
        while True:
            await asyncio.sleep(period)
            jobs.sweep()

    workdir = WorkDir(settings.work_dir)
    jobs = JobManager(workdir, settings.workers, settings.queue_size, settings.job_ttl_s)
    state.update(workdir=workdir, jobs=jobs)
    app = FastAPI(
        title="voicebox",
        version=__version__,
        description="Offline speech studio with OpenAI-compatible audio routes.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads its scripts from a CDN; we are offline. Schema: /openapi.json
        redoc_url=None,
    )
    app.state.voicebox = state
    app.state.settings = settings
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes,
        json_limit=64 * 1024 + 8 * settings.max_text_chars,
    )
    app.middleware("http")(auth.middleware(settings.token))  # outermost: no token, no body read

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

    # ------------------------------------------------------------------ helpers

    async def wait(job: Job) -> Job:
        assert job.future is not None
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(job.future)), settings.request_timeout_s
            )
        except TimeoutError:
            jobs.cancel(job.id)
            jobs.discard_when_done(job)
            raise ApiError(
                504,
                f"not finished within {settings.request_timeout_s:.0f} s; "
                "send long work to POST /v1/jobs instead",
                "timeout",
            ) from None
        return job

    def result_response(job: Job, download: bool = False, discard: bool = False) -> Response:
        if job.state == FAILED:
            raise ApiError(job.error_status, job.error or "the job failed")
        if job.state == CANCELLED:
            raise ApiError(409, "the job was cancelled")
        if job.state != DONE or job.result is None:
            raise ApiError(409, f"job is {job.state}; poll GET /v1/jobs/{job.id} until it is done")
        res = job.result
        return FileResponse(
            res.path,
            media_type=res.media_type,
            filename=res.filename,
            content_disposition_type="attachment" if download else "inline",
            headers=res.headers or None,
            background=BackgroundTask(jobs.discard, job.id) if discard else None,
        )

    async def run_form(request: Request, kind: str, build: Callable[[Form], Work]) -> Response:
        job = jobs.new(kind)
        try:
            form = await read_form(
                request, job.folder, settings.max_upload_bytes, settings.request_timeout_s
            )
            job.inputs = [u.path for u in form.files.values()]
            work = build(form)
        except BaseException:
            jobs.release(job)
            raise
        jobs.start(job, work)
        job = await wait(job)
        try:
            return result_response(job, discard=True)
        except ApiError:
            jobs.discard(job.id)
            raise

    def build_work(kind: str, data: dict, form: Form | None) -> Work:
        upload = form.files.get("file") if form else None
        if kind in ("clean", "transcribe", "edit"):
            check_upload(kind, upload)  # refused now (4xx), not accepted and failed later
        if kind == "speech":
            params = params_from(SpeechParams, data)
            check_text(params.input, settings)
            return speech_work(params, backend)
        if kind == "clean":
            return clean_work(params_from(CleanParams, data), upload, settings, backend)
        if kind == "transcribe":
            return transcribe_work(params_from(TranscribeParams, data), upload, settings, backend)
        if kind == "edit":
            clip = form.files.get("consent_audio") if form else None
            return edit_work(params_from(EditParams, data), upload, settings, backend, clip)
        raise ApiError(400, f"unknown task '{kind}'; use one of {', '.join(TASKS)}")

    def check_upload(kind: str, upload: Upload | None) -> None:
        """A task on a recording needs one that is there and is audio: checked before accepting."""
        from ..audio import probe

        if upload is None:
            raise ApiError(
                400,
                f"task '{kind}' needs a recording: send multipart/form-data with a 'file' field",
            )
        if upload.size == 0:
            raise ApiError(400, f"'{upload.filename}' is empty")
        try:
            probe(upload.path)
        except VoiceboxError as exc:
            message = str(exc).replace(str(upload.path), upload.filename or "upload")
            raise ApiError(400, message) from None

    # ------------------------------------------------------------------ routes

    @app.get("/healthz", tags=["server"])
    async def healthz() -> dict:
        """Liveness, version, limits and how busy the worker pool is."""
        return {
            "status": "ok",
            "version": __version__,
            "jobs": {"active": jobs.active, "capacity": jobs.capacity, "workers": jobs.workers},
            "limits": {
                "max_upload_mb": settings.max_upload_mb,
                "max_audio_seconds": settings.max_audio_seconds,
                "max_text_chars": settings.max_text_chars,
                "request_timeout_s": settings.request_timeout_s,
                "job_ttl_s": settings.job_ttl_s,
            },
        }

    @app.get("/v1/voices", tags=["audio"])
    async def voices() -> dict:
        """Voices a speech request may name, and the OpenAI names that map onto them."""
        data = await asyncio.to_thread(backend.voices)
        return {"object": "list", "data": data, "openai_aliases": OPENAI_VOICES}

    @app.get("/v1/models", tags=["server"])
    async def models() -> dict:
        """The model ids the audio routes accept (OpenAI's list shape)."""
        return model_list()

    @app.get("/v1/models/{model_id}", tags=["server"])
    async def model(model_id: str) -> dict:
        """One model id, or 404 when no route accepts it."""
        card = model_card(model_id)
        if card is None:
            raise ApiError(404, f"no model '{model_id}'; GET /v1/models lists them")
        return card

    @app.post("/v1/audio/speech", tags=["audio"], response_class=Response)
    async def speech(params: SpeechParams) -> Response:
        """Read text aloud (OpenAI schema); wav and pcm stream sentence by sentence."""
        check_text(params.input, settings)
        fmt = params.response_format
        from .work import MEDIA_TYPES

        headers = instruction_headers(params)
        if params.stream_format == "sse":
            job = jobs.new("speech")
            events = await start_sse(params, backend, jobs, job, settings.request_timeout_s)
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        if fmt in ("wav", "pcm") and params.stream:
            job = jobs.new("speech")
            body = await start_stream(params, backend, jobs, job, settings.request_timeout_s)
            return StreamingResponse(body, media_type=MEDIA_TYPES[fmt], headers=headers)
        job = jobs.start(jobs.new("speech"), speech_work(params, backend))
        job = await wait(job)
        try:
            return result_response(job, discard=True)
        except ApiError:
            jobs.discard(job.id)
            raise

    @app.post("/dev/captioned_speech", tags=["audio"], response_class=Response)
    async def captioned_speech(params: CaptionedParams) -> Response:
        """Kokoro-FastAPI's captioned speech: one JSON answer with the audio (base64) and each
        word's start_time and end_time."""
        check_text(params.input, settings)
        job = jobs.start(jobs.new("speech"), captioned_work(params, backend))
        job = await wait(job)
        try:
            return result_response(job, discard=True)
        except ApiError:
            jobs.discard(job.id)
            raise

    @app.post(
        "/v1/audio/transcriptions",
        tags=["audio"],
        response_class=Response,
        openapi_extra=multipart_doc(TranscribeParams),
    )
    async def transcriptions(request: Request) -> Response:
        """Transcribe an upload (OpenAI multipart schema): json, text, srt, verbose_json or vtt."""
        return await run_form(
            request,
            "transcribe",
            lambda form: build_work("transcribe", form_data(TranscribeParams, form), form),
        )

    @app.post(
        "/v1/audio/translations",
        tags=["audio"],
        response_class=Response,
        openapi_extra=multipart_doc(TranscribeParams),
    )
    async def translations(request: Request) -> Response:
        """Translate speech in any language into English text (OpenAI multipart schema)."""

        def build(form: Form) -> Work:
            check_upload("translate", form.files.get("file"))
            params = params_from(TranscribeParams, form_data(TranscribeParams, form))
            upload = form.files.get("file")
            return transcribe_work(params, upload, settings, backend, task="translate")

        return await run_form(request, "translate", build)

    @app.post(
        "/v1/audio/clean",
        tags=["audio"],
        response_class=Response,
        openapi_extra=multipart_doc(CleanParams),
    )
    async def clean(request: Request) -> Response:
        """Remove noise and hum from an uploaded recording; answers the cleaned audio."""
        return await run_form(
            request, "clean", lambda form: build_work("clean", form_data(CleanParams, form), form)
        )

    @app.post(
        "/v1/audio/edit",
        tags=["audio"],
        response_class=Response,
        openapi_extra=multipart_doc(EditParams),
    )
    async def edit(request: Request) -> Response:
        """Edit what an uploaded recording says (replace, delete, insert words)."""
        return await run_form(
            request, "edit", lambda form: build_work("edit", form_data(EditParams, form), form)
        )

    jobs_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "task": {"type": "string", "enum": list(TASKS)},
                            "params": {
                                "type": "string",
                                "description": "JSON object: the fields of that task's route.",
                            },
                            "file": {"type": "string", "format": "binary"},
                        },
                        "required": ["task"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "task": {"type": "string", "enum": list(TASKS)},
                            "params": {"type": "object"},
                        },
                        "required": ["task"],
                    }
                },
            },
        }
    }

    @app.post("/v1/jobs", tags=["jobs"], status_code=202, openapi_extra=jobs_doc)
    async def create_job(request: Request) -> dict:
        """Start long work in the background; poll its state and fetch the result later."""
        job = jobs.new("pending")
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                try:
                    payload = json.loads(await request.body())
                except json.JSONDecodeError:
                    raise ApiError(400, "body is not valid JSON") from None
                if not isinstance(payload, dict):
                    raise ApiError(400, "body must be a JSON object with 'task' and 'params'")
                form, kind, data = None, payload.get("task"), payload.get("params") or {}
            else:
                form = await read_form(
                    request, job.folder, settings.max_upload_bytes, settings.request_timeout_s
                )
                job.inputs = [u.path for u in form.files.values()]
                kind = form.get("task")
                try:
                    data = json.loads(form.get("params") or "{}")
                except json.JSONDecodeError:
                    raise ApiError(400, "params: not valid JSON") from None
            if not isinstance(data, dict):
                raise ApiError(400, "params must be a JSON object")
            job.kind = str(kind)
            work = build_work(str(kind), data, form)
        except BaseException:
            jobs.release(job)
            raise
        jobs.start(job, work)
        return job.status()

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs() -> dict:
        """Every job the server still remembers."""
        return {"object": "list", "data": [j.status() for j in list(jobs.jobs.values())]}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def job_status(job_id: str) -> dict:
        """State and progress of one job."""
        return jobs.get(job_id).status()

    @app.get("/v1/jobs/{job_id}/result", tags=["jobs"], response_class=Response)
    async def job_result(job_id: str, download: bool = False) -> Response:
        """The finished job's output (audio, transcript or plan)."""
        return result_response(jobs.get(job_id), download=download)

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"])
    async def delete_job(job_id: str) -> dict:
        """Cancel a running or queued job, or delete a finished one and its files."""
        job = jobs.cancel(job_id)
        out = job.status()
        if job.finished is not None:
            jobs.discard(job_id)
            out["deleted"] = True
        return out

    # ------------------------------------------------------------------ web page

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
