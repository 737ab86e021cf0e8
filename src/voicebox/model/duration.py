"""Phone-duration model: a small Transformer regressing log durations of masked phones.

Voicebox's regression variant: phone ids plus the context's durations (masked where they must be
predicted) → log(1 + frames) per phone, L1 loss on the masked phones only. Infilling a sentence then
keeps the speaker's own timing around the edit and predicts only the new phones.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import DurationConfig
from .network import SkipTransformer
from .phones import N_PHONES


class DurationNet(nn.Module):
    """Predicts log(1 + frames) for each phone from phones and the partly masked context durations."""

    def __init__(self, cfg: DurationConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.phone_emb = nn.Embedding(N_PHONES, cfg.phone_dim, padding_idx=0)
        self.in_proj = nn.Linear(cfg.phone_dim + 2, cfg.d_model)
        self.encoder = SkipTransformer(
            cfg.d_model,
            cfg.n_layers,
            cfg.n_heads,
            cfg.ff_mult,
            cfg.dropout,
            cfg.conv_pos_kernel,
            cfg.conv_pos_groups,
        )
        self.out = nn.Linear(cfg.d_model, 1)

    def forward(
        self,
        phones: torch.Tensor,
        context_log_dur: torch.Tensor,
        known: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log durations [B, N] for phones [B, N], context log durations [B, N] (used where known [B, N]
        is True) and mask [B, N] (True = real phone)."""
        ctx = context_log_dur * known
        h = torch.cat([self.phone_emb(phones), ctx[..., None], known[..., None].float()], dim=-1)
        return self.out(self.encoder(self.in_proj(h), mask))[..., 0]


def phone_span_mask(
    phone_mask: torch.Tensor, cfg: DurationConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Phones to predict [B, N]: a contiguous span of mask_min–mask_max of each item's phones, or all of
    them when the context is dropped (prob p_drop_context)."""
    b, n = phone_mask.shape
    lengths = phone_mask.sum(1)
    frac = cfg.mask_min + (cfg.mask_max - cfg.mask_min) * torch.rand(b, generator=generator)
    drop = torch.rand(b, generator=generator) < cfg.p_drop_context
    pos = torch.arange(n)
    out = torch.zeros(b, n, dtype=torch.bool)
    for i in range(b):
        m = int(lengths[i])
        k = m if drop[i] else max(1, min(m, round(float(frac[i]) * m)))
        start = int(torch.randint(0, m - k + 1, (1,), generator=generator))
        out[i] = (pos >= start) & (pos < start + k)
    return out.to(phone_mask.device) & phone_mask


def duration_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 loss on log(1 + frames) of the masked phones of one collated batch → (loss, logs)."""
    cfg: DurationConfig = model.cfg if hasattr(model, "cfg") else model.module.cfg
    phones, durations, phone_mask = batch["phones"], batch["durations"], batch["phone_mask"]
    target = torch.log1p(durations.float())
    predict = phone_span_mask(phone_mask.cpu(), cfg, generator).to(phones.device)
    known = phone_mask & ~predict
    pred = model(phones, target, known, phone_mask)
    weight = predict.float()
    err = (pred.float() - target).abs() * weight
    loss = err.sum() / weight.sum().clamp(min=1.0)
    frames_err = (
        (torch.expm1(pred.detach().float()).clamp(min=0) - durations).abs() * weight
    ).sum()
    return loss, {"frame_mae": float(frames_err / weight.sum().clamp(min=1.0))}


@torch.no_grad()
def predict_durations(
    model: DurationNet,
    phones: torch.Tensor,
    context_durations: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
    scale: float = 1.0,
) -> torch.Tensor:
    """Integer frames per phone [N] for phone ids [N]; phones where known [N] is True keep their context
    duration exactly, the others are predicted (times `scale`, at least one frame)."""
    n = phones.shape[0]
    if context_durations is None or known is None:
        context_durations = torch.zeros(n, dtype=torch.long)
        known = torch.zeros(n, dtype=torch.bool)
    dev = next(model.parameters()).device
    ctx = torch.log1p(context_durations.float())[None].to(dev)
    pred = model(phones[None].to(dev), ctx, known[None].to(dev), None)[0].float().cpu()
    frames = torch.clamp(torch.round(torch.expm1(pred) * scale), min=1).long()
    return torch.where(known, context_durations.long(), frames)
