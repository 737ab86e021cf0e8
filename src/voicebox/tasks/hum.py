"""Mains hum: find 50 or 60 Hz and its harmonics by a spectral peak test, and notch them while streaming."""

from __future__ import annotations

import numpy as np
from scipy import signal

MAINS = (50.0, 60.0)
MAX_HARMONIC_HZ = 2_000.0
DETECT_DB = 10.0
"""A hum line must stand this far above the neighbouring spectrum (in one of the first 4 harmonics)."""
NOTCH_DB = 6.0
"""Harmonics of a detected hum that stand this far above their neighbours get a notch."""
Q = 30.0


def _prominence(freqs: np.ndarray, power: np.ndarray, f: float) -> float:
    """Peak level within ±1 Hz of f over the median level 3–12 Hz either side, in dB."""
    near = np.abs(freqs - f)
    peak = power[near <= 1.0]
    ring = power[(near >= 3.0) & (near <= 12.0)]
    if peak.size == 0 or ring.size == 0:
        return 0.0
    return float(10 * np.log10((peak.max() + 1e-20) / (np.median(ring) + 1e-20)))


def detect(samples: np.ndarray, rate: int) -> list[float]:
    """Frequencies (Hz) of the hum lines to notch in [channels, n] samples; empty when there is no hum."""
    x = np.asarray(samples, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    nper = min(len(x), 2 * rate)
    if nper < rate // 2:
        return []
    freqs, power = signal.welch(x, fs=rate, nperseg=nper)
    top = min(MAX_HARMONIC_HZ, 0.45 * rate)
    best: tuple[float, float] | None = None
    for base in MAINS:
        score = [_prominence(freqs, power, base * k) for k in range(1, 5)]
        if max(score) >= DETECT_DB and (best is None or sum(score) > best[1]):
            best = (base, sum(score))
    if best is None:
        return []
    base = best[0]
    lines = [base * k for k in range(1, int(top // base) + 1)]
    return [f for f in lines if _prominence(freqs, power, f) >= NOTCH_DB]


class Notch:
    """A cascade of IIR notches at the given frequencies, keeping filter state across blocks."""

    def __init__(self, freqs: list[float], rate: int, channels: int) -> None:
        sections = [signal.tf2sos(*signal.iirnotch(f, Q, fs=rate)) for f in freqs]
        self.sos = np.concatenate(sections, axis=0)
        self.state = np.zeros((self.sos.shape[0], channels, 2))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """Filter a [channels, n] block, continuing from the previous one."""
        out, self.state = signal.sosfilt(self.sos, block, axis=-1, zi=self.state)
        return out.astype(np.float32)
