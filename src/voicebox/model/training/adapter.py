"""Fit the HiFi-GAN mel adapter (model/mel_adapter.py) on real training speech.

Each clip gives a frame-aligned pair: our log-mel through the fixed adapter, and the vocoder's own
log-mel of the same audio. The network learns the first from the second with an L1 loss on random
crops. Only ../shared/data's train_* sets are read (the eval_* speakers stay unheard); a few of their
clips are held out to watch the loss. Pairs are cached and the run resumes from its last state.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ...progress import Progress, silent
from .. import checkpoint
from ..mel_adapter import MelAdapter, save_adapter
from .recipe import TRAIN_SETS, source_items


def _files_key(files: list[Path]) -> str:
    """What the cached pairs were computed from (a changed file list recomputes them)."""
    import hashlib

    return hashlib.sha256("\n".join(str(f) for f in files).encode()).hexdigest()[:16]


def pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(fixed-adapted features, the vocoder's own log-mel) of one clip, frame-aligned [T, 80]."""
    from ...audio import load
    from ..features import MEL, audio_to_mel
    from ..hifigan import adapt, native_mel

    audio = load(path, rate=MEL.rate, mono=True)
    x = adapt(audio_to_mel(audio)).numpy()
    y = native_mel(audio.samples[0], MEL.rate).numpy()
    n = min(len(x), len(y))
    return x[:n], y[:n]


def _stored_pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """pair() in a worker process of one thread, as fp16 (half the memory, far below the L1)."""
    torch.set_num_threads(1)
    x, y = pair(path)
    return x.astype(np.float16), y.astype(np.float16)


def load_pairs(
    files: list[Path],
    cache: Path,
    workers: int,
    echo: Callable[[str], None],
    progress: Progress = silent,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of every file, computed once into `cache` (an .npz of all of them)."""
    if cache.is_file():
        data = np.load(cache)
        if "key" in data.files and str(data["key"]) == _files_key(files):
            xs, ys, ends = data["x"], data["y"], data["ends"]
            starts = np.concatenate([[0], ends[:-1]])
            return [(xs[a:b], ys[a:b]) for a, b in zip(starts, ends, strict=True)]
    t0 = time.time()
    with ProcessPoolExecutor(max(1, workers)) as pool:
        pairs = []
        for pair_ in pool.map(_stored_pair, files, chunksize=16):
            pairs.append(pair_)
            progress(len(pairs), len(files))
    ends = np.cumsum([len(x) for x, _ in pairs])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        x=np.concatenate([x for x, _ in pairs]),
        y=np.concatenate([y for _, y in pairs]),
        ends=ends,
        key=_files_key(files),
    )
    tmp.replace(cache)
    echo(f"pairs: {len(files)} clips, {int(ends[-1])} frames in {time.time() - t0:.0f} s")
    return pairs


def _batch(
    pairs: list[tuple[np.ndarray, np.ndarray]], rng: random.Random, size: int, crop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` random crops of `crop` frames from `pairs` (each at least that long): [B, 80, crop]."""
    xs, ys = [], []
    for _ in range(size):
        x, y = pairs[rng.randrange(len(pairs))]
        s = rng.randrange(len(x) - crop + 1)
        xs.append(x[s : s + crop])
        ys.append(y[s : s + crop])
    to = lambda a: torch.from_numpy(np.stack(a).astype(np.float32)).transpose(1, 2)  # noqa: E731
    return to(xs), to(ys)


@torch.no_grad()
def held_out_l1(net: torch.nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean L1 to the vocoder's own log-mel over whole held-out clips."""
    net.eval()
    total = frames = 0.0
    for x, y in pairs:
        out = net(torch.from_numpy(x.astype(np.float32)).T[None])[0].T
        total += float((out - torch.from_numpy(y.astype(np.float32))).abs().sum()) / x.shape[1]
        frames += len(x)
    net.train()
    return total / frames


def shuffled_files(speech: Path) -> list[Path]:
    """The training sets' files in the fixed order a run uses (its first clips are held out)."""
    files = [Path(item.path) for item in source_items(speech)]
    if not files:
        raise FileNotFoundError(f"no training sets under {speech} ({', '.join(TRAIN_SETS)})")
    random.Random(1).shuffle(files)
    return files


def train_adapter(
    speech: Path,
    run: Path,
    out: Path,
    steps: int = 16000,
    batch: int = 16,
    crop: int = 128,
    lr: float = 1e-3,
    workers: int = 2,
    threads: int = 1,
    log_every: int = 250,
    echo: Callable[[str], None] = print,
    progress: Progress = silent,
) -> dict:
    """Fit the adapter on the training sets' pairs (computed once into `run`/pairs.npz), resuming
    `run`/state.pt when present, and export it to `out`; `progress` follows the steps."""
    pairs = load_pairs(shuffled_files(speech), run / "pairs.npz", workers, echo)
    return fit_adapter(pairs, run, out, steps, batch, crop, lr, threads, log_every, echo, progress)


def fit_adapter(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    run: Path,
    out: Path,
    steps: int = 16000,
    batch: int = 16,
    crop: int = 128,
    lr: float = 1e-3,
    threads: int = 1,
    log_every: int = 250,
    echo: Callable[[str], None] = print,
    progress: Progress = silent,
) -> dict:
    """train_adapter on pairs already loaded (load_pairs of shuffled_files: the first are held out)."""
    torch.set_num_threads(threads)
    n_held = min(24, max(1, len(pairs) // 5))
    held, pairs = pairs[:n_held], pairs[n_held:]
    crop = min(crop, max(len(x) for x, _ in pairs))
    long_enough = [p for p in pairs if len(p[0]) >= crop]  # what crops are drawn from
    net = MelAdapter()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)

    def factor(step: int) -> float:  # linear warm-up, cosine to 5 %
        if step < 200:
            return (step + 1) / 200
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    step, log = 0, []
    state_path = run / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, log = state["step"], state["log"]
        echo(f"resumed at step {step}")
    rng = random.Random(step)
    t0, running = time.time(), 0.0
    while step < steps:
        x, y = _batch(long_enough, rng, batch, crop)
        loss = (net(x) - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        running += loss.item()
        progress(step, steps)
        if step % log_every == 0 or step == steps:
            record = {
                "step": step,
                "train_l1": round(running / (step - (log[-1]["step"] if log else 0)), 4),
                "held_out_l1": round(held_out_l1(net, held), 4),
                "seconds": round(time.time() - t0, 1),
            }
            running = 0.0
            log.append(record)
            echo(json.dumps(record))
            checkpoint.save(
                {
                    "net": net.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "step": step,
                    "log": log,
                },
                state_path,
            )
    fixed = held_out_l1(torch.nn.Identity(), held)
    meta = {
        "steps": step,
        "clips": len(pairs),
        "held_out_clips": len(held),
        "frames": int(sum(len(x) for x, _ in pairs)),
        "held_out_l1": log[-1]["held_out_l1"] if log else None,
        "held_out_l1_fixed_adapter": round(fixed, 4),
        "log": log,
    }
    save_adapter(net, out, meta)
    return meta
