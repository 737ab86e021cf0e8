"""The job folder OUT_DIR/.voicebox-job/: what is done, so a rerun skips it, and who holds the job.

`done.jsonl` gets one line per finished item (input size, mtime and SHA-256, a hash of the options,
the output's size), appended and flushed only after the output was renamed into place. A line cut by
a kill is ignored. An item counts as done when its record matches the input, the options and the
output on disk; anything else is redone. `lock` is held (flock) while a batch runs and removed when it
ends; a run that was killed leaves it (and temporary files) behind, and the next run clears them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import time
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import InputError
from .manifest import Item

JOB_DIR = ".voicebox-job"
STATE_VERSION = 1
# Temporary names beside outputs: audio.temp_file's ".<name>.vbtmp-<host>-<pid>-<8 hex><suffix>"
# and tempfile.mkstemp's ".<name>.<8 random chars><suffix>"; clean's loudness scratch file adds
# ".pass1" before the suffix.
_TEMP = re.compile(
    r"^\.(?P<name>.+)(\.vbtmp-[0-9a-f]{4}-\d+-[0-9a-f]{8}|\.[a-z0-9_]{8})(\.pass1)?(\.[^.]+)?$"
)
# Inside the job folder: _write_atomic's ".<name>.<pid>.tmp" and staged archive members' mkstemp names.
_JOB_TEMP = re.compile(r"^\..+\.(\d+\.tmp|[a-z0-9_]{8})$")


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike[str], with_hash: bool = True) -> dict[str, Any]:
    """Size, modification time (ns) and optionally SHA-256 of an input file."""
    st = os.stat(path)
    found: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_hash:
        found["sha256"] = sha256(path)
    return found


def options_hash(task: str, item: Item) -> str:
    """A short hash of everything that shapes an item's output besides the input bytes: the task,
    the options, and the contents of the files they name (a reference voice or consent file
    replaced under the same name makes the item be done again)."""
    from .manifest import FILE_OPTIONS

    files = {k: _contents(item.options[k]) for k in FILE_OPTIONS if item.options.get(k)}
    payload = json.dumps(
        {"v": STATE_VERSION, "task": task, "source": item.source, "options": item.options}
        | ({"files": files} if files else {}),
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _contents(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a file an item names (None when it cannot be read): every item of a batch names
    the same reference, so it is read once per size and modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _cached_sha256(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        return sha256(path)
    except OSError:
        return None


class Job:
    """One output folder's batch state; use as a context manager to hold its lock."""

    def __init__(self, out_dir: str | os.PathLike[str], task: str):
        self.out_dir = Path(out_dir).resolve()
        self.task = task
        self.folder = self.out_dir / JOB_DIR
        self.done_path = self.folder / "done.jsonl"
        self.records: dict[str, dict[str, Any]] = {}
        self._lock: IO[str] | None = None
        self._log: IO[str] | None = None
        self.stale_removed = 0
        """Temporary files of a killed earlier run removed when this one opened."""

    def __enter__(self) -> Job:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the job folder, take its lock, check the task, and read what is done."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"{self.out_dir}: output path exists and is not a folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"{self.out_dir}: cannot create output folder ({exc.strerror})"
            ) from None
        lock = self._take_lock()
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        self._lock = lock
        self.stale_removed = self._sweep_job_folder()
        meta_path = self.folder / "job.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (json.JSONDecodeError, OSError):
                meta = {}
            if meta.get("task") not in (None, self.task):
                self.close()
                raise InputError(
                    f"{self.out_dir} holds a batch {meta['task']} job; "
                    f"write batch {self.task} into another folder"
                )
        else:
            _write_atomic(meta_path, json.dumps({"task": self.task, "version": STATE_VERSION}))
        self.records = self._read_records()
        self._log = open(self.done_path, "a", encoding="utf-8")

    def _take_lock(self) -> IO[str]:
        """Open and flock `lock`; a lock file left by a killed run is simply taken over."""
        path = self.folder / "lock"
        while True:
            lock = open(path, "a+")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                lock.close()
                raise InputError(
                    f"{self.out_dir}: another batch ({holder}) is writing here"
                ) from None
            try:  # the holder may have removed the file between our open and flock: retry
                if os.fstat(lock.fileno()).st_ino == os.stat(path).st_ino:
                    return lock
            except FileNotFoundError:
                pass
            lock.close()

    def _sweep_job_folder(self) -> int:
        """Delete the temporary files a killed run left in the job folder (we hold the lock)."""
        removed = 0
        for folder, _, files in os.walk(self.folder):
            for name in files:
                if _JOB_TEMP.match(name):
                    try:
                        os.unlink(os.path.join(folder, name))
                        removed += 1
                    except OSError:
                        pass
        return removed

    def close(self) -> None:
        """Release and remove the lock, and close the state file."""
        if self._log:
            self._log.close()
            self._log = None
        if self._lock:
            try:
                os.unlink(self.folder / "lock")  # still held: no one can take it as it goes
            except OSError:
                pass
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _read_records(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        if not self.done_path.exists():
            return records
        with open(self.done_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill: that item is simply redone
                if isinstance(record, dict) and "key" in record:
                    records[record["key"]] = record
        return records

    def output_path(self, item: Item) -> Path:
        """Where an item's output lives on disk."""
        return self.out_dir / PurePosixPath(item.output)

    def is_done(self, item: Item) -> bool:
        """True when a finished record matches this item's input, options and output on disk."""
        record = self.records.get(item.key)
        if not record or record.get("options") != options_hash(self.task, item):
            return False
        out = self.output_path(item)
        try:
            if out.stat().st_size != record.get("output_size"):
                return False
        except OSError:
            return False
        if item.source is None:
            return True
        seen = record.get("input") or {}
        try:
            now = fingerprint(item.source, with_hash=False)
        except OSError:
            return False
        if now["size"] != seen.get("size"):
            return False
        if now["mtime_ns"] == seen.get("mtime_ns"):
            return True
        # Touched but maybe unchanged: the content hash decides.
        return sha256(item.source) == seen.get("sha256")

    def record(self, item: Item, result: dict[str, Any]) -> None:
        """Append a finished item's record and flush it (call once its output is in place)."""
        out = self.output_path(item)
        record = {
            "key": item.key,
            "options": options_hash(self.task, item),
            "input": result.get("input"),
            "output_size": out.stat().st_size,
            "audio_seconds": result.get("audio_seconds"),
            "finished": round(time.time(), 3),
        }
        self.records[item.key] = record
        assert self._log is not None, "job is not open"
        self._log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())

    def forget(self, item: Item) -> None:
        """Drop an item's record (it failed this time, so its old output is stale)."""
        self.records.pop(item.key, None)

    def compact(self) -> None:
        """Rewrite done.jsonl with one line per item, dropping superseded and torn lines."""
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records.values())
        if self._log:
            self._log.close()
        _write_atomic(self.done_path, lines)
        self._log = open(self.done_path, "a", encoding="utf-8")

    def sweep_temporaries(self, items: list[Item]) -> int:
        """Delete temporary files a killed run left beside these items' outputs; return how many."""
        by_folder: dict[Path, set[str]] = {}
        for item in items:
            out = self.output_path(item)
            by_folder.setdefault(out.parent, set()).add(out.name)
        removed = 0
        for folder, names in by_folder.items():
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                match = _TEMP.match(entry.name)
                if match and match.group("name") in names and entry.is_file(follow_symlinks=False):
                    try:
                        os.unlink(entry.path)
                        removed += 1
                    except OSError:
                        pass
        return removed

    def write_report(self, rows: list[dict[str, Any]]) -> Path:
        """Write OUT_DIR/report.jsonl (one line per item: status, reason, times) atomically."""
        path = self.out_dir / "report.jsonl"
        _write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
