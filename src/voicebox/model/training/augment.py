"""Room and noise augmentation for training corpora: generated rooms and noises, plus real ones if present.

Most utterances stay clean; the model learns to continue whatever conditions its context has.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import scipy.signal

from ...audio import load

SHARED = Path(__file__).resolve().parents[4].parent / "shared" / "data"
"""../shared/data beside the repository (this file is src/voicebox/model/training/augment.py)."""


def generated_rir(rng: np.random.Generator, rate: int) -> np.ndarray:
    """A simple room impulse response: direct path plus exponentially decaying noise (RT60 0.15–0.8 s)."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rate * rt60)
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = scipy.signal.lfilter([1.0], [1.0, -rng.uniform(0.0, 0.7)], tail)  # duller walls
    delay = int(rate * rng.uniform(0.002, 0.01))
    tail[:delay] = 0.0
    rir = tail * rng.uniform(0.1, 0.4) / (np.abs(tail).max() + 1e-9)
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def generated_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stationary coloured noise (white, pink or brown) with a slow level wobble."""
    white = rng.standard_normal(n)
    kind = rng.integers(3)
    if kind == 1:  # pink: 1/f via a standard IIR approximation
        b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
        a = [1.0, -2.494956002, 2.017265875, -0.522189400]
        white = scipy.signal.lfilter(b, a, white)
    elif kind == 2:  # brown
        white = scipy.signal.lfilter([1.0], [1.0, -0.98], white)
    wobble = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * np.arange(n) / 16000.0)
    return (white * wobble).astype(np.float32)


@functools.cache
def _real_files(kind: str) -> tuple[Path, ...]:
    if kind == "rir":
        roots = [SHARED / "rir", SHARED / "noise" / "audiomentations_demo" / "ir"]
    else:
        roots = [
            SHARED / "noise" / "doing_the_dishes.wav",
            SHARED / "noise" / "audiomentations_demo" / "background_noises",
        ]
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(sorted(p for p in root.rglob("*.wav") if not p.name.startswith(".")))
    return tuple(files)


@functools.lru_cache(maxsize=64)
def _real(path: Path, rate: int) -> np.ndarray:
    return load(path, rate=rate, mono=True).samples[0]


def _pick_real(rng: np.random.Generator, kind: str, rate: int) -> np.ndarray | None:
    files = _real_files(kind)
    if not files or rng.random() < 0.5:
        return None
    try:
        return _real(files[int(rng.integers(len(files)))], rate)
    except Exception:  # an odd file in the shared folder must not stop a corpus build
        return None


def reverb(x: np.ndarray, rng: np.random.Generator, rate: int) -> tuple[np.ndarray, str]:
    """Convolve with a real or generated room; same length and peak as the input."""
    rir = _pick_real(rng, "rir", rate)
    kind = "real_rir"
    if rir is None or len(rir) < 16:
        rir, kind = generated_rir(rng, rate), "gen_rir"
    rir = rir[: rate * 2]
    onset = int(np.argmax(np.abs(rir)))
    wet = scipy.signal.fftconvolve(x, rir[onset:] / (np.abs(rir).max() + 1e-9))[: len(x)]
    wet *= (np.abs(x).max() + 1e-9) / (np.abs(wet).max() + 1e-9)
    return wet.astype(np.float32), kind


def add_noise(x: np.ndarray, rng: np.random.Generator, rate: int) -> tuple[np.ndarray, str]:
    """Mix real or generated noise at 5–30 dB SNR."""
    noise = _pick_real(rng, "noise", rate)
    kind = "real_noise"
    if noise is None or len(noise) < rate // 4 or not np.any(noise):
        noise, kind = generated_noise(rng, len(x)), "gen_noise"
    else:
        start = int(rng.integers(max(1, len(noise) - len(x))))
        noise = np.resize(noise[start:], len(x))
    snr = rng.uniform(5.0, 30.0)
    p_speech = np.mean(x**2) + 1e-10
    p_noise = np.mean(noise**2) + 1e-10
    y = x + noise * np.sqrt(p_speech / (p_noise * 10 ** (snr / 10)))
    peak = np.abs(y).max()
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32), f"{kind}@{snr:.0f}dB"


def augment(
    x: np.ndarray, rng: np.random.Generator, rate: int, p: float = 0.25
) -> tuple[np.ndarray, str]:
    """With probability p, add a room, noise or both; returns (samples, description or "clean")."""
    if rng.random() >= p:
        return x, "clean"
    choice = rng.integers(3)
    tags = []
    if choice in (0, 2):
        x, tag = reverb(x, rng, rate)
        tags.append(tag)
    if choice in (1, 2):
        x, tag = add_noise(x, rng, rate)
        tags.append(tag)
    return x, "+".join(tags)
