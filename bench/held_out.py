"""Held-out flow-matching loss of checkpoints side by side, under each masking recipe.

The training log's held-out loss uses the run's own masks, so runs with different recipes cannot be
compared from their logs. Here every checkpoint is scored on the same held-out speakers, noise and
masks, once per recipe: `paper` (a span or random frames covering 70-100 %, the Voicebox recipe),
`short` (a contiguous 3-25 % span only: what an edit of a word or two asks) and `mixed` (a third
short, configs/real-edit.yaml's). With only a handful of held-out items (8 in data/real-v1) the loss moves by more than
the differences between checkpoints from one draw of noise and masks to the next, so each recipe is
the mean over `--repeats` draws (the same draws for every checkpoint). EMA weights as shipped.
Skips cleanly when the corpus is absent. Writes bench/results/held_out.json.

    .venv/bin/python bench/held_out.py --checkpoint session6=checkpoints/small \
        --checkpoint session8=runs/real-v5 [--data data/real-v1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "held_out.json"
RECIPES = {
    "paper": {"p_short_span": 0.0},
    # an edit always has its context: no item's context or phones dropped (else the dropped items'
    # hundreds of generated frames outweigh the spans' few dozen)
    "short": {"p_short_span": 1.0, "p_drop_context": 0.0, "p_drop_phones": 0.0},
    "mixed": {"p_short_span": 0.33},
}


@torch.no_grad()
def mean_loss(model: torch.nn.Module, held, loss_fn, repeats: int) -> float:  # noqa: ANN001
    """The loss over every held-out batch, averaged over `repeats` seeded draws."""
    losses = []
    for r in range(repeats):
        generator = torch.Generator().manual_seed(1234 + r)
        losses += [float(loss_fn(model, batch, generator)[0]) for batch in held]
    return sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="NAME=FOLDER")
    parser.add_argument("--data", default=str(ROOT / "data" / "real-v1"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "real-edit.yaml"))
    parser.add_argument("--repeats", type=int, default=5, help="draws of noise and masks")
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        print(f"no corpus at {args.data}; skipping", file=sys.stderr)
        return
    from voicebox.model import checkpoint
    from voicebox.model.config import load_config
    from voicebox.model.training.train import _make_loader, _Run

    torch.set_num_threads(1)
    config = load_config(args.config)
    _, held, loss_fn = _make_loader("audio", config, Path(args.data), _Run())
    if held is None:
        print("the corpus has no held-out speakers; skipping", file=sys.stderr)
        return
    t0 = time.perf_counter()
    result: dict = {
        "command": "bench/held_out.py " + " ".join(sys.argv[1:]),
        "held_out_items": len(held.dataset),
        "repeats": args.repeats,
        "loss": {},
    }
    for spec in args.checkpoint:
        name, _, folder = spec.rpartition("=")
        model, _ = checkpoint.load(folder, "audio")
        stored = model.cfg
        scores = {}
        for recipe, fields in RECIPES.items():
            model.cfg = dataclasses.replace(stored, **fields)
            scores[recipe] = round(mean_loss(model, held, loss_fn, args.repeats), 4)
        result["loss"][name or folder] = scores
        print(f"{name or folder}: {scores}", flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
