"""Load test: N concurrent clients against `voicebox serve` on loopback for T seconds.

Mixed traffic: half read a short sentence (wav, streamed), half clean a 3 s noisy clip. Clients
that get 429 (queue full, deliberate back-pressure) wait for Retry-After and try again. Reports
p50/p95 latency of completed requests, throughput, error counts and the server's peak RSS.

    .venv/bin/python bench/serve.py                      # 50 clients, 60 s -> bench/results/serve.json
    .venv/bin/python bench/serve.py --clients 4 --seconds 5 --out /tmp/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def noisy_clip(seconds: float = 3.0, rate: int = 16_000) -> bytes:
    """A buzzy voiced tone with syllable envelope and white noise (no data files needed)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(130 + 30 * np.sin(2 * np.pi * 0.7 * t)) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    x = 0.2 * voice * np.clip(np.sin(4 * np.pi * t), 0, None) + 0.05 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, (0.8 * x / np.abs(x).max()).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def client(url: str, clip: bytes, deadline: float, stats: dict, rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        while time.monotonic() < deadline:
            kind = rng.choice(["speech", "clean"])
            start = time.monotonic()
            try:
                if kind == "speech":
                    body = {
                        "input": rng.choice(SENTENCES),
                        "voice": "alloy",
                        "response_format": "wav",
                    }
                    response = await http.post("/v1/audio/speech", json=body)
                else:
                    files = {"file": ("noisy.wav", clip, "audio/wav")}
                    response = await http.post("/v1/audio/clean", files=files)
            except httpx.HTTPError as exc:
                stats["errors"].append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.monotonic() - start
            if response.status_code == 200 and len(response.content) > 44:
                stats["latency"][kind].append(elapsed)
            elif response.status_code == 429:
                stats["rejected_429"] += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            else:
                stats["errors"].append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    a = np.asarray(values)
    return {
        "count": int(a.size),
        "p50_s": round(float(np.percentile(a, 50)), 3),
        "p95_s": round(float(np.percentile(a, 95)), 3),
        "max_s": round(float(a.max()), 3),
    }


async def run(url: str, clients: int, seconds: float) -> dict:
    stats: dict = {"latency": {"speech": [], "clean": []}, "rejected_429": 0, "errors": []}
    clip = noisy_clip()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(
        *(client(url, clip, deadline, stats, random.Random(i)) for i in range(clients))
    )
    stats["wall_s"] = round(time.monotonic() - started, 1)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=None, help="server worker threads")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    args = parser.parse_args()

    port = free_port()
    env = {**os.environ, "VOICEBOX_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}
    work = tempfile.mkdtemp(prefix="bench-serve-")
    env["VOICEBOX_WORK_DIR"] = work
    cmd = [
        sys.executable,
        "-c",
        "from voicebox.cli import main; main()",
        "serve",
        "--port",
        str(port),
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                health = httpx.get(f"{url}/healthz").json()
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    sys.exit(f"server did not start: {server.stderr.read().decode()}")
                time.sleep(0.2)
        # Warm the engines once so the run measures serving, not first-time model loading.
        httpx.post(
            f"{url}/v1/audio/speech",
            json={"input": "Warm up.", "response_format": "wav"},
            timeout=300,
        )
        httpx.post(
            f"{url}/v1/audio/clean",
            files={"file": ("w.wav", noisy_clip(0.5), "audio/wav")},
            timeout=300,
        )
        rss_before = peak_rss_mb(server.pid)
        stats = asyncio.run(run(url, args.clients, args.seconds))
        rss_peak = peak_rss_mb(server.pid)
        leftover = sum(1 for _ in Path(work).rglob("*") if _.is_file())
    finally:
        server.terminate()
        server.wait(timeout=30)

    done = len(stats["latency"]["speech"]) + len(stats["latency"]["clean"])
    result = {
        "bench": "serve",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["bench/serve.py"] + sys.argv[1:]),
        "clients": args.clients,
        "seconds": args.seconds,
        "server": {"workers": health["jobs"]["workers"], "capacity": health["jobs"]["capacity"]},
        "completed": done,
        "throughput_rps": round(done / stats["wall_s"], 2),
        "latency": {
            "all": percentiles(stats["latency"]["speech"] + stats["latency"]["clean"]),
            "speech": percentiles(stats["latency"]["speech"]),
            "clean": percentiles(stats["latency"]["clean"]),
        },
        "rejected_429": stats["rejected_429"],
        "errors": len(stats["errors"]),
        "error_samples": stats["errors"][:5],
        "server_peak_rss_mb": {"after_warmup": round(rss_before, 1), "peak": round(rss_peak, 1)},
        "work_files_left_during_run": leftover,
        "wall_s": stats["wall_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
