"""Reference-free speech quality (DNSMOS P.835, the ONNX models inside speechmos).

Tells whether cleaning helped without a clean reference: OVRL (overall), SIG (speech), BAK (noise).
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import numpy as np

from ..audio import Audio
from ..config import threads
from ..errors import EngineError

RATE = 16_000


def _speechmos() -> tuple[Any, Any]:  # (onnxruntime, speechmos.dnsmos)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import onnxruntime as ort
            from speechmos import dnsmos
    except ImportError as exc:
        raise EngineError(f"DNSMOS is not installed ({exc.name}); pip install speechmos") from None
    return ort, dnsmos


@functools.cache
def _session(name: str) -> Any:  # noqa: ANN401 - onnxruntime.InferenceSession
    """One of speechmos' DNSMOS graphs, limited to our thread budget; each loaded when first used
    (the P.808 graph alone holds ~75 MB, and the guard never needs it)."""
    ort, dnsmos = _speechmos()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False  # the arena kept ~200 MB after one window; freed now
    folder = os.path.join(os.path.dirname(os.path.abspath(dnsmos.__file__)), "dnsmos_models")
    return ort.InferenceSession(
        os.path.join(folder, name), options, providers=["CPUExecutionProvider"]
    )


@functools.cache
def _scorer() -> Any:  # noqa: ANN401 - speechmos.dnsmos.DNSMOS
    _, dnsmos = _speechmos()

    class _DNSMOS(dnsmos.DNSMOS):
        """speechmos' scorer on our sessions."""

        def __init__(self) -> None:
            self.primary_model_path = "sig_bak_ovr.onnx"
            self.onnx_sess = _session("sig_bak_ovr.onnx")
            self.p808_onnx_sess = _session("model_v8.onnx")

    return _DNSMOS()


def dnsmos(audio: Audio) -> dict[str, float]:
    """DNSMOS scores {ovrl, sig, bak} (1-5, higher is better) of the channel average at 16 kHz."""
    result = _scorer()(_window16k(audio), RATE, False)
    return {
        "ovrl": float(result["ovrl_mos"]),
        "sig": float(result["sig_mos"]),
        "bak": float(result["bak_mos"]),
    }


WINDOW = int(9.01 * RATE)
"""DNSMOS judges 9.01 s windows; shorter audio is repeated to fill one, as speechmos does."""


def _window16k(audio: Audio) -> np.ndarray:
    x = audio.to_rate(RATE).mono() if audio.rate != RATE else audio.mono()
    x = np.clip(np.nan_to_num(x.astype(np.float32)), -1.0, 1.0)
    if x.size < RATE // 10:
        raise EngineError("DNSMOS needs at least 0.1 s of audio")
    return x


def busiest_window(audio: Audio) -> tuple[float, float]:
    """The (start, end) seconds of the loudest DNSMOS window, the part most likely to be speech."""
    x = _window16k(audio)
    if x.size <= WINDOW:
        return 0.0, x.size / RATE
    seconds = x.size // RATE
    energy = (x[: seconds * RATE].astype(np.float64) ** 2).reshape(seconds, RATE).sum(axis=1)
    per_window = np.convolve(energy, np.ones(WINDOW // RATE), "valid")  # whole-second starts
    start = min(int(np.argmax(per_window)) * RATE, x.size - WINDOW)
    return start / RATE, (start + WINDOW) / RATE


def quick_ovrl(audio: Audio) -> float:
    """DNSMOS OVRL of one window (the first 9.01 s), without the P.808 model: about a fifth of
    `dnsmos`' cost on a 30 s clip, for decisions such as clean's never-worse guard."""
    x = _window16k(audio)[:WINDOW]
    x = np.resize(x, WINDOW) if x.size < WINDOW else x
    _, _, ovr = _session("sig_bak_ovr.onnx").run(None, {"input_1": x[None]})[0][0]
    _, dnsmos = _speechmos()
    return float(dnsmos.DNSMOS.get_polyfit_val(None, 0.0, 0.0, ovr, False)[2])
