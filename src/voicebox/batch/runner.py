"""Run a whole batch: plan the items, skip what a previous run finished, run the rest on the local
pool or Ray, record each success as it lands, and write OUT_DIR/report.jsonl at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .jobs import Job
from .manifest import Item, plan

ENGINES = ("local", "ray")


@dataclass
class BatchStatus:
    """Counts so far, passed to the progress callback after every item."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    last: dict[str, Any] | None = None

    @property
    def finished(self) -> int:
        """Items that need no more work this run (done, skipped or failed)."""
        return self.done + self.skipped + self.failed


@dataclass
class BatchSummary:
    """What a batch run did: one row per item, the counts, and where the report is."""

    rows: list[dict[str, Any]]
    status: BatchStatus
    report: Path
    seconds: float
    stale_removed: int = 0
    """Temporary files a stopped earlier run left, removed before this one started."""

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The rows that failed, with their reasons."""
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when every item succeeded, 2 when none did, 1 in between."""
        if self.status.failed == 0:
            return 0
        return 2 if self.status.done + self.status.skipped == 0 else 1


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_batch(
    task: str,
    source: str,
    out_dir: str | os.PathLike[str],
    options: dict[str, Any] | None = None,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
    progress: Callable[[BatchStatus], None] | None = None,
    threads: int | None = None,
) -> BatchSummary:
    """Run `task` over every item of `source` into `out_dir`, resuming where an earlier run stopped.

    Failed items never stop the batch; each is reported with a one-line reason. `threads` is per
    worker (default VOICEBOX_THREADS, else 1): parallelism comes from workers, not threads.
    """
    from ..config import threads as default_threads

    threads = threads or default_threads()
    if engine not in ENGINES:
        raise InputError(f"unknown batch runner '{engine}'; use local or ray")
    if address and engine != "ray":
        raise InputError("--address is for --runner ray")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise InputError("--workers must be at least 1")
    out = Path(out_dir).resolve()
    src = Path(source)
    if src.is_dir() and src.resolve() == out:
        raise InputError(f"{out}: write the outputs to another folder than the input")
    started = time.perf_counter()
    with Job(out, task) as job:
        items = plan(task, source, out, options, staging=job.folder / "archives")
        check_items(task, job, items)
        todo = [item for item in items if not job.is_done(item)]
        stale = job.stale_removed + job.sweep_temporaries(todo)
        recorder = _Recorder(job, items, todo, progress)
        payload = [item.to_dict() for item in todo]
        try:
            if engine == "ray":
                from .ray_engine import run_ray

                run_ray(task, payload, str(out), workers, recorder.on_result, address, threads)
            else:
                from .local import run_local

                run_local(task, payload, str(out), workers, recorder.on_result, threads)
        finally:
            job.sweep_temporaries(todo)  # what a worker killed mid-item left behind
            job.compact()
            ordered = recorder.ordered()
            report = job.write_report(ordered)
    return BatchSummary(ordered, recorder.status, report, time.perf_counter() - started, stale)


class _Recorder:
    """Counts and rows of a run: items an earlier run finished are rows at once (skipped); each
    result that lands is recorded in the job state (a success) or forgotten (a failure)."""

    def __init__(
        self,
        job: Job,
        items: list[Item],
        todo: list[Item],
        progress: Callable[[BatchStatus], None] | None,
    ) -> None:
        self.job, self.items, self.progress = job, items, progress
        self.status = BatchStatus(total=len(items))
        self.rows: dict[str, dict[str, Any]] = {}
        todo_keys = {t.key for t in todo}
        for item in items:
            if item.key not in todo_keys:
                seconds = float(job.records[item.key].get("audio_seconds") or 0.0)
                self.rows[item.key] = _row(item, {"status": "skipped", "audio_seconds": seconds})
                self.status.skipped += 1
        if progress:
            progress(self.status)

    def on_result(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        """One item's result, from a worker."""
        item, status = Item.from_dict(data), self.status
        ok = result.get("status") == "ok"
        if ok:
            try:
                self.job.record(item, result)
            except OSError as exc:  # the output vanished under us: not done after all
                ok = False
                result = {**result, "status": "failed", "reason": f"output missing ({exc})"}
        if ok:
            status.done += 1
            status.audio_seconds += float(result.get("audio_seconds") or 0.0)
        else:
            self.job.forget(item)
            status.failed += 1
        self.rows[item.key] = _row(item, result)
        status.last = self.rows[item.key]
        if self.progress:
            self.progress(status)

    def ordered(self) -> list[dict[str, Any]]:
        """One row per item in plan order (pending for those no result reached)."""
        return [self.rows.get(i.key) or _row(i, {"status": "pending"}) for i in self.items]


def check_items(task: str, job: Job, items: list[Item]) -> None:
    """Refuse the batch before any work: an output that is an input (by path, or the same file by
    inode; a reference voice or consent file counts as one), or an item that has the model speak
    in a voice without that speaker's consent, or with no voice to speak in."""
    from ..provenance import check_consent
    from ..safety import refuse_overwrite
    from .manifest import FILE_OPTIONS
    from .worker import NO_REFERENCE, consent_of, speaks_as_speaker

    sources = {Path(item.source) for item in items if item.source}
    for item in items:
        if job.output_path(item) in sources:
            raise InputError(f"{job.output_path(item)}: an output would overwrite an input")
    named = {Path(i.options[k]) for i in items for k in FILE_OPTIONS if i.options.get(k)}
    refuse_overwrite([job.output_path(i) for i in items], sorted(sources | named))
    for item in items:
        if not speaks_as_speaker(task, item.options):
            continue
        where = item.source or item.output
        if task == "read_like" and not item.options.get("reference"):
            raise InputError(f"{where}: {NO_REFERENCE}")
        try:
            check_consent(consent_of(item.options))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    if task == "read_like":
        _check_languages(items)


def _check_languages(items: list[Item]) -> None:
    """Refuse read_like items in a language a recording's voice cannot speak, and English ones
    when no model is trained, before any work (the same words `voicebox read --like` uses)."""
    from ..tasks.crosslingual import route_language

    english = False
    for item in items:
        try:
            english |= route_language(item.options["text"], item.options.get("lang")) == "en"
        except InputError as exc:
            raise InputError(f"{item.source or item.output}: {exc}") from None
    if english:
        from ..model.checkpoint import find

        find(None, "audio")  # NotReadyError (one line) when no model is trained


def _row(item: Item, result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"input": item.source, "output": item.output}
    row["status"] = result.get("status", "failed")
    row["reason"] = result.get("reason")
    for name in ("seconds", "cpu_seconds", "audio_seconds", "pid", "rss_mb"):
        if result.get(name) is not None:
            row[name] = result[name]
    return row
