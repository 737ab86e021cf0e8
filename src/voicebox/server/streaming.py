"""Speech streamed as sentences finish: a worker thread produces, the event loop sends."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

from ..audio import Audio
from .apierror import ApiError
from .backend import Backend
from .jobs import FAILED, Job, JobManager
from .work import PCM_RATE, SpeechParams, pcm16, speech_args

_END = object()


def wav_header(rate: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV header with 'unknown' sizes, as streaming servers (and OpenAI) send."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


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
