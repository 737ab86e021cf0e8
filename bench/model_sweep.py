"""Sampling settings side by side on held-out synthetic voices: guidance strength, NFE and speaking
rate against whisper WER and speaker similarity. Picks the defaults `voicebox.model` samples with.

    .venv/bin/python bench/model_sweep.py [--checkpoint checkpoints/small] [--voices 4 --targets 3]

Writes bench/results/model_sweep.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

import model as bench  # noqa: E402  (bench/model.py: voices, scoring)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "small"))
    parser.add_argument("--voices", type=int, default=4)
    parser.add_argument("--targets", type=int, default=3, help="sentences per voice")
    parser.add_argument("--guidance", default="0.7,1.5,2.5")
    parser.add_argument("--duration-scale", default="1.0")
    parser.add_argument("--nfe", default="16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_sweep.json"))
    args = parser.parse_args()

    import os

    os.environ["VOICEBOX_CHECKPOINT"] = args.checkpoint
    from voicebox.model import sample
    from voicebox.model.training.synth import generated_sentence

    voices = bench.held_out_voices(args.voices, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    targets = {v["name"]: [generated_sentence(rng) for _ in range(args.targets)] for v in voices}
    grid = [
        (float(g), float(d), int(n))
        for g in args.guidance.split(",")
        for d in args.duration_scale.split(",")
        for n in args.nfe.split(",")
    ]
    results = []
    for guidance, scale, nfe in grid:
        rows = []
        for v in voices:
            for k, text in enumerate(targets[v["name"]]):
                start = time.process_time()
                out = sample.zero_shot(
                    text,
                    v["prompt"],
                    v["prompt_text"],
                    nfe=nfe,
                    guidance=guidance,
                    seed=args.seed + k,
                    duration_scale=scale,
                )
                cpu = time.process_time() - start
                row = {"voice": v["name"], "cpu_rtf": round(cpu / out.duration, 3)}
                row.update(bench.score(out, text, v["other"]))
                rows.append(row)
        summary = {"guidance": guidance, "duration_scale": scale, "nfe": nfe}
        summary.update(bench.summary(rows))
        summary["cpu_rtf"] = round(float(np.mean([r["cpu_rtf"] for r in rows])), 3)
        print(json.dumps(summary), flush=True)
        results.append({**summary, "rows": rows})
    out = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "checkpoint": args.checkpoint,
        "note": "cpu_rtf is CPU seconds per generated second (threads as configured)",
        "results": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
