"""A local pool of worker processes that survives a worker dying mid-item.

Each worker is a spawned process that keeps its engines loaded across items and takes one item at a
time over its own pipe, so when one dies (killed, out of memory, a crash in native code) the pool
knows which item it held, reports that item as failed and starts a fresh worker for the rest.
concurrent.futures cannot do this: one dead worker breaks the whole executor.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VOICEBOX_THREADS")


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel SIGKILL this worker when the batch process dies (even by kill -9)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _worker_main(conn: Connection, task: str, out_dir: str, threads: int, parent: int) -> None:
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for name in THREAD_VARS:
        os.environ[name] = str(threads)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    from .worker import run_item

    while True:
        try:
            data = conn.recv()
        except (EOFError, OSError):
            return
        if data is None:
            return
        try:
            conn.send(run_item(task, data, out_dir))
        except (BrokenPipeError, OSError):
            return


def death_reason(exitcode: int | None) -> str:
    """Why a worker vanished, in words a user can act on."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if exitcode == -signal.SIGKILL else ""
        return f"worker process was killed by {name}{hint} while on this item"
    return f"worker process exited (code {exitcode}) while on this item"


class _Slot:
    def __init__(self, ctx: Any, task: str, out_dir: str, threads: int) -> None:  # noqa: ANN401
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main,
            args=(child, task, out_dir, threads, os.getpid()),
            daemon=True,
            name="voicebox-batch-worker",
        )
        self.process.start()
        child.close()
        self.item: dict[str, Any] | None = None

    def give(self, item: dict[str, Any]) -> None:
        self.item = item
        self.conn.send(item)

    def stop(self, force: bool = False) -> None:
        if not force and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def run_local(
    task: str,
    items: Iterable[dict[str, Any]],
    out_dir: str,
    workers: int,
    on_result: Callable[[dict[str, Any], dict[str, Any]], None],
    threads: int = 1,
) -> None:
    """Run items on `workers` processes; call on_result(item, result) in the caller as each ends."""
    pending = deque(items)
    if not pending:
        return
    ctx = mp.get_context("spawn")  # no inherited threads or half-initialised engines
    slots = [_Slot(ctx, task, out_dir, threads) for _ in range(max(1, min(workers, len(pending))))]
    try:
        for slot in slots:
            if pending:
                slot.give(pending.popleft())
        while any(s.item is not None for s in slots):
            busy = [s for s in slots if s.item is not None]
            ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy])
            for slot in busy:
                if slot.conn not in ready and slot.process.sentinel not in ready:
                    continue
                item = slot.item
                assert item is not None
                result = _receive(slot)
                slot.item = None
                if result is None:  # the worker died: report its item, replace the worker
                    slot.process.join(5)
                    result = {
                        "key": item["output"],
                        "status": "failed",
                        "reason": death_reason(slot.process.exitcode),
                    }
                    slot.stop(force=True)
                    slots.remove(slot)
                    if pending:
                        slots.append(_Slot(ctx, task, out_dir, threads))
                        slot = slots[-1]
                on_result(item, result)
                if pending and slot in slots:
                    slot.give(pending.popleft())
    finally:
        for slot in slots:
            slot.stop(force=any(s.item is not None for s in slots))


def _receive(slot: _Slot) -> dict[str, Any] | None:
    """The worker's result, or None when it died (its pipe closed or only its sentinel fired)."""
    try:
        if slot.conn.poll():
            return slot.conn.recv()
    except (EOFError, OSError):
        return None
    return None
