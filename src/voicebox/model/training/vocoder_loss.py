"""The vocoder's reconstruction loss: multi-resolution STFT plus mel L1 (training only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..features import log_mel

STFT_RESOLUTIONS = ((256, 64), (512, 128), (1024, 256), (2048, 512))


def _mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)
    return spec.abs().clamp(min=1e-5)


def stft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, averaged."""
    total = pred.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        p, t = _mag(pred, n_fft, hop), _mag(target, n_fft, hop)
        sc = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp(min=1e-5)
        total = total + sc + F.l1_loss(torch.log(p), torch.log(t))
    return total / len(STFT_RESOLUTIONS)


def vocoder_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """Multi-resolution STFT loss plus mel L1 (weight 2) on a (mel, wave) batch; returns (loss, logs)."""
    pred = model(batch["mel"])
    with torch.autocast(pred.device.type, enabled=False):
        pred = pred.float()
        target = batch["wave"].float()[:, : pred.shape[1]]
        mr = stft_loss(pred, target)
        mel_l1 = F.l1_loss(log_mel(pred), log_mel(target))
        loss = mr + 2.0 * mel_l1
    return loss, {"stft": float(mr.detach()), "mel_l1": float(mel_l1.detach())}
