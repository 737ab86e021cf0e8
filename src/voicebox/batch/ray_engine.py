"""Run a batch through Ray Data: the items become a dataset, `map_batches` hands them one at a time
to a pool of actors (one engine set per actor), and results stream back to the driver, which keeps
the job state. Outputs are written by the same atomic writers as the local pool, so they must live
on a path every node sees (the local machine, or a shared filesystem for a cluster).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import EngineError
from .local import THREAD_VARS

LOST = "lost on Ray: the worker process died on this item twice (killed, out of memory or a crash)"


class ItemWorker:
    """A Ray Data callable class: one per actor, so engines load once per actor and stay loaded."""

    def __init__(self, task: str, out_dir: str, threads: int = 1) -> None:
        for name in THREAD_VARS:
            os.environ[name] = str(threads)
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        self.task = task
        self.out_dir = out_dir

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from .worker import run_item

        results = [
            json.dumps(run_item(self.task, json.loads(str(raw)), self.out_dir))
            for raw in batch["item"]
        ]
        return {"item": batch["item"], "result": np.array(results, dtype=object)}


def _import_ray() -> Any:  # noqa: ANN401 - the ray module
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError(
            "Ray is not installed; install it with: pip install 'voicebox[ray]'"
        ) from None
    return ray


def run_ray(
    task: str,
    items: list[dict[str, Any]],
    out_dir: str,
    workers: int,
    on_result: Callable[[dict[str, Any], dict[str, Any]], None],
    address: str | None = None,
    threads: int = 1,
) -> None:
    """Run items on a Ray actor pool of `workers` actors; call on_result(item, result) per item.

    Without `address` a private local Ray instance is started (node address 127.0.0.1, usage
    stats off, no dashboard; Ray's own ports still listen on every interface, behind its token
    authentication) and shut down after; with one ('auto' or 'ray://host:port') the job joins that cluster. An already initialised Ray
    (for example in a notebook or a test) is used as it is.
    """
    if not items:
        return
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:
                ray.init(
                    num_cpus=max(1, workers),
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
        except Exception as exc:  # Ray raises many types (ConnectionError, RuntimeError, ...)
            where = address or "a local instance"
            raise EngineError(f"cannot start Ray ({where}): {exc}") from None
        started_here = True
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars, context.max_errored_blocks
    seen: set[str] = set()
    reason = LOST
    try:
        context.enable_progress_bars = False
        # One block per item, and failed blocks dropped rather than fatal: an item whose actor
        # dies (killed, out of memory, a native crash) is retried once, then lost alone.
        context.max_errored_blocks = -1
        rows = [{"item": json.dumps(item)} for item in items]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        dataset = _map(ray, dataset, task, out_dir, threads, max(1, min(workers, len(items))))
        try:
            for row in dataset.iter_rows():
                item = json.loads(str(row["item"]))
                seen.add(item["output"])
                on_result(item, json.loads(str(row["result"])))
        except Exception as exc:  # the whole dataset failed: fail what did not come back
            reason = f"Ray job stopped: {' '.join(str(exc).split())[:200]}"
        for item in items:
            if item["output"] not in seen:
                on_result(item, {"key": item["output"], "status": "failed", "reason": reason})
    finally:
        context.enable_progress_bars, context.max_errored_blocks = saved
        if started_here:
            ray.shutdown()


def _map(  # noqa: ANN401 - Ray objects
    ray: Any, dataset: Any, task: str, out_dir: str, threads: int, size: int
) -> Any:
    """The actor-pool stage. Ray Data retries a task whose actor died forever by default, so one
    item that kills its worker would never end: allow one retry. Ray deprecates passing that as
    an extra remote argument without a named replacement yet; without it, fall back to Ray's own.
    """
    kwargs: dict[str, Any] = {
        "fn_constructor_args": (task, out_dir, threads),
        "batch_size": 1,
        "batch_format": "numpy",
        "compute": ray.data.ActorPoolStrategy(size=size),
        "num_cpus": 1,
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        try:
            return dataset.map_batches(ItemWorker, max_task_retries=1, **kwargs)
        except TypeError:
            return dataset.map_batches(ItemWorker, **kwargs)
