"""Jobs: every piece of engine work runs in a bounded thread pool, with state, progress and cancel.

Engines are CPU-bound native code (onnxruntime, CTranslate2, DeepFilterNet), so worker threads run
them off the event loop. Admission is bounded: `workers` run, `queue_size` wait, the rest get 429.
Finished jobs and their files are removed after `ttl` seconds; a client that disconnects does not
cancel a job it started through /v1/jobs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VoiceboxError
from .apierror import ApiError, from_voicebox
from .workdir import WorkDir

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = {DONE, FAILED, CANCELLED}


class Cancelled(Exception):
    """Raised inside a job's progress callback once the job was cancelled."""


@dataclass
class Result:
    """What a finished job produced: a file in its folder and how to serve it."""

    path: Path
    media_type: str
    filename: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """One unit of engine work and everything a client may ask about it."""

    id: str
    kind: str
    folder: Path
    state: str = QUEUED
    done: float = 0.0
    total: float = 0.0
    error: str | None = None
    error_status: int = 500
    result: Result | None = None
    info: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: Future | None = None
    inputs: list[Path] = field(default_factory=list)
    """The job's uploads: no result may be written over one of them."""

    def progress(self, done: float, total: float) -> None:
        """Progress callback handed to the tasks; also where a cancelled job stops."""
        self.done, self.total = float(done), float(total)
        self.check_cancel()

    def check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def status(self) -> dict:
        """The JSON a client polls: state, progress and, when finished, where the result is."""
        fraction = None
        if self.state == DONE:
            fraction = 1.0
        elif self.total > 0:
            fraction = max(0.0, min(1.0, self.done / self.total))
        out = {
            "id": self.id,
            "object": "job",
            "task": self.kind,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total, "fraction": fraction},
            "created_at": self.created,
            "started_at": self.started,
            "finished_at": self.finished,
            "error": self.error,
            "info": self.info,
        }
        if self.state == DONE and self.result is not None:
            out["result_url"] = f"/v1/jobs/{self.id}/result"
            out["result_type"] = self.result.media_type
        return out


Work = Callable[[Job], Result | None]


class JobManager:
    """Runs jobs on a bounded pool, keeps them for `ttl` seconds after they finish, then deletes them."""

    def __init__(self, workdir: WorkDir, workers: int, queue_size: int, ttl: float) -> None:
        self.workdir = workdir
        self.capacity = workers + queue_size
        self.workers = workers
        self.ttl = ttl
        self.jobs: dict[str, Job] = {}
        self.active = 0
        self.peak_active = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voicebox-job")

    def new(self, kind: str) -> Job:
        """Reserve a slot and a folder for a job, or answer 429 when workers and queue are full."""
        self.sweep()
        with self._lock:
            if self.active >= self.capacity:
                raise ApiError(
                    429,
                    f"server busy: {self.active} jobs running or queued (limit {self.capacity}); "
                    "retry shortly",
                    "rate_limit_error",
                    headers={"Retry-After": "2"},
                )
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            job_id = uuid.uuid4().hex
            job = Job(job_id, kind, self.workdir.folder(job_id))
            self.jobs[job_id] = job
        return job

    def start(self, job: Job, work: Work) -> Job:
        """Queue `work(job)` on the pool; the slot reserved by `new` is released when it ends."""
        job.future = self._pool.submit(self._run, job, work)
        return job

    def release(self, job: Job) -> None:
        """Give back the slot of a job that was reserved but never started, and delete it."""
        self._finish(job)
        self.discard(job.id)

    def _run(self, job: Job, work: Work) -> None:
        try:
            if job.cancel_event.is_set():
                job.state = CANCELLED
                return
            job.state, job.started = RUNNING, time.time()
            job.result = work(job)
            job.state = CANCELLED if job.cancel_event.is_set() else DONE
        except Cancelled:
            job.state = CANCELLED
        except ApiError as exc:
            job.state, job.error, job.error_status = FAILED, exc.message, exc.status
        except VoiceboxError as exc:
            api = from_voicebox(exc)
            job.state, job.error, job.error_status = FAILED, api.message, api.status
        except Exception as exc:  # an engine bug must not kill the worker; report it as one line
            job.state, job.error = FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        with self._lock:
            if job.finished is None:
                job.finished = time.time()
                self.active -= 1
            if job.state not in FINISHED:
                job.state = CANCELLED

    def get(self, job_id: str) -> Job:
        """The job with this id, or 404."""
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r} (finished jobs are removed after a while)")
        return job

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one never runs, a running one stops at its next progress report."""
        job = self.get(job_id)
        job.cancel_event.set()
        if job.future is not None and job.future.cancel():
            job.state = CANCELLED
            self._finish(job)
        return job

    def discard_when_done(self, job: Job) -> None:
        """Delete a job as soon as it ends (work nobody will collect: a timed-out direct request)."""
        if job.future is None:
            self.discard(job.id)
        else:
            job.future.add_done_callback(lambda _: self.discard(job.id))

    def discard(self, job_id: str) -> None:
        """Forget a finished job and delete its files."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.finished is None:
                return
            del self.jobs[job_id]
        self.workdir.remove(job_id)

    def sweep(self, now: float | None = None) -> int:
        """Delete jobs that finished more than `ttl` seconds ago; returns how many went."""
        now = time.time() if now is None else now
        old = [j.id for j in list(self.jobs.values()) if j.finished and now - j.finished > self.ttl]
        for job_id in old:
            self.discard(job_id)
        return len(old)

    def shutdown(self) -> None:
        """Cancel everything and stop the pool."""
        for job in list(self.jobs.values()):
            job.cancel_event.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
