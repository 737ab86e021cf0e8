"""Adversarial training for the vocoder: HiFi-GAN's multi-period and UnivNet/Vocos's
multi-resolution discriminators, and the loss that trains them alongside the generator.

Reconstruction losses alone leave the vocoder's phase smeared (a buzzy, metallic sound that whisper
and DNSMOS both dislike). Discriminators that look at periodic structure in the waveform and at fine
spectral detail are what remove it. Both are slimmed to at most 128 channels so a CPU can train them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..features import log_mel

Features = list[torch.Tensor]


def _conv_stack(
    convs: nn.ModuleList, post: nn.Module, h: torch.Tensor
) -> tuple[torch.Tensor, Features]:
    """Leaky-ReLU convolutions then a 1-channel output conv: (flattened logits, every activation)."""
    feats = []
    for conv in convs:
        h = F.leaky_relu(conv(h), 0.1)
        feats.append(h)
    h = post(h)
    feats.append(h)
    return h.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into [samples / p, p] and runs 2-D convolutions down the time axis."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 64, 128, 128)) -> None:
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            stride = (3, 1) if i < len(channels) - 1 else (1, 1)
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), stride, padding=(2, 0))))
            c_in = c
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:  # x [B, N]
        n = x.shape[-1]
        pad = (-n) % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect")
        return _conv_stack(self.convs, self.post, x.reshape(x.shape[0], 1, -1, self.period))


class ResolutionDiscriminator(nn.Module):
    """2-D convolutions over one STFT magnitude [frames, bins], striding along frequency."""

    def __init__(self, n_fft: int, hop: int, channels: int = 16) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
            ]
        )
        self.post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:  # x [B, N] -> [B, 1, T, F]
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, return_complex=True)
        return _conv_stack(self.convs, self.post, spec.abs().transpose(1, 2).unsqueeze(1))


class Discriminators(nn.Module):
    """Every discriminator, run on one batch of waveforms: (logits, features) per discriminator."""

    def __init__(
        self,
        periods: tuple[int, ...] = (2, 3, 5, 7, 11),
        resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (256, 64)),
    ) -> None:
        super().__init__()
        self.periods = nn.ModuleList(PeriodDiscriminator(p) for p in periods)
        self.resolutions = nn.ModuleList(ResolutionDiscriminator(n, h) for n, h in resolutions)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, Features]]:
        return [d(x) for d in self.periods] + [d(x) for d in self.resolutions]


def discriminator_hinge(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Hinge loss pushing real logits above +1 and generated ones below -1, summed over discriminators."""
    return sum(
        (F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)),
        torch.zeros(()),
    )


def generator_hinge(fake: list[torch.Tensor]) -> torch.Tensor:
    """The generator's side of the hinge loss: generated logits above +1."""
    return sum((F.relu(1 - f).mean() for f in fake), torch.zeros(()))


def feature_matching(real: list[Features], fake: list[Features]) -> torch.Tensor:
    """L1 between the discriminators' hidden activations on real and generated audio."""
    total = torch.zeros(())
    for rf, ff in zip(real, fake, strict=True):
        for r, f in zip(rf, ff, strict=True):
            total = total + (r.detach() - f).abs().mean()
    return total


class AdversarialVocoderLoss:
    """The vocoder's training loss with discriminators (the Vocos recipe: 45 × mel L1 + hinge GAN +
    feature matching).

    Called like `vocoder_loss(model, batch)`, each call first takes one optimiser step of the
    discriminators on (real, generated) audio, then returns the generator's loss for the trainer to
    step on. The discriminators have their own AdamW and learning-rate schedule, saved with
    `state_dict()` into the training state so a run resumes where it stopped.
    """

    MEL_WEIGHT = 45.0

    def __init__(
        self,
        lr: float,
        betas: tuple[float, float],
        schedule: Callable[[int], float],
        device: torch.device,
        distributed: bool = False,
        grad_clip: float = 10.0,
    ) -> None:
        self.disc = Discriminators().to(device)
        self.train_net: nn.Module = self.disc
        if distributed:
            self.train_net = nn.parallel.DistributedDataParallel(
                self.disc, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.opt = torch.optim.AdamW(self.disc.parameters(), lr=lr, betas=betas)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedule)
        self.grad_clip = grad_clip

    def __call__(
        self, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(batch["mel"])
        with torch.autocast(pred.device.type, enabled=False):  # GANs are touchy: fp32 here
            pred = pred.float()
            target = batch["wave"].float()[:, : pred.shape[1]]
            d_loss = self._discriminator_step(target, pred.detach())
            for p in self.disc.parameters():
                p.requires_grad_(False)
            try:  # the plain module: no gradients for the discriminators, so no DDP sync here
                with torch.no_grad():
                    real = self.disc(target)
                fake = self.disc(pred)
            finally:
                for p in self.disc.parameters():
                    p.requires_grad_(True)
            adv = generator_hinge([logits for logits, _ in fake])
            fm = feature_matching([f for _, f in real], [f for _, f in fake])
            mel_l1 = F.l1_loss(log_mel(pred), log_mel(target))
            loss = adv + fm + self.MEL_WEIGHT * mel_l1
        logs = {
            "mel_l1": float(mel_l1.detach()),
            "gen_adv": float(adv.detach()),
            "feature_matching": float(fm.detach()),
            "disc": d_loss,
        }
        return loss, logs

    def _discriminator_step(self, target: torch.Tensor, fake: torch.Tensor) -> float:
        outs = self.train_net(torch.cat([target, fake]))
        n = target.shape[0]
        real_logits = [logits[:n] for logits, _ in outs]
        fake_logits = [logits[n:] for logits, _ in outs]
        loss = discriminator_hinge(real_logits, fake_logits)
        self.opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):  # the trainer skips this batch too; keep the weights finite
            return float("nan")
        loss.backward()
        nn.utils.clip_grad_norm_(self.disc.parameters(), self.grad_clip)
        self.opt.step()
        self.sched.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        """Discriminator weights, optimiser and schedule (for the training state, not the export)."""
        return {
            "disc": self.disc.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from `state_dict()`'s output."""
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
