"""Batch benchmark: files/s and audio hours per hour for clean and transcribe, 1 vs 2 workers,
on the local process pool and on a local Ray instance; 1→2 worker scaling; peak RSS per worker.

Usage: .venv/bin/python bench/batch.py [--files 32] [--tasks clean,transcribe] [--no-ray]
Input: LJ Speech sample in ../shared/data/speech/ljspeech_sample/wavs (skipped cleanly if absent).
Writes bench/results/batch.json.

Two throughputs per run: `wall` (whole command: worker start, engine load, all items) and
`steady` (items finished after every worker delivered its first one, over the time they took),
which is what a long batch converges to. The machine is shared, so the load average at start and
end and the workers' CPU seconds are recorded beside every wall-clock number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from voicebox.batch.runner import run_batch  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "speech" / "ljspeech_sample" / "wavs"
TASK_OPTIONS = {"clean": {"engine": "dfn3"}, "transcribe": {"format": "json"}}


def one_run(task: str, src: Path, engine: str, workers: int, scratch: Path) -> dict:
    out = scratch / f"{task}-{engine}-{workers}"
    times: list[float] = []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()

    def progress(status) -> None:
        if status.last is not None:
            times.append(time.perf_counter() - started)

    summary = run_batch(task, str(src), out, TASK_OPTIONS[task], workers, engine, progress=progress)
    wall = time.perf_counter() - started
    rows = [r for r in summary.rows if r["status"] == "ok"]
    audio = sum(r["audio_seconds"] for r in rows)
    per_worker: dict[int, float] = {}
    for r in rows:
        per_worker[r["pid"]] = max(per_worker.get(r["pid"], 0.0), r["rss_mb"])
    n = len(times)
    warm = min(workers, n)
    steady = (
        (n - warm) / (times[-1] - times[warm - 1])
        if n > warm and times[-1] > times[warm - 1]
        else None
    )
    audio_per_file = audio / max(1, len(rows))
    result = {
        "task": task,
        "engine": engine,
        "workers": workers,
        "files": len(summary.rows),
        "failed": summary.status.failed,
        "audio_seconds": round(audio, 2),
        "wall_s": round(wall, 2),
        "files_per_s_wall": round(len(rows) / wall, 3),
        "audio_hours_per_hour_wall": round(audio / wall, 2),
        "first_result_s": round(times[0], 2) if times else None,
        "files_per_s_steady": round(steady, 3) if steady else None,
        "audio_hours_per_hour_steady": round(steady * audio_per_file, 2) if steady else None,
        "worker_cpu_s": round(sum(r.get("cpu_seconds", 0.0) for r in rows), 2),
        "item_wall_s": round(sum(r.get("seconds", 0.0) for r in rows), 2),
        "peak_rss_mb_per_worker": sorted(per_worker.values(), reverse=True),
        "load_avg_start": round(load_before, 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result), flush=True)
    result["_digests"] = {
        r["output"]: hashlib.sha256((out / r["output"]).read_bytes()).hexdigest() for r in rows
    }
    return result


def scaling(runs: list[dict], task: str, engine: str, key: str) -> float | None:
    by_workers = {
        r["workers"]: r.get(key) for r in runs if r["task"] == task and r["engine"] == engine
    }
    one, two = by_workers.get(1), by_workers.get(2)
    return round(two / one, 2) if one and two else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--tasks", default="clean,transcribe")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        return
    files = sorted(DATA.glob("*.wav"))[: args.files]
    engines = ["local"] if args.no_ray else ["local", "ray"]
    runs: list[dict] = []
    ray_init_s = None
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        src = scratch / "in"
        src.mkdir()
        for f in files:
            (src / f.name).symlink_to(f)
        for engine in engines:
            if engine == "ray":
                import ray

                t = time.perf_counter()
                ray.init(
                    num_cpus=2,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                )
                ray_init_s = round(time.perf_counter() - t, 2)
            for task in args.tasks.split(","):
                for workers in (1, 2):
                    try:
                        runs.append(one_run(task, src, engine, workers, scratch))
                    except Exception as exc:  # record it and go on to the next configuration
                        error = {"task": task, "engine": engine, "workers": workers}
                        runs.append({**error, "error": f"{type(exc).__name__}: {exc}"})
                        print(json.dumps(runs[-1]), flush=True)
            if engine == "ray":
                ray.shutdown()
    summary: dict = {}
    for task in args.tasks.split(","):
        summary[task] = {
            engine: {
                "scaling_1_to_2_steady": scaling(runs, task, engine, "files_per_s_steady"),
                "scaling_1_to_2_wall": scaling(runs, task, engine, "files_per_s_wall"),
            }
            for engine in engines
        }
        digests = [r.pop("_digests") for r in runs if r["task"] == task and "_digests" in r]
        # Every configuration (1 or 2 workers, local or Ray) should write the same bytes.
        summary[task]["outputs_identical_across_runs"] = bool(digests) and all(
            d == digests[0] for d in digests
        )
    result = {
        "machine": {"cpus": os.cpu_count(), "note": "shared with other jobs; see load_avg"},
        "data": f"LJ Speech sample, {len(files)} files",
        "options": TASK_OPTIONS,
        "ray_init_s": ray_init_s,
        "scaling": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
