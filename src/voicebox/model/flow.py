"""Optimal-transport conditional flow matching (OT-CFM) with Voicebox's masking and guidance dropout.

Training sees x_t = (1 − (1 − σ)t)·x0 + t·x1 between noise x0 and the normalised mel x1, and learns
u = x1 − (1 − σ)·x0 on the frames it must generate; dropping the whole context (and sometimes the phones)
teaches the unconditional field that classifier-free guidance needs at sampling time.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .phones import PHONE_ID

NULL_ID = PHONE_ID["<null>"]


def normalize(mel: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Log-mel → the model's zero-mean, unit-ish space."""
    return (mel - cfg.mel_mean) / cfg.mel_std


def denormalize(x: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """The model's space → log-mel."""
    return x * cfg.mel_std + cfg.mel_mean


def span_or_random_mask(
    frame_mask: torch.Tensor, cfg: ModelConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Frames to generate [B, T]: per item a contiguous span (prob p_span) or random frames, covering
    mask_min–mask_max of its real frames; always within the real frames."""
    b, t = frame_mask.shape
    dev = frame_mask.device
    lengths = frame_mask.sum(1)
    frac = cfg.mask_min + (cfg.mask_max - cfg.mask_min) * torch.rand(b, generator=generator)
    use_span = torch.rand(b, generator=generator) < cfg.p_span
    pos = torch.arange(t)
    out = torch.zeros(b, t, dtype=torch.bool)
    for i in range(b):
        n = int(lengths[i])
        k = max(1, min(n, round(float(frac[i]) * n)))
        if use_span[i]:
            start = int(torch.randint(0, n - k + 1, (1,), generator=generator))
            out[i] = (pos >= start) & (pos < start + k)
        else:
            chosen = torch.randperm(n, generator=generator)[:k]
            out[i, chosen] = True
    return out.to(dev) & frame_mask


def cfm_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked OT-CFM loss on one collated batch (mel, frame_phones, frame_mask) → (loss, logs)."""
    cfg: ModelConfig = model.cfg if hasattr(model, "cfg") else model.module.cfg
    mel, frame_phones, frame_mask = batch["mel"], batch["frame_phones"], batch["frame_mask"]
    dev = mel.device
    b = mel.shape[0]
    x1 = normalize(mel, cfg) * frame_mask[..., None]
    gen_mask = span_or_random_mask(frame_mask.cpu(), cfg, generator).to(dev)
    # Phones are only dropped together with the context: that pair is the unconditional field guidance
    # subtracts at sampling time; the context alone is dropped more often (pure TTS).
    drop_phn = (torch.rand(b, generator=generator) < cfg.p_drop_phones).to(dev)
    drop_ctx = (torch.rand(b, generator=generator) < cfg.p_drop_context).to(dev) | drop_phn
    # Without a context every real frame is generated, so it is trained on every real frame.
    gen_mask = gen_mask | (drop_ctx[:, None] & frame_mask)
    context = x1 * (~gen_mask)[..., None]
    phones = torch.where(drop_phn[:, None] & frame_mask, NULL_ID, frame_phones)

    x0 = torch.randn(x1.shape, generator=generator).to(dev)
    t = torch.rand(b, generator=generator).to(dev)
    tt = t[:, None, None]
    xt = (1 - (1 - cfg.sigma_min) * tt) * x0 + tt * x1
    target = x1 - (1 - cfg.sigma_min) * x0
    pred = model(xt, t, context, phones, frame_mask)
    weight = gen_mask[..., None].float()
    err = (pred.float() - target) ** 2 * weight
    loss = err.sum() / (weight.sum() * x1.shape[-1]).clamp(min=1.0)
    return loss, {"masked_frac": float(gen_mask.sum() / frame_mask.sum().clamp(min=1))}
