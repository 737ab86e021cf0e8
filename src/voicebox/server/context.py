"""What every route shares: the settings, the backend, the job manager, and the steps of a request
(accept a form, build its work, wait for it, answer its result). One per app, on `app.state`."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask

from .apierror import ApiError
from .backend import Backend
from .forms import Form, read_form
from .jobs import CANCELLED, DONE, FAILED, Job, JobManager, Work
from .settings import Settings
from .work import (
    CleanParams,
    CloneParams,
    EditParams,
    SpeechParams,
    TranscribeParams,
    check_text,
    check_upload,
    clean_work,
    clone_work,
    edit_work,
    speech_work,
    transcribe_work,
)
from .workdir import WorkDir

TASKS = ("speech", "clean", "transcribe", "edit", "clone")


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


class Server:
    """The server's shared state and the request steps the routers use."""

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.workdir = WorkDir(settings.work_dir)
        self.jobs = JobManager(
            self.workdir, settings.workers, settings.queue_size, settings.job_ttl_s
        )

    async def wait(self, job: Job) -> Job:
        """Wait for a job up to the request timeout; past it, cancel it and answer 504."""
        assert job.future is not None
        timeout = self.settings.request_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), timeout)
        except TimeoutError:
            self.jobs.cancel(job.id)
            self.jobs.discard_when_done(job)
            raise ApiError(
                504,
                f"not finished within {timeout:.0f} s; send long work to POST /v1/jobs instead",
                "timeout",
            ) from None
        return job

    def result_response(self, job: Job, download: bool = False, discard: bool = False) -> Response:
        """A finished job's output file (inline, or as a download); its error when it failed."""
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
            background=BackgroundTask(self.jobs.discard, job.id) if discard else None,
        )

    async def answer(self, job: Job) -> Response:
        """Wait for a started job and answer its result, forgetting the job either way."""
        job = await self.wait(job)
        try:
            return self.result_response(job, discard=True)
        except ApiError:
            self.jobs.discard(job.id)
            raise

    async def read_form(self, request: Request, job: Job) -> Form:
        """The request's multipart form, its uploads stored in the job's folder."""
        limits = self.settings.max_upload_bytes, self.settings.request_timeout_s
        form = await read_form(request, job.folder, *limits)
        job.inputs = [u.path for u in form.files.values()]
        return form

    async def run_form(
        self, request: Request, kind: str, build: Callable[[Form], Work]
    ) -> Response:
        """A multipart route: read the form into a new job, build its work, run it, answer."""
        job = self.jobs.new(kind)
        try:
            work = build(await self.read_form(request, job))
        except BaseException:
            self.jobs.release(job)
            raise
        self.jobs.start(job, work)
        return await self.answer(job)

    def build_work(self, kind: str, data: dict, form: Form | None) -> Work:
        """The work for task `kind` from its fields (and uploads); 4xx now for a bad request."""
        settings, backend = self.settings, self.backend
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
        clip = form.files.get("consent_audio") if form else None
        if kind == "edit":
            return edit_work(params_from(EditParams, data), upload, settings, backend, clip)
        if kind == "clone":
            reference = form.files.get("reference") if form else None
            return clone_work(params_from(CloneParams, data), reference, settings, backend, clip)
        raise ApiError(400, f"unknown task '{kind}'; use one of {', '.join(TASKS)}")


def server(request: Request) -> Server:
    """The app's Server (a FastAPI dependency)."""
    return request.app.state.server
