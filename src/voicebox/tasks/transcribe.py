"""Transcribe speech into segments and words with times, and write them as txt, json, srt or vtt.

Long recordings are cut at their quietest moments into chunks of at most 30 s (whisper's window),
recognised one by one with progress, and their times shifted back to the recording's clock.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio import Audio, atomic_path, check_samples
from ..engines.asr import RATE, Segment, Word, recognize
from ..errors import InputError
from ..progress import Progress

FORMATS = ("txt", "json", "srt", "vtt")
CHUNK_MAX = 30.0  # seconds whisper sees at once
CHUNK_MIN = 20.0  # earliest cut: look for the quietest point between CHUNK_MIN and CHUNK_MAX
FRAME = 0.02  # seconds per energy frame


@dataclass
class Transcript:
    """What was said and when: segments of words with start/end seconds and confidences."""

    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0

    @property
    def words(self) -> list[Word]:
        """Every word in order, across segments."""
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        """The transcript as one line of text."""
        return " ".join(s.text for s in self.segments if s.text).strip()

    def to_dict(self) -> dict:
        """A JSON-ready dict: text, duration and segments with their words."""
        return {
            "text": self.text,
            "duration": round(self.duration, 3),
            "segments": [
                {
                    "text": s.text,
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "words": [
                        {
                            k: round(v, 3) if isinstance(v, float) else v
                            for k, v in asdict(w).items()
                        }
                        for w in s.words
                    ],
                }
                for s in self.segments
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        """Rebuild a transcript written by `to_dict` (for example a saved json file)."""
        try:
            segments = [
                Segment(
                    s["text"],
                    float(s["start"]),
                    float(s["end"]),
                    [Word(w["text"], w["start"], w["end"], w["probability"]) for w in s["words"]],
                )
                for s in data["segments"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a voicebox transcript ({exc})") from None
        return cls(segments, float(data.get("duration", 0.0)))

    def to_txt(self) -> str:
        """Plain text, one segment per line."""
        return "".join(s.text + "\n" for s in self.segments if s.text)

    def to_json(self) -> str:
        """The `to_dict` form as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_srt(self) -> str:
        """SubRip subtitles, one cue per segment."""
        cues = [
            f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text}\n"
            for i, s in enumerate((s for s in self.segments if s.text), start=1)
        ]
        return "\n".join(cues)

    def to_vtt(self) -> str:
        """WebVTT subtitles, one cue per segment."""
        cues = [
            f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text}\n"
            for s in self.segments
            if s.text
        ]
        return "WEBVTT\n\n" + "\n".join(cues)

    def render(self, fmt: str) -> str:
        """The transcript in one of txt, json, srt, vtt."""
        fmt = fmt.lower().lstrip(".")
        if fmt not in FORMATS:
            raise InputError(f"unknown transcript format '{fmt}'; use one of {', '.join(FORMATS)}")
        return getattr(self, f"to_{fmt}")()

    def write(self, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
        """Write atomically; the format defaults to the file's extension."""
        path = Path(path)
        text = self.render(fmt or path.suffix or "txt")
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return path


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def chunk_bounds(x: np.ndarray, rate: int, max_s: float = CHUNK_MAX) -> list[tuple[int, int]]:
    """Cut a mono signal into pieces of at most `max_s` seconds at its quietest moments."""
    n = len(x)
    limit = int(max_s * rate)
    if n <= limit:
        return [(0, n)]
    hop = int(FRAME * rate)
    frames = n // hop
    energy = np.square(x[: frames * hop].astype(np.float64)).reshape(frames, hop).mean(axis=1)
    # Smooth over ~200 ms so a cut lands inside a pause, not between two syllables.
    width = 10
    smooth = np.convolve(energy, np.ones(width) / width, mode="same")
    bounds, start = [], 0
    while n - start > limit:
        lo = (start + int(min(CHUNK_MIN, max_s * 2 / 3) * rate)) // hop
        hi = max(lo + 1, (start + limit) // hop)
        cut = (lo + int(np.argmin(smooth[lo:hi]))) * hop + hop // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def transcribe(audio: Audio, progress: Progress | None = None) -> Transcript:
    """Recognise English speech with word times and confidences; long audio goes in ≤ 30 s chunks."""
    check_samples(audio.samples, audio.rate)
    x = audio.to_rate(RATE).mono() if audio.rate != RATE else audio.mono()
    total = len(x) / RATE
    segments: list[Segment] = []
    if progress:
        progress(0.0, total)
    for start, end in chunk_bounds(x, RATE):
        offset = start / RATE
        piece = x[start:end]
        if np.abs(piece).max(initial=0.0) > 1e-4:
            for seg in recognize(Audio(piece, RATE), words=True):
                words = [
                    Word(w.text, w.start + offset, w.end + offset, w.probability) for w in seg.words
                ]
                segments.append(Segment(seg.text, seg.start + offset, seg.end + offset, words))
        if progress:
            progress(end / RATE, total)
    return Transcript(segments, total)
