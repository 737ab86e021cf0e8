"""Model and training settings as dataclasses, loaded from one YAML file per model size."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

PARTS = ("audio", "duration", "vocoder")


GUIDANCE = 1.5
"""Classifier-free guidance strength unless asked otherwise. On held-out synthetic voices
(bench/model_sweep.py, 12 sentences) 1.0 / 1.5 / 2.0 gave WER 0.098 / 0.091 / 0.084 and similarity
0.712 / 0.700 / 0.683, and 1.0 was kept. On real unseen voices (bench/zero_shot.py's first 22 eval
speakers x 2 sentences, SWAY -1) 1.0 / 1.5 / 2.0 give WER 0.090 / 0.064 / 0.054, similarity
0.722 / 0.715 / 0.709, DNSMOS 3.167 / 3.165 / 3.153: 1.5 buys the words for little of the voice."""
SWAY = -1.0
"""Sway of the ODE's time grid (flow.time_grid): more of the steps early, where the utterance is laid
out. On the first 22 eval speakers x 2 sentences (bench/zero_shot.py, guidance 1.0, NFE 16) sway
0 / -0.5 / -1 gave WER 0.101 / 0.111 / 0.090, similarity 0.723 / 0.725 / 0.722 and DNSMOS
3.137 / 3.160 / 3.167. VOICEBOX_SWAY overrides it."""
ZERO_SHOT_PAUSE = 0.48
"""Seconds of pause, at least, between a zero-shot prompt and the new sentence (the prompt's own
closing pause counts; the pause is generated but not returned). Without one the new sentence ran
on from the prompt's last word, and its first words were the ones misheard: on 10 eval speakers
(bench/zero_shot.py's first 10, 2 sentences each) WER 0.166 with none, 0.152 / 0.104 / 0.156 / 0.133
at 0.32 / 0.48 / 0.64 / 0.88 s; on the next 12 speakers 0.207 with none, 0.180 at 0.48 s
(similarity 0.677 / 0.676). VOICEBOX_ZERO_SHOT_PAUSE overrides it."""
DURATION_SCALE = 1.15
"""Predicted phone lengths are stretched by this much unless asked otherwise. The duration model is
calibrated (actual/predicted speech frames 1.03 on held-out voices), but the audio model speaks
much more clearly with a little more time per phone: WER 0.30 at 1.0, 0.098 at 1.15, 0.091 at 1.3."""


@dataclass
class ModelConfig:
    """The audio model: a Transformer predicting the flow-matching vector field over log-mel frames."""

    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    ff_mult: int = 4
    phone_dim: int = 64
    conv_pos_kernel: int = 31
    conv_pos_groups: int = 16
    dropout: float = 0.0
    n_mels: int = 80
    # flow matching (OT-CFM) and its masking / classifier-free-guidance recipe
    sigma_min: float = 1e-4
    mel_mean: float = -5.0
    mel_std: float = 2.5
    p_span: float = 0.7
    mask_min: float = 0.7
    mask_max: float = 1.0
    # Editing masks a word or two inside seconds of context: a share of the items get a short span of
    # short_min–short_max of their frames instead (0 keeps the paper's 70–100 % recipe only).
    p_short_span: float = 0.0
    short_min: float = 0.03
    short_max: float = 0.25
    p_drop_context: float = 0.3  # whole context dropped (pure TTS)
    p_drop_phones: float = 0.1  # phones and context dropped together (the unconditional field)


@dataclass
class DurationConfig:
    """The phone-duration regressor: phones plus partly masked context durations → log durations."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 2
    ff_mult: int = 4
    phone_dim: int = 64
    conv_pos_kernel: int = 15
    conv_pos_groups: int = 16
    dropout: float = 0.1
    mask_min: float = 0.1
    mask_max: float = 1.0
    p_drop_context: float = 0.3


@dataclass
class VocoderConfig:
    """The Vocos-style vocoder; fields are passed to model.vocoder.Vocoder as keyword arguments."""

    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """One part's optimisation: batch, schedule, EMA, checkpoints and logging."""

    batch_size: int = 8
    max_frames: int = 400
    lr: float = 5e-4
    min_lr_ratio: float = 0.05
    warmup_steps: int = 500
    total_steps: int = 10_000
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    bf16: bool = True
    threads: int = 1
    num_workers: int = 0
    seed: int = 0
    log_every: int = 50
    eval_every: int = 0
    eval_batches: int = 4
    checkpoint_every: int = 500
    held_out_speakers: list[str] = field(default_factory=list)
    # How often each corpus source is drawn relative to its size (1 when absent; a warped copy counts
    # as its original's source), e.g. {train_speechocean762: 0.15}: see configs/real-native.yaml.
    source_weights: dict[str, float] = field(default_factory=dict)
    # vocoder only: train against discriminators (model/discriminators.py)
    adversarial: bool = False


@dataclass
class Config:
    """Everything one model size needs: the three networks and how to train each."""

    model: ModelConfig = field(default_factory=ModelConfig)
    duration: DurationConfig = field(default_factory=DurationConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    train: dict[str, TrainConfig] = field(
        default_factory=lambda: {part: TrainConfig() for part in PARTS}
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, suitable for YAML and for storing inside checkpoints."""
        out = dataclasses.asdict(self)
        out["vocoder"] = out["vocoder"]["params"]
        for part in out["train"].values():
            part["betas"] = list(part["betas"])
        return out


def _build(cls: type, data: dict[str, Any] | None, where: str) -> Any:  # noqa: ANN401
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown setting(s) in {where}: {', '.join(unknown)}")
    if "betas" in data:
        data["betas"] = tuple(data["betas"])
    return cls(**data)


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from plain data (a parsed YAML file or a checkpoint's stored config)."""
    if not isinstance(data, dict):
        raise InputError(
            "model config must be a mapping with model/duration/vocoder/train sections"
        )
    unknown = sorted(set(data) - {"model", "duration", "vocoder", "train"})
    if unknown:
        raise InputError(f"unknown section(s) in model config: {', '.join(unknown)}")
    train_data = data.get("train") or {}
    shared = {k: v for k, v in train_data.items() if k not in PARTS}
    train = {
        part: _build(TrainConfig, {**shared, **(train_data.get(part) or {})}, f"train.{part}")
        for part in PARTS
    }
    vocoder = data.get("vocoder") or {}
    return Config(
        model=_build(ModelConfig, data.get("model"), "model"),
        duration=_build(DurationConfig, data.get("duration"), "duration"),
        vocoder=VocoderConfig(params=dict(vocoder)),
        train=train,
    )


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys from "section.key=value" strings (the value parsed as YAML), e.g.
    "train.vocoder.adversarial=true" or "train.vocoder.betas=[0.8, 0.9]"; returns `data`."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        names = key.strip().split(".")
        if not sep or not all(names):
            raise InputError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise InputError(f"--set {item!r}: the value is not valid YAML") from None
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        node = data
        for name in names[:-1]:
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise InputError(f"--set {item!r}: {name} is a setting, not a section")
            node = child
        node[names[-1]] = value
    return data


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Config:
    """Read a model config YAML; settings under `train:` apply to every part unless a part overrides.
    `overrides` ("train.vocoder.lr=2e-4", ...) change single settings without a new file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"config file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"config file {p} must be a mapping with model/duration/vocoder/train")
    return from_dict(apply_overrides(data, list(overrides or [])))


def dump_config(config: Config) -> str:
    """YAML text of a config (stored next to checkpoints so a run can be repeated)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
