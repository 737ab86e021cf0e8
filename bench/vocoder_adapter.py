"""Learned mel adapters for the universal HiFi-GAN, measured against the fixed one.

Usage: .venv/bin/python bench/vocoder_adapter.py [--context 3] [--ridge 100] [--limit 10]
       [--adapter NAME=FILE ...]

The fixed adapter (model/hifigan.py: resample frames 62.5 -> 86.13 per second, add the filterbanks'
gain ratio) leaves our 64 ms-window features far from the 46 ms-window log-mels the vocoder was
trained on. This fits, in closed form, a ridge regression from `--context` adapted frames either side
to the vocoder's own log-mel of the same audio, on the training sets only (librispeech clean-100,
300 Common Voice clips), then scores held-out log-mel L1 and copy-synthesis of the eval sets
(bench/vocoder.py's real_bench: WER, DNSMOS, similarity) with the fixed and the learned adapter side
by side in one run, with the vocoder on its own mels (the ceiling) and each `--adapter` network (model/mel_adapter.py, fitted by
`voicebox train-adapter`; by default the shipped checkpoints/small/hifigan_adapter.pt). Writes
bench/results/vocoder_adapter.json and the ridge weights to runs/vocoder-adapter/ridge.npy; skips
cleanly when the shared data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from vocoder import SPEECH, clips, native_copy, real_bench  # noqa: E402
from voicebox.audio import resample  # noqa: E402
from voicebox.model.features import MEL  # noqa: E402
from voicebox.model.hifigan import (  # noqa: E402
    RATE,
    adapt,
    adapter_beside,
    generator,
    load_hifigan,
)
from voicebox.model.mel_adapter import load_adapter  # noqa: E402
from voicebox.model.training.adapter import pair  # noqa: E402


def context(x: np.ndarray, k: int) -> np.ndarray:
    """Each frame with its k neighbours either side (edges repeated) and a bias column."""
    p = np.pad(x, ((k, k), (0, 0)), mode="edge")
    cols = [p[i : i + len(x)] for i in range(2 * k + 1)]
    return np.concatenate([*cols, np.ones((len(x), 1), x.dtype)], 1)


def fit(files: list[Path], k: int, ridge: float) -> np.ndarray:
    """Ridge weights [(2k+1)*80+1, 80] from the normal equations, accumulated clip by clip."""
    d = (2 * k + 1) * MEL.n_mels + 1
    xtx, xty = np.zeros((d, d)), np.zeros((d, MEL.n_mels))
    for f in files:
        x, y = pair(f)
        c = context(x, k).astype(np.float64)
        xtx += c.T @ c
        xty += c.T @ y
    return np.linalg.solve(xtx + ridge * np.eye(d), xty).astype(np.float32)


def learned_vocoder(weights: np.ndarray, k: int):  # noqa: ANN201 - a vocode function like the others
    net = generator()

    @torch.inference_mode()
    def vocode(mel: torch.Tensor) -> np.ndarray:
        x = torch.from_numpy(context(adapt(mel.float()).numpy(), k) @ weights)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            wave = net(x.T[None].contiguous())[0, 0].float().numpy()
        out = resample(wave[None], RATE, MEL.rate)[0]
        length = (mel.shape[0] - 1) * MEL.hop
        return np.pad(out, (0, max(0, length - out.shape[0])))[:length]

    return vocode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--context", type=int, default=3, help="frames either side")
    parser.add_argument("--ridge", type=float, default=100.0)
    parser.add_argument("--limit", type=int, default=10, help="clips per real eval set")
    parser.add_argument(
        "--adapter", action="append", help="NAME=FILE of a fitted adapter network (repeatable)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vocoder_adapter.json"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("VOICEBOX_THREADS", "2")))
    train = SPEECH / "train_librispeech_clean100_untranscribed" / "audio"
    if not train.is_dir():
        print(f"{train} not found: skipped")
        return
    files = sorted(train.glob("*.opus"))
    files += sorted((SPEECH / "train_commonvoice_en100" / "data").glob("*.opus"))[:300]
    random.Random(0).shuffle(files)
    weights = fit(files, args.context, args.ridge)
    out_w = ROOT / "runs" / "vocoder-adapter" / "ridge.npy"
    out_w.parent.mkdir(parents=True, exist_ok=True)
    np.save(out_w, weights)
    shipped = adapter_beside()
    specs = args.adapter or ([f"network={shipped}"] if shipped else [])
    networks = {name: file for name, _, file in (a.rpartition("=") for a in specs)}
    l1: dict[str, list[float]] = {"fixed": [], "learned": [], **{n: [] for n in networks}}
    nets = {name: load_adapter(file) for name, file in networks.items()}
    for _, path, _ in clips(args.limit):
        x, y = pair(path)
        l1["fixed"].append(float(np.abs(x - y).mean()))
        l1["learned"].append(float(np.abs(context(x, args.context) @ weights - y).mean()))
        for name, net in nets.items():
            with torch.inference_mode():
                out = net(torch.from_numpy(x).T[None])[0].T.numpy()
            l1[name].append(float(np.abs(out - y).mean()))
    vocoders = {
        "hifigan_fixed": ("fixed adapter, bf16", load_hifigan(bf16=True)),
        "hifigan_learned": ("ridge adapter, bf16", learned_vocoder(weights, args.context)),
        **{
            f"hifigan_{name}": (f"{file}, bf16", load_hifigan(bf16=True, adapter=file))
            for name, file in networks.items()
        },
        "hifigan_native": ("on its own 22.05 kHz mels: what an adapter can reach", native_copy),
    }
    result = {
        "what": "copy-synthesis through the universal HiFi-GAN: fixed vs learned mel adapter",
        "command": " ".join(sys.argv),
        "train_clips": len(files),
        "adapters": networks,
        "held_out_log_mel_l1": {k: round(float(np.mean(v)), 4) for k, v in l1.items()},
        "real": real_bench(["original", *vocoders], vocoders, args.limit, 0),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("held_out_log_mel_l1",)}, indent=1))
    print(json.dumps(result["real"].get("summary"), indent=1))


if __name__ == "__main__":
    main()
