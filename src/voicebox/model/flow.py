"""Optimal-transport conditional flow matching (OT-CFM) with Voicebox's masking and guidance dropout.

The whole flow lives here: the training loss and, for sampling, the ODE from noise to mel (Euler or
midpoint) and classifier-free guidance.

Training sees x_t = (1 − (1 − σ)t)·x0 + t·x1 between noise x0 and the normalised mel x1, and learns
u = x1 − (1 − σ)·x0 on the frames it must generate; dropping the whole context (and sometimes the phones)
teaches the unconditional field that classifier-free guidance needs at sampling time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import env
from ..errors import InputError
from .config import GUIDANCE, SWAY, ModelConfig
from .network import bf16_supported
from .phones import PHONE_ID

NULL_ID = PHONE_ID["<null>"]
SOLVERS = ("euler", "midpoint")
Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    mask_min–mask_max of its real frames; with prob p_short_span instead a contiguous span of
    short_min–short_max of them (an edit's word or two); always within the real frames."""
    b, t = frame_mask.shape
    dev = frame_mask.device
    lengths = frame_mask.sum(1)
    frac = cfg.mask_min + (cfg.mask_max - cfg.mask_min) * torch.rand(b, generator=generator)
    use_span = torch.rand(b, generator=generator) < cfg.p_span
    if cfg.p_short_span > 0:  # drawn only when asked, so older configs see the same masks
        short = torch.rand(b, generator=generator) < cfg.p_short_span
        short_frac = cfg.short_min + (cfg.short_max - cfg.short_min) * torch.rand(
            b, generator=generator
        )
        frac = torch.where(short, short_frac, frac)
        use_span = use_span | short
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


# ---------------------------------------------------------------- sampling


def time_grid(steps: int, sway: float = 0.0, device: torch.device | None = None) -> torch.Tensor:
    """steps + 1 times from 0 to 1. `sway` < 0 crowds them near t = 0, where the field lays out the
    utterance (F5-TTS's sway sampling: t + s (cos(πt/2) − 1 + t)); 0 spaces them evenly."""
    t = torch.linspace(0.0, 1.0, steps + 1, device=device)
    return t + sway * (torch.cos(torch.pi / 2 * t) - 1 + t)


def sway() -> float:
    """The time grid's sway: SWAY, or VOICEBOX_SWAY where set (-1 to 1, where the grid rises)."""
    raw = env("sway", str(SWAY)) or "0"
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"VOICEBOX_SWAY must be a number, not {raw!r}") from None
    if not -1 <= value <= 1:
        raise InputError(f"VOICEBOX_SWAY must be between -1 and 1, not {value}")
    return value


def solve(
    field: Field, x0: torch.Tensor, nfe: int = 16, solver: str = "midpoint", sway: float = 0.0
) -> torch.Tensor:
    """Integrate dx/dt = field(x, t) from t=0 to 1 with `nfe` function evaluations (Euler or
    midpoint) on time_grid(sway)."""
    if solver not in SOLVERS:
        raise InputError(f"unknown ODE solver {solver!r}: choose euler or midpoint")
    if nfe < 1:
        raise InputError("nfe must be at least 1")
    steps = nfe if solver == "euler" else max(1, nfe // 2)
    ts = time_grid(steps, sway, x0.device)
    x = x0
    for i in range(steps):
        t, h = ts[i], ts[i + 1] - ts[i]
        if solver == "euler":
            x = x + h * field(x, t)
        else:
            mid = x + 0.5 * h * field(x, t)
            x = x + h * field(mid, t + 0.5 * h)
    return x


def guided_field(
    model: nn.Module,
    context: torch.Tensor,
    frame_phones: torch.Tensor,
    mask: torch.Tensor | None,
    guidance: float,
    span: tuple[int, int] | None = None,
) -> Field:
    """The classifier-free-guided vector field v_c + α(v_c − v_u), conditional and unconditional
    (no context, null phones). Guidance is needed at every step: guiding only t < 0.75 (or 0.5)
    raised WER from 0.166 to 0.194 (0.242) on 10 eval speakers.

    With `span` (first, end frame of what is generated) the unconditional branch sees only those
    frames and the context keeps the conditional field: a zero-shot prompt then costs one pass, not
    two. Measured on 12 eval speakers × 2 sentences (session 6): WER 0.094 vs 0.090, similarity
    0.705 vs 0.694, DNSMOS 3.10 vs 3.07; zero-shot RTF at 2 threads 0.493 -> 0.475 (44 calls).
    Without it both branches run over every frame in one batched pass."""
    b = context.shape[0]

    def plain(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x, t.expand(b), context, frame_phones, mask)

    if guidance == 0:
        return plain
    if span is not None:
        lo, hi = span
        ctx_u = torch.zeros_like(context[:, lo:hi])
        phones_u = torch.full_like(frame_phones[:, lo:hi], NULL_ID)
        mask_u = mask[:, lo:hi] if mask is not None else None

        def trimmed(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            cond = plain(x, t)
            uncond = model(x[:, lo:hi], t.expand(b), ctx_u, phones_u, mask_u)
            out = cond.clone()
            out[:, lo:hi] = cond[:, lo:hi] + guidance * (cond[:, lo:hi] - uncond)
            return out

        return trimmed
    real = mask if mask is not None else torch.ones_like(frame_phones, dtype=torch.bool)
    ctx2 = torch.cat([context, torch.zeros_like(context)])
    phones2 = torch.cat([frame_phones, torch.where(real, NULL_ID, frame_phones)])
    mask2 = torch.cat([mask, mask]) if mask is not None else None

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = model(torch.cat([x, x]), t.expand(2 * b), ctx2, phones2, mask2)
        cond, uncond = v[:b], v[b:]
        return cond + guidance * (cond - uncond)

    return guided


@torch.no_grad()
def generate_mel(
    model: nn.Module,
    cfg: ModelConfig,
    frame_phones: torch.Tensor,
    context_mel: torch.Tensor,
    gen_mask: torch.Tensor,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    solver: str = "midpoint",
    seed: int | None = None,
) -> torch.Tensor:
    """Log-mel [T, n_mels] whose gen_mask [T] frames are generated and whose other frames are
    context_mel's, bit for bit; frame_phones [T] give the phone of every frame."""
    if frame_phones.shape[0] != context_mel.shape[0] or gen_mask.shape[0] != context_mel.shape[0]:
        raise InputError("frame phones, context mel and mask must have the same number of frames")
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    dev = next(model.parameters()).device
    x1_ctx = normalize(context_mel.float(), cfg) * (~gen_mask)[:, None]
    where = gen_mask.nonzero().flatten()
    span = (int(where[0]), int(where[-1]) + 1) if where.numel() else None
    field = guided_field(
        model, x1_ctx[None].to(dev), frame_phones[None].to(dev), None, float(guidance), span
    )
    x0 = torch.randn((1, *context_mel.shape), generator=generator).to(dev)
    fast = bf16_supported(dev) and env("bf16", "1") != "0"  # trained under bf16 autocast too
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=fast):
        x1 = solve(field, x0, nfe, solver, sway())
    mel = denormalize(x1[0].float().cpu(), cfg)
    return torch.where(gen_mask[:, None], mel, context_mel.float())
