"""Speech streamed as sentences finish: a worker thread produces, the event loop sends."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import numpy as np

from ..audio import Audio, encode, wav_stream_header
from .apierror import ApiError
from .backend import Backend
from .jobs import FAILED, Job, JobManager
from .work import PCM_RATE, SpeechParams, pcm16, speech_args

_END = object()


wav_header = wav_stream_header
"""A 16-bit PCM WAV header with 'unknown' sizes, as streaming servers (and OpenAI) send: the one
writer in audio.py, which the CLI's `read -o -` uses too."""


async def start_stream(
    params: SpeechParams, backend: Backend, jobs: JobManager, job: Job, timeout: float
) -> AsyncIterator[bytes]:
    """Start reading in a worker and return the byte stream once the first sentence is ready.

    Errors before the first sentence (unknown voice, bad text) become a normal HTTP error;
    a client that goes away cancels the job after the sentence in progress.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def run(job: Job) -> None:
        try:
            for chunk in backend.speech_stream(*speech_args(params, backend), job.progress):
                job.check_cancel()
                put(chunk)
        finally:
            put(_END)

    jobs.start(job, run)
    try:
        first = await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        jobs.cancel(job.id)
        jobs.discard_when_done(job)
        raise ApiError(
            504, f"no audio within {timeout:.0f} s; use /v1/jobs for long work"
        ) from None
    if first is _END:
        await asyncio.wrap_future(job.future)
        jobs.discard(job.id)
        if job.state == FAILED:
            raise ApiError(job.error_status, job.error or "speech failed")
        raise ApiError(500, "the reader produced no audio")
    pcm = params.response_format == "pcm"

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk: object = first
            rate = PCM_RATE if pcm else first.rate
            if not pcm:
                yield wav_header(rate)
            while chunk is not _END:
                assert isinstance(chunk, Audio)
                yield pcm16(chunk.to_rate(rate) if chunk.rate != rate else chunk)
                chunk = await queue.get()
        finally:
            job.cancel_event.set()  # a client that left stops the reader after this sentence
            jobs.discard_when_done(job)

    return body()


async def start_sse(
    params: SpeechParams, backend: Backend, jobs: JobManager, job: Job, timeout: float
) -> AsyncIterator[bytes]:
    """OpenAI's `stream_format=sse`: a `speech.audio.delta` event (base64 audio in the asked
    format) per sentence as it finishes, then `speech.audio.done`; a failure after the first
    sentence arrives as an `error` event. Errors before it are normal HTTP errors."""
    body = await start_stream(
        params.model_copy(update={"response_format": "pcm"}), backend, jobs, job, timeout
    )
    fmt = params.response_format

    async def events() -> AsyncIterator[bytes]:
        first = True
        async for pcm in body:
            if fmt == "pcm":
                data = pcm
            elif fmt == "wav":  # one WAV stream across the deltas: the header comes first
                data = (wav_header(PCM_RATE) if first else b"") + pcm
            else:  # each sentence its own small file in that format
                x = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
                data = encode(Audio(x, PCM_RATE), fmt)
            first = False
            yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
        assert job.future is not None
        try:
            await asyncio.wrap_future(job.future)
        except Exception:  # noqa: BLE001 - the job's own error is reported below
            pass
        if job.state == FAILED:
            yield _event({"type": "error", "error": {"message": job.error or "speech failed"}})
            return
        yield _event({"type": "speech.audio.done"})

    return events()


def _event(data: dict) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()
