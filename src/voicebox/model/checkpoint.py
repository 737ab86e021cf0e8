"""Where checkpoints live and how they are written and read back.

A checkpoint folder `checkpoints/<name>/` holds `audio.pt`, `duration.pt`, `vocoder.pt` (EMA weights,
fp16, with the config they were built from), `config.yaml`, `COMMAND.md` and `train_log.txt`. Training
also keeps `<part>.state.pt` (full optimiser state for resuming), which is not shipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio import atomic_path
from ..config import env
from ..errors import NotReadyError
from .config import Config, from_dict

DEFAULT_NAME = "small"
log = logging.getLogger(__name__)


def search_roots() -> list[Path]:
    """Folders that may hold `<name>/` checkpoint folders: the repository's, then the package's."""
    roots = [Path(__file__).resolve().parents[3] / "checkpoints"]
    try:
        roots.append(Path(str(resources.files("voicebox") / "data" / "checkpoints")))
    except (ModuleNotFoundError, TypeError):
        pass
    return roots


def find(name: str | os.PathLike[str] | None = None, part: str = "audio") -> Path:
    """The checkpoint folder to use: `name` (a folder path or a name), else VOICEBOX_CHECKPOINT, else
    `small`; raises NotReadyError when none holds `<part>.pt`."""
    chosen = str(name) if name is not None else env("checkpoint") or DEFAULT_NAME
    candidates = [Path(chosen).expanduser()] + [root / chosen for root in search_roots()]
    for folder in candidates:
        if (folder / f"{part}.pt").is_file():
            return folder
    raise NotReadyError(
        f"no trained Voicebox model found ({part}.pt for checkpoint {chosen!r}); train one with "
        "`voicebox train --part audio` or point VOICEBOX_CHECKPOINT at a checkpoint folder"
    )


def save(obj: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """torch.save atomically: readers never see a half-written checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
    return Path(path)


def export(
    path: str | os.PathLike[str],
    part: str,
    config: Config,
    weights: dict[str, torch.Tensor],
    step: int,
    half: bool = True,
) -> Path:
    """Write the shipped form of one part: weights (fp16 unless half=False) plus its config and step."""
    state = {
        k: (v.detach().to("cpu", torch.float16) if half and v.is_floating_point() else v.cpu())
        for k, v in weights.items()
    }
    return save({"part": part, "config": config.to_dict(), "state_dict": state, "step": step}, path)


def build(part: str, config: Config) -> nn.Module:
    """A fresh network for `part` (audio, duration or vocoder) from a config."""
    if part == "audio":
        from .network import VoiceboxNet

        return VoiceboxNet(config.model)
    if part == "duration":
        from .duration import DurationNet

        return DurationNet(config.duration)
    if part == "vocoder":
        try:
            from .vocoder import Vocoder
        except ImportError as exc:
            raise NotReadyError(f"the vocoder module is not available: {exc}") from None
        return Vocoder(**config.vocoder.params)
    raise ValueError(f"unknown model part {part!r}: use audio, duration or vocoder")


def load(
    folder: str | os.PathLike[str], part: str, device: str = "cpu"
) -> tuple[nn.Module, Config]:
    """Rebuild one part from `<folder>/<part>.pt` in eval mode, fp32, with its stored config."""
    path = Path(folder) / f"{part}.pt"
    if not path.is_file():
        raise NotReadyError(
            f"checkpoint {path} not found; train it with `voicebox train --part {part}`"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files: say which file
        raise NotReadyError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    config = from_dict(data["config"])
    model = build(part, config)
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
    )
    return model.to(device).eval(), config


def load_vocoder(
    path: str | os.PathLike[str] | None = None,
) -> Callable[[torch.Tensor | np.ndarray], np.ndarray] | None:
    """The trained vocoder as a function mel [T, 80] -> samples, or None when no checkpoint exists.

    `path` is a vocoder.pt file or a checkpoint folder; by default the checkpoint the model uses.
    """
    try:
        if path is not None and str(path).endswith(".pt"):
            folder = os.path.dirname(os.path.abspath(path))
        else:
            folder = str(find(path, "vocoder"))
        model, _ = load(folder, "vocoder")
    except NotReadyError as exc:
        log.info("no trained vocoder (%s); Griffin-Lim will be used", exc)
        return None

    from .features import MEL

    @torch.inference_mode()
    def vocode(mel: torch.Tensor | np.ndarray) -> np.ndarray:
        m = torch.as_tensor(
            np.asarray(mel, dtype=np.float32) if isinstance(mel, np.ndarray) else mel
        )
        wave = model(m.float().reshape(1, -1, MEL.n_mels))[0]
        return wave.clamp(-1.0, 1.0).numpy().astype(np.float32)

    return vocode
