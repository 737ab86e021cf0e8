"""A learned bridge from our log-mels to the universal HiFi-GAN's own.

Our features (16 kHz, 64 ms window, 62.5 frames/s) are not what the vocoder was trained on (22.05 kHz,
46 ms window, 86.13 frames/s). The fixed adapter (hifigan.adapt) lines them up in time and level; this
network, fitted on training speech only (model/training/adapter.py), maps the result to the vocoder's
own log-mel of the same audio: a linear context filter plus a small ConvNeXt residual.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import NotReadyError

FILE_NAME = "hifigan_adapter.pt"


class _Block(nn.Module):
    """ConvNeXt block over time (as in Vocos): depthwise conv, LayerNorm, pointwise MLP, residual."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.dw = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, 3 * channels)
        self.down = nn.Linear(3 * channels, channels)
        self.scale = nn.Parameter(torch.full((channels,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        h = self.norm(self.dw(x).transpose(1, 2))
        h = self.down(torch.nn.functional.gelu(self.up(h))) * self.scale
        return x + h.transpose(1, 2)


class MelAdapter(nn.Module):
    """[B, 80, T] fixed-adapted log-mel -> [B, 80, T] the vocoder's log-mel (same frames)."""

    def __init__(
        self, n_mels: int = 80, channels: int = 256, blocks: int = 4, kernel: int = 7
    ) -> None:
        super().__init__()
        self.params = {"n_mels": n_mels, "channels": channels, "blocks": blocks, "kernel": kernel}
        self.linear = nn.Conv1d(n_mels, n_mels, kernel, padding=kernel // 2)
        self.inp = nn.Conv1d(n_mels, channels, kernel, padding=kernel // 2)
        self.blocks = nn.Sequential(*(_Block(channels, kernel) for _ in range(blocks)))
        self.norm = nn.LayerNorm(channels)
        self.out = nn.Conv1d(channels, n_mels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.blocks(self.inp(x)).transpose(1, 2)).transpose(1, 2)
        return x + self.linear(x) + self.out(h)


def save_adapter(net: MelAdapter, path: str | os.PathLike[str], meta: dict) -> Path:
    """The shipped form: fp16 weights, the constructor's arguments and how it was fitted."""
    from .checkpoint import save

    state = {k: v.detach().cpu().half() for k, v in net.state_dict().items()}
    return save({"params": net.params, "state_dict": state, "meta": meta}, path)


def load_adapter(path: str | os.PathLike[str]) -> MelAdapter:
    """The adapter at `path` in eval mode, fp32, no gradients."""
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
        net = MelAdapter(**data["params"])
        net.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    except FileNotFoundError:
        raise NotReadyError(f"HiFi-GAN adapter {path} not found") from None
    except Exception as exc:  # corrupt or foreign files: say which file
        raise NotReadyError(f"HiFi-GAN adapter {path} cannot be read ({exc})") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
