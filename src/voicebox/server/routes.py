"""The routes, in three FastAPI routers: server facts (health, models, voices), the audio tasks
(OpenAI-compatible speech and transcription, clean, edit, clone) and background jobs."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from .. import __version__
from .apierror import ApiError
from .backend import OPENAI_VOICES
from .context import TASKS, Server, check_upload, form_data, params_from, server
from .forms import Form
from .jobs import Work
from .models import model_card, model_list
from .streaming import start_sse, start_stream
from .work import (
    MEDIA_TYPES,
    CaptionedParams,
    CleanParams,
    CloneParams,
    EditParams,
    SpeechParams,
    TranscribeParams,
    captioned_work,
    check_text,
    instruction_headers,
    speech_work,
    transcribe_work,
)

info = APIRouter(tags=["server"])
audio = APIRouter(tags=["audio"])
jobs = APIRouter(tags=["jobs"])
Srv = Depends(server)


FILE = {"file": ("The audio file.", True)}
CONSENT_AUDIO = {
    "consent_audio": ("A clip of the speaker reading the consent statement (checked).", False)
}


def multipart_doc(model: type[BaseModel], files: dict[str, tuple[str, bool]] = FILE) -> dict:
    """OpenAPI text for a multipart route whose fields are `model`'s (we parse the body ourselves)
    and whose `files` are uploads: name -> (description, required)."""
    schema = model.model_json_schema()
    props = dict(schema.get("properties", {}))
    required = list(schema.get("required", []))
    for name, (text, needed) in files.items():
        props[name] = {"type": "string", "format": "binary", "description": text}
        if needed:
            required.append(name)
    content = {"schema": {"type": "object", "properties": props, "required": required}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": content}}}


# ---------------------------------------------------------------- server facts


@info.get("/healthz")
async def healthz(srv: Server = Srv) -> dict:
    """Liveness, version, limits and how busy the worker pool is."""
    settings, pool = srv.settings, srv.jobs
    return {
        "status": "ok",
        "version": __version__,
        "jobs": {"active": pool.active, "capacity": pool.capacity, "workers": pool.workers},
        "limits": {
            "max_upload_mb": settings.max_upload_mb,
            "max_audio_seconds": settings.max_audio_seconds,
            "max_text_chars": settings.max_text_chars,
            "request_timeout_s": settings.request_timeout_s,
            "job_ttl_s": settings.job_ttl_s,
        },
    }


@audio.get("/v1/voices")
async def voices(srv: Server = Srv) -> dict:
    """Voices a speech request may name, and the OpenAI names that map onto them."""
    data = await asyncio.to_thread(srv.backend.voices)
    return {"object": "list", "data": data, "openai_aliases": OPENAI_VOICES}


@info.get("/v1/models")
async def models() -> dict:
    """The model ids the audio routes accept (OpenAI's list shape)."""
    return model_list()


@info.get("/v1/models/{model_id}")
async def model(model_id: str) -> dict:
    """One model id, or 404 when no route accepts it."""
    card = model_card(model_id)
    if card is None:
        raise ApiError(404, f"no model '{model_id}'; GET /v1/models lists them")
    return card


# ---------------------------------------------------------------- audio tasks


@audio.post("/v1/audio/speech", response_class=Response)
async def speech(params: SpeechParams, srv: Server = Srv) -> Response:  # type: ignore[valid-type]
    """Read text aloud (OpenAI schema); wav and pcm stream sentence by sentence."""
    check_text(params.input, srv.settings)
    fmt = params.response_format
    headers = instruction_headers(params)
    timeout = srv.settings.request_timeout_s
    if params.stream_format == "sse":
        job = srv.jobs.new("speech")
        events = await start_sse(params, srv.backend, srv.jobs, job, timeout)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    if fmt in ("wav", "pcm") and params.stream:
        job = srv.jobs.new("speech")
        body = await start_stream(params, srv.backend, srv.jobs, job, timeout)
        return StreamingResponse(body, media_type=MEDIA_TYPES[fmt], headers=headers)
    job = srv.jobs.start(srv.jobs.new("speech"), speech_work(params, srv.backend))
    return await srv.answer(job)


@audio.post("/dev/captioned_speech", response_class=Response)
async def captioned_speech(params: CaptionedParams, srv: Server = Srv) -> Response:
    """Kokoro-FastAPI's captioned speech: one JSON answer with the audio (base64) and each
    word's start_time and end_time."""
    check_text(params.input, srv.settings)
    job = srv.jobs.start(srv.jobs.new("speech"), captioned_work(params, srv.backend))
    return await srv.answer(job)


@audio.post(
    "/v1/audio/transcriptions",
    response_class=Response,
    openapi_extra=multipart_doc(TranscribeParams),
)
async def transcriptions(request: Request, srv: Server = Srv) -> Response:
    """Transcribe an upload (OpenAI multipart schema): json, text, srt, verbose_json or vtt."""

    def build(form: Form) -> Work:
        return srv.build_work("transcribe", form_data(TranscribeParams, form), form)

    return await srv.run_form(request, "transcribe", build)


@audio.post(
    "/v1/audio/translations",
    response_class=Response,
    openapi_extra=multipart_doc(TranscribeParams),
)
async def translations(request: Request, srv: Server = Srv) -> Response:
    """Translate speech in any language into English text (OpenAI multipart schema)."""

    def build(form: Form) -> Work:
        check_upload("translate", form.files.get("file"))
        params = params_from(TranscribeParams, form_data(TranscribeParams, form))
        upload = form.files.get("file")
        return transcribe_work(params, upload, srv.settings, srv.backend, task="translate")

    return await srv.run_form(request, "translate", build)


@audio.post("/v1/audio/clean", response_class=Response, openapi_extra=multipart_doc(CleanParams))
async def clean(request: Request, srv: Server = Srv) -> Response:
    """Remove noise and hum from an uploaded recording; answers the cleaned audio."""

    def build(form: Form) -> Work:
        return srv.build_work("clean", form_data(CleanParams, form), form)

    return await srv.run_form(request, "clean", build)


@audio.post(
    "/v1/audio/edit",
    response_class=Response,
    openapi_extra=multipart_doc(EditParams, {**FILE, **CONSENT_AUDIO}),
)
async def edit(request: Request, srv: Server = Srv) -> Response:
    """Edit what an uploaded recording says (replace, delete, insert words)."""

    def build(form: Form) -> Work:
        return srv.build_work("edit", form_data(EditParams, form), form)

    return await srv.run_form(request, "edit", build)


REFERENCE = {"reference": ("3-10 s of the speaker talking (a longer one is trimmed).", True)}


@audio.post(
    "/v1/audio/clone",
    response_class=Response,
    openapi_extra=multipart_doc(CloneParams, {**REFERENCE, **CONSENT_AUDIO}),
)
async def clone(request: Request, srv: Server = Srv) -> Response:
    """Read text in the voice of an uploaded recording (zero-shot), with the speaker's consent:
    403 without it; the ledger's record id comes back in X-Voicebox-Consent."""

    def build(form: Form) -> Work:
        return srv.build_work("clone", form_data(CloneParams, form), form)

    return await srv.run_form(request, "clone", build)


# ---------------------------------------------------------------- jobs


def _jobs_doc() -> dict:
    """OpenAPI text for POST /v1/jobs: multipart (task, params JSON, file) or JSON."""
    task = {"type": "string", "enum": list(TASKS)}
    multipart = {
        "type": "object",
        "properties": {
            "task": task,
            "params": {
                "type": "string",
                "description": "JSON object: the fields of that task's route.",
            },
            "file": {"type": "string", "format": "binary"},
            "reference": {
                "type": "string",
                "format": "binary",
                "description": "task clone: the voice to read in.",
            },
            "consent_audio": {
                "type": "string",
                "format": "binary",
                "description": "task clone, or edit with our model (engine auto or voicebox): "
                "the speaker reading the consent statement.",
            },
        },
        "required": ["task"],
    }
    as_json = {
        "type": "object",
        "properties": {"task": task, "params": {"type": "object"}},
        "required": ["task"],
    }
    content = {
        "multipart/form-data": {"schema": multipart},
        "application/json": {"schema": as_json},
    }
    return {"requestBody": {"required": True, "content": content}}


async def _job_request(
    request: Request, srv: Server, job: object
) -> tuple[Form | None, object, object]:
    """(form, task, params) of a job request, sent as JSON or as a multipart form."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = json.loads(await request.body())
        except json.JSONDecodeError:
            raise ApiError(400, "body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "body must be a JSON object with 'task' and 'params'")
        return None, payload.get("task"), payload.get("params") or {}
    form = await srv.read_form(request, job)  # type: ignore[arg-type]
    try:
        data = json.loads(form.get("params") or "{}")
    except json.JSONDecodeError:
        raise ApiError(400, "params: not valid JSON") from None
    return form, form.get("task"), data


@jobs.post("/v1/jobs", status_code=202, openapi_extra=_jobs_doc())
async def create_job(request: Request, srv: Server = Srv) -> dict:
    """Start long work in the background; poll its state and fetch the result later."""
    job = srv.jobs.new("pending")
    try:
        form, kind, data = await _job_request(request, srv, job)
        if not isinstance(data, dict):
            raise ApiError(400, "params must be a JSON object")
        job.kind = str(kind)
        work = srv.build_work(str(kind), data, form)
    except BaseException:
        srv.jobs.release(job)
        raise
    srv.jobs.start(job, work)
    return job.status()


@jobs.get("/v1/jobs")
async def list_jobs(srv: Server = Srv) -> dict:
    """Every job the server still remembers."""
    return {"object": "list", "data": [j.status() for j in list(srv.jobs.jobs.values())]}


@jobs.get("/v1/jobs/{job_id}")
async def job_status(job_id: str, srv: Server = Srv) -> dict:
    """State and progress of one job."""
    return srv.jobs.get(job_id).status()


@jobs.get("/v1/jobs/{job_id}/result", response_class=Response)
async def job_result(job_id: str, download: bool = False, srv: Server = Srv) -> Response:
    """The finished job's output (audio, transcript or plan)."""
    return srv.result_response(srv.jobs.get(job_id), download=download)


@jobs.delete("/v1/jobs/{job_id}")
async def delete_job(job_id: str, srv: Server = Srv) -> dict:
    """Cancel a running or queued job, or delete a finished one and its files."""
    job = srv.jobs.cancel(job_id)
    out = job.status()
    if job.finished is not None:
        srv.jobs.discard(job_id)
        out["deleted"] = True
    return out
