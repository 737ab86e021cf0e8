"""The Voicebox audio network: a U-Net-skipped Transformer that predicts the flow-matching vector field.

Input per frame = noisy mel x_t ⊕ masked context mel ⊕ frame-aligned phone embedding; the flow time is a
sinusoidal embedding through an MLP, added to every frame and
driving adaptive layer norms (scale and shift per layer). Positions come from a convolutional positional
embedding and an ALiBi attention bias, so the model carries over to lengths it never saw in training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .phones import N_PHONES


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 autocast runs natively here (AVX-512 BF16/AMX CPUs, recent GPUs): the network
    trains and samples in it, about 2.8× faster than fp32 on this machine's CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi head slopes (geometric, as in Press et al.), one per head."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        slopes = power_of_two(n_heads)
    else:
        closest = 2 ** math.floor(math.log2(n_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def attention_bias(
    slopes: torch.Tensor, key_mask: torch.Tensor | None, length: int
) -> torch.Tensor:
    """Float attention bias [B or 1, H, T, T]: symmetric ALiBi distance penalty, −inf on padded keys."""
    pos = torch.arange(length, device=slopes.device, dtype=torch.float32)
    dist = (pos[None, :] - pos[:, None]).abs()
    bias = -slopes[:, None, None] * dist[None]  # [H, T, T]
    bias = bias[None]
    if key_mask is not None:
        pad = torch.zeros(key_mask.shape, dtype=torch.float32, device=key_mask.device)
        pad = pad.masked_fill(~key_mask, float("-inf"))
        bias = bias + pad[:, None, None, :]
    return bias


class Attention(nn.Module):
    """Multi-head self-attention through scaled_dot_product_attention with a float bias."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"d_model {dim} is not divisible by n_heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attend over x [B, T, D] with bias broadcastable to [B, H, T, T]."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm Transformer layer: attention then a GELU feed-forward, both residual. With a
    conditioning vector, the norms are adaptive (scale and shift from it), which lets the flow time
    rescale features as the vector field requires."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float, cond: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=not cond)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=not cond)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * dim, dim),
        )
        self.drop = nn.Dropout(dropout)
        self.ada = nn.Linear(dim, 4 * dim) if cond else None
        if self.ada is not None:
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """One layer over x [B, T, D], conditioned on c [B, D] when the layer is adaptive."""
        h1, h2 = self.norm1(x), None
        if self.ada is not None and c is not None:
            s1, b1, s2, b2 = self.ada(c)[:, None].chunk(4, dim=-1)
            h1 = h1 * (1 + s1) + b1
        x = x + self.drop(self.attn(h1, bias))
        h2 = self.norm2(x)
        if self.ada is not None and c is not None:
            h2 = h2 * (1 + s2) + b2
        return x + self.drop(self.ff(h2))


class ConvPosition(nn.Module):
    """Convolutional positional embedding (grouped conv + GELU, residual), padded frames kept at zero."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("conv_pos_kernel must be odd")
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=math.gcd(groups, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Add positional information to x [B, T, D]."""
        if mask is not None:
            x = x * mask[..., None]
        y = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out = x + y
        return out * mask[..., None] if mask is not None else out


class SkipTransformer(nn.Module):
    """Transformer stack with U-Net skips: layer i's output is concatenated into layer L-1-i's input."""

    def __init__(
        self,
        dim: int,
        layers: int,
        heads: int,
        ff_mult: int,
        dropout: float,
        kernel: int,
        groups: int,
        cond: bool = False,
    ) -> None:
        super().__init__()
        self.pos = ConvPosition(dim, kernel, groups)
        self.blocks = nn.ModuleList(
            Block(dim, heads, ff_mult, dropout, cond) for _ in range(layers)
        )
        self.skips = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(layers // 2))
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("slopes", alibi_slopes(heads), persistent=False)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Run x [B, T, D] through the stack; mask [B, T] is True on real positions; c [B, D] is the
        conditioning vector of adaptive layers."""
        x = self.pos(x, mask)
        bias = attention_bias(self.slopes, mask, x.shape[1])
        half = len(self.blocks) // 2
        stack: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            if i < half:
                stack.append(x)
            elif i >= len(self.blocks) - half:
                x = self.skips[len(self.blocks) - 1 - i](torch.cat([x, stack.pop()], dim=-1))
            x = block(x, bias, c)
        return self.norm(x)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of flow times t [B] in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class VoiceboxNet(nn.Module):
    """Predicts the vector field v(x_t, t | context mel, frame phones) over normalised log-mel frames."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.phone_emb = nn.Embedding(N_PHONES, cfg.phone_dim, padding_idx=0)
        self.in_proj = nn.Linear(2 * cfg.n_mels + cfg.phone_dim, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.encoder = SkipTransformer(
            d,
            cfg.n_layers,
            cfg.n_heads,
            cfg.ff_mult,
            cfg.dropout,
            cfg.conv_pos_kernel,
            cfg.conv_pos_groups,
            cond=True,
        )
        self.out = nn.Linear(d, cfg.n_mels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor,
        frame_phones: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Vector field [B, T, n_mels] for noisy frames x, times t [B], context [B, T, n_mels]
        (zeros where masked or dropped), frame_phones [B, T] and mask [B, T] (True = real frame)."""
        h = torch.cat([x, context, self.phone_emb(frame_phones)], dim=-1)
        c = self.time_mlp(timestep_embedding(t, self.cfg.d_model))
        return self.out(self.encoder(self.in_proj(h) + c[:, None], mask, F.silu(c)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
