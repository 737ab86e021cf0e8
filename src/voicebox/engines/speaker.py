"""Speaker embeddings (resemblyzer GE2E, weights in the wheel): who is speaking, as a unit vector."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..audio import Audio
from ..errors import EngineError

RATE = 16_000


@functools.cache
def _encoder():  # noqa: ANN202 - returns resemblyzer.VoiceEncoder
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise EngineError(
            f"speaker encoder not installed ({exc.name}); reinstall voicebox"
        ) from None
    return VoiceEncoder("cpu", verbose=False)


def embed(audio: Audio) -> np.ndarray:
    """A 256-d unit vector describing the voice in `audio` (at least ~1 s of speech)."""
    from resemblyzer import preprocess_wav

    x = audio.to_rate(RATE).mono() if audio.rate != RATE or audio.channels > 1 else audio.samples[0]
    wav = preprocess_wav(np.asarray(x, dtype=np.float32), source_sr=RATE)
    if len(wav) < RATE // 4:
        wav = np.asarray(x, dtype=np.float32)
    return np.asarray(_encoder().embed_utterance(wav), dtype=np.float32)


def similarity(a: Audio | np.ndarray, b: Audio | np.ndarray) -> float:
    """Cosine similarity of two voices (embeddings or audio); same speaker ≈ 0.8+, different ≈ 0.4–0.6."""
    ea = a if isinstance(a, np.ndarray) else embed(a)
    eb = b if isinstance(b, np.ndarray) else embed(b)
    return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-9))
