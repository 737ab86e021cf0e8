"""Log-mel features: the space the Voicebox model generates in and the vocoder inverts.

torch is imported by the functions that compute features, not by the module: the aligner and the
edit path take MEL and frames_for from here, and importing torch costs ~200 MB per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..audio import Audio

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class MelConfig:
    """16 kHz audio, 62.5 frames per second, 80 log-mel bins (natural log, floor 1e-5)."""

    rate: int = 16_000
    n_fft: int = 1024
    hop: int = 256
    win: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0

    @property
    def fps(self) -> float:
        return self.rate / self.hop


MEL = MelConfig()


@functools.cache
def _filterbank(cfg: MelConfig) -> torch.Tensor:
    import librosa
    import torch

    fb = librosa.filters.mel(
        sr=cfg.rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    return torch.from_numpy(fb.astype(np.float32))


@functools.cache
def _window(win: int) -> torch.Tensor:
    import torch

    return torch.hann_window(win)


def frames_for(samples: int, cfg: MelConfig = MEL) -> int:
    """Number of mel frames for a waveform of `samples` samples (centre-padded STFT)."""
    return samples // cfg.hop + 1


def log_mel(wave: torch.Tensor | np.ndarray, cfg: MelConfig = MEL) -> torch.Tensor:
    """Log-mel of a mono waveform [n] or batch [b, n] at cfg.rate: returns [.., frames, n_mels]."""
    import torch

    x = torch.as_tensor(
        np.asarray(wave) if isinstance(wave, np.ndarray) else wave, dtype=torch.float32
    )
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]
    spec = torch.stft(
        x,
        cfg.n_fft,
        hop_length=cfg.hop,
        win_length=cfg.win,
        window=_window(cfg.win).to(x.device),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    mel = torch.matmul(_filterbank(cfg).to(x.device), spec)
    out = torch.log(torch.clamp(mel, min=1e-5)).transpose(1, 2)
    return out[0] if squeeze else out


def audio_to_mel(audio: Audio, cfg: MelConfig = MEL) -> torch.Tensor:
    """Log-mel [frames, n_mels] of any Audio (downmixed and resampled to cfg.rate)."""
    x = (
        audio.to_rate(cfg.rate).mono()
        if audio.rate != cfg.rate or audio.channels > 1
        else audio.samples[0]
    )
    return log_mel(np.ascontiguousarray(x), cfg)


def warp_mel(mel: np.ndarray, alpha: float) -> np.ndarray:
    """Warp a log-mel [T, 80] along frequency: the content at f Hz moves to alpha·f (a new tract length).
    Makes pseudo-speakers for training and re-voices readings towards a prompt (cross-lingual)."""
    import librosa

    fb = _filterbank(MEL).numpy()
    freqs = np.linspace(0, MEL.rate / 2, fb.shape[1])
    centres = (fb * freqs).sum(axis=1) / np.maximum(fb.sum(axis=1), 1e-9)
    mel_pos = librosa.hz_to_mel(centres)
    source = librosa.hz_to_mel(np.clip(centres / alpha, centres[0], centres[-1]))
    idx = np.interp(source, mel_pos, np.arange(len(centres)))
    lo = np.floor(idx).astype(int).clip(0, len(centres) - 1)
    hi = np.minimum(lo + 1, len(centres) - 1)
    w = (idx - lo).astype(np.float32)
    return (mel[:, lo] * (1 - w) + mel[:, hi] * w).astype(mel.dtype)
