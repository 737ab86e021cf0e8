"""Mel to waveform: a small Vocos-style vocoder (ConvNeXt backbone + iSTFT head) and Griffin-Lim.

The network predicts STFT magnitude and phase per mel frame and inverts them with an overlap-add
iSTFT, so it runs at frame rate (cheap on a CPU) instead of sample rate like HiFi-GAN.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .features import MEL, _filterbank

log = logging.getLogger(__name__)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv, LayerNorm, pointwise MLP, layer scale, residual (Vocos / ConvNeXt)."""

    def __init__(self, dim: int, hidden: int, kernel: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.scale = nn.Parameter(torch.full((dim,), 1.0 / 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, T]
        y = self.dwconv(x).transpose(1, 2)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class ISTFTHead(nn.Module):
    """Linear projection to log-magnitude and phase, then a centred overlap-add inverse STFT."""

    def __init__(self, dim: int, n_fft: int = 1024, hop: int = 256) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.proj = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, T, C] -> wave [B, T*hop]
        with torch.autocast(x.device.type, enabled=False):
            h = self.proj(x.float()).transpose(1, 2)
            log_mag, phase = h.chunk(2, dim=1)
            mag = torch.exp(log_mag).clamp(max=1e2)
            spec = torch.polar(mag, phase)  # [B, F, T]
            return self._istft(spec)

    def _istft(self, spec: torch.Tensor) -> torch.Tensor:
        b, _, t = spec.shape
        frames = torch.fft.irfft(spec, self.n_fft, dim=1) * self.window[None, :, None]
        size = (t - 1) * self.hop + self.n_fft
        y = F.fold(frames, (1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop))[:, 0, 0]
        env = F.fold(
            self.window.square()[None, :, None].expand(1, -1, t),
            (1, size),
            kernel_size=(1, self.n_fft),
            stride=(1, self.hop),
        )[0, 0, 0]
        start = self.n_fft // 2  # frame i is centred on sample i*hop, as in features.log_mel
        y = y[:, start : start + t * self.hop]
        return y / env[start : start + t * self.hop].clamp(min=1e-8)


class Vocoder(nn.Module):
    """Vocos-style vocoder: mel [B, T, 80] -> waveform [B, T*256] at 16 kHz (~1.7 M parameters)."""

    def __init__(
        self,
        n_mels: int = MEL.n_mels,
        dim: int = 192,
        hidden: int = 576,
        layers: int = 6,
        kernel: int = 7,
        n_fft: int = MEL.n_fft,
        hop: int = MEL.hop,
    ) -> None:
        super().__init__()
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden, kernel) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = ISTFTHead(dim, n_fft, hop)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.embed(mel.transpose(1, 2))
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x.transpose(1, 2)))


def griffin_lim(mel: torch.Tensor | np.ndarray, iterations: int = 32) -> np.ndarray:
    """Invert a log-mel [T, 80] to 16 kHz samples [(T-1)*hop] with fast Griffin-Lim (fallback vocoder)."""
    m = torch.as_tensor(np.asarray(mel, dtype=np.float32) if isinstance(mel, np.ndarray) else mel)
    m = m.float().detach().cpu()
    fb = _filterbank(MEL)
    mag = torch.clamp(torch.linalg.pinv(fb) @ torch.exp(m).T, min=0.0)  # [F, T]
    window = torch.hann_window(MEL.win)
    length = (m.shape[0] - 1) * MEL.hop
    gen = torch.Generator().manual_seed(0)
    angles = torch.polar(torch.ones_like(mag), 2 * np.pi * torch.rand(mag.shape, generator=gen))
    prev = torch.zeros_like(angles)
    kw = {"n_fft": MEL.n_fft, "hop_length": MEL.hop, "win_length": MEL.win, "window": window}
    for _ in range(iterations):
        wave = torch.istft(mag * angles, length=length, **kw)
        rebuilt = torch.stft(wave, return_complex=True, **kw)
        angles = rebuilt - 0.99 * prev
        angles = angles / angles.abs().clamp(min=1e-8)
        prev = rebuilt
    wave = torch.istft(mag * angles, length=length, **kw)
    return wave.numpy().astype(np.float32)
