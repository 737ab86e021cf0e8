"""Transcribe speech into segments and words with times, and write them as txt, json, srt or vtt.

Long recordings are cut at their quietest moments into chunks of at most 30 s (whisper's window),
recognised one by one with progress, and their times shifted back to the recording's clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import subtitles
from ..audio import Audio, atomic_path, check_samples
from ..engines import asr
from ..engines.asr import RATE, Segment, Word, recognize
from ..errors import InputError
from ..progress import Progress

FORMATS = ("txt", "json", "srt", "vtt")
CHUNK_MAX = 30.0  # seconds whisper sees at once
CHUNK_MIN = 20.0  # earliest cut: look for the quietest point between CHUNK_MIN and CHUNK_MAX
FRAME = 0.02  # seconds per energy frame
LANGUAGE_THRESHOLD = 0.5
"""Below this detection probability the language is called unsure and nothing is transcribed."""
TASKS = ("transcribe", "translate")
ENGLISH_MODEL = "tiny.en"
"""What transcribes English. On real English eval speech (bench/languages.py, 44 utterances) base
made fewer errors (WER 0.069 vs 0.082) at 1.4x the cost, but it also added a hallucinated trailing
word ("log.") after a long silence on synthetic speech, not reproducibly; tiny.en never did, so it
stays until that is understood. Other languages always use base."""


@dataclass
class Transcript:
    """What was said and when: segments of words with start/end seconds and confidences."""

    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0
    language: str = "en"
    """What was spoken (a whisper language code), detected or as asked."""
    language_probability: float | None = None
    """The detector's confidence in `language`; None when the caller named the language."""
    task: str = "transcribe"
    """"translate" when the text is an English translation of `language` speech."""

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
            "language": self.language,
            "language_probability": None
            if self.language_probability is None
            else round(self.language_probability, 3),
            "task": self.task,
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
        probability = data.get("language_probability")
        return cls(
            segments,
            float(data.get("duration", 0.0)),
            str(data.get("language") or "en"),
            None if probability is None else float(probability),
            str(data.get("task") or "transcribe"),
        )

    def to_txt(self) -> str:
        """Plain text, one segment per line."""
        return "".join(s.text + "\n" for s in self.segments if s.text)

    def to_json(self) -> str:
        """The `to_dict` form as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def cues(self) -> list[subtitles.Cue]:
        """Readable subtitle cues (≤ 2 lines of 42 characters, ≤ 7 s) split at the word times;
        a segment without word times has its words spread over it."""
        groups = [
            subtitles.pieces(s.words) if s.words else subtitles.spread(s.text, s.start, s.end)
            for s in self.segments
            if s.text
        ]
        return subtitles.cues(groups)

    def to_srt(self) -> str:
        """SubRip subtitles in readable cues."""
        return subtitles.to_srt(self.cues())

    def to_vtt(self) -> str:
        """WebVTT subtitles in readable cues."""
        return subtitles.to_vtt(self.cues())

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


class Chunker:
    """Cuts a stream of mono samples into pieces of at most `max_s` seconds at quiet moments,
    exactly where `chunk_bounds` cuts the whole signal, while holding only about one piece: long
    recordings are recognised in bounded memory. Feed blocks, then call `finish`."""

    def __init__(self, rate: int = RATE, max_s: float = CHUNK_MAX) -> None:
        self.hop = int(FRAME * rate)
        self.limit = int(max_s * rate)
        self.earliest = int(min(CHUNK_MIN, max_s * 2 / 3) * rate)
        self.buffer = np.zeros(0, np.float32)
        self.offset = 0  # index of buffer[0] in the whole stream
        self.start = 0  # where the piece being gathered starts
        self.total = 0  # samples fed so far
        self.energy = np.zeros(0)  # mean square per FRAME, for every whole frame fed (small)
        self._pending = np.zeros(0, np.float32)  # samples not yet in a whole frame

    def feed(self, x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Add samples; yields (start sample, piece) for every piece that is now complete."""
        x = np.asarray(x, dtype=np.float32)
        self.buffer = np.concatenate([self.buffer, x])
        self.total += len(x)
        tail = np.concatenate([self._pending, x])
        whole = len(tail) // self.hop * self.hop
        if whole:
            frames = np.square(tail[:whole].astype(np.float64)).reshape(-1, self.hop).mean(axis=1)
            self.energy = np.concatenate([self.energy, frames])
        self._pending = tail[whole:]
        # A cut needs the smoothed energy up to its window's end, which looks 4 frames ahead.
        while self.total - self.start > self.limit:
            if len(self.energy) < (self.start + self.limit) // self.hop + 4:
                break
            yield self._cut()

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        """The remaining pieces once the stream has ended."""
        while self.total - self.start > self.limit:
            yield self._cut()
        if self.total > self.start or self.total == 0:
            yield self.start, self.buffer[self.start - self.offset :]
        self.buffer = np.zeros(0, np.float32)

    def _cut(self) -> tuple[int, np.ndarray]:
        hop = self.hop
        lo = (self.start + self.earliest) // hop
        hi = max(lo + 1, (self.start + self.limit) // hop)
        # np.convolve(energy, ones(10) / 10, "same")[i] sums energy[i-5 : i+5] (zeros outside).
        frames = self.total // hop
        padded = np.zeros(hi - lo + 9)
        first, last = max(0, lo - 5), min(frames, hi + 4)
        padded[first - (lo - 5) : last - (lo - 5)] = self.energy[first:last]
        smooth = np.convolve(padded, np.ones(10) / 10, mode="valid")
        cut = (lo + int(np.argmin(smooth))) * hop + hop // 2
        piece = self.buffer[self.start - self.offset : cut - self.offset]
        start, self.start = self.start, cut
        self.buffer = self.buffer[cut - self.offset :]
        self.offset = cut
        return start, piece


def check_language(language: str | None) -> str | None:
    """A whisper language code for a code or an English name ("de", "German"); None stays None
    (detect it). A language whisper does not know is refused with InputError."""
    if language is None or not language.strip():
        return None
    key = language.strip().lower()
    names = asr.languages()
    if key in names:
        return key
    by_name = {name: code for code, name in names.items()}
    base = key.split("-")[0].split("_")[0]
    if key in by_name or base in names:
        return by_name.get(key, base)
    raise InputError(
        f"language '{language}' is not one the recogniser knows; use a code such as "
        "en, de, fr, es, ja, zh (99 in all)"
    )


def detect(audio: Audio) -> tuple[str, float]:
    """(language, probability) of the speech, refusing with InputError when the detector is unsure
    (below LANGUAGE_THRESHOLD): never a silent guess."""
    code, probability, top = asr.detect_language(audio)
    if probability < LANGUAGE_THRESHOLD:
        guesses = ", ".join(f"{asr.LANGUAGE_NAMES.get(c, c)} {p:.2f}" for c, p in top[:3])
        raise InputError(
            f"cannot tell which language this is (likeliest: {guesses}); "
            "name it with --language CODE"
        )
    return code, probability


def _recognise(
    start: int, piece: np.ndarray, language: str = "en", task: str = "transcribe"
) -> list[Segment]:
    """Recognise one piece (skipping digital silence) with times on the recording's clock."""
    offset = start / RATE
    segments = []
    if np.abs(piece).max(initial=0.0) > 1e-4:
        for seg in recognize(
            Audio(piece, RATE), words=True, language=language, task=task, model=ENGLISH_MODEL
        ):
            words = [
                Word(w.text, w.start + offset, w.end + offset, w.probability) for w in seg.words
            ]
            segments.append(Segment(seg.text, seg.start + offset, seg.end + offset, words))
    return segments


def _transcribe_blocks(
    blocks: Iterable[np.ndarray],
    total: float,
    progress: Progress | None,
    language: str | None = None,
    task: str = "transcribe",
) -> Transcript:
    """Recognise 16 kHz mono blocks piece by piece as the chunker completes them; with no
    `language`, it is detected on the first piece that holds sound."""
    if task not in TASKS:
        raise InputError(f"unknown task '{task}'; use transcribe or translate")
    language = check_language(language)
    probability = None
    chunker = Chunker()
    segments: list[Segment] = []
    if progress:
        progress(0.0, total)

    def pieces() -> Iterator[tuple[int, np.ndarray]]:
        for block in blocks:
            yield from chunker.feed(block)
        yield from chunker.finish()

    for start, piece in pieces():
        if language is None and np.abs(piece).max(initial=0.0) > 1e-4:
            language, probability = detect(Audio(piece, RATE))
        segments.extend(_recognise(start, piece, language or "en", task))
        if progress:
            done = (start + len(piece)) / RATE
            progress(done, max(total, done))
    return Transcript(segments, chunker.total / RATE, language or "en", probability, task)


def transcribe(
    audio: Audio,
    progress: Progress | None = None,
    language: str | None = None,
    task: str = "transcribe",
) -> Transcript:
    """Recognise speech with word times and confidences; long audio goes in ≤ 30 s chunks.

    `language` None detects it (an unsure detection is refused, never guessed); task="translate"
    gives English text for speech in any language."""
    check_samples(audio.samples, audio.rate)
    x = audio.to_rate(RATE).mono() if audio.rate != RATE else audio.mono()
    step = 60 * RATE
    blocks = (x[i : i + step] for i in range(0, len(x), step))
    return _transcribe_blocks(blocks, len(x) / RATE, progress, language, task)


def transcribe_file(
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    language: str | None = None,
    task: str = "transcribe",
) -> Transcript:
    """`transcribe` for a file of any length in bounded memory: decoded, downmixed and resampled
    block by block, recognised piece by piece (the same pieces `transcribe` makes)."""
    from ..audio import stream_mono

    total, blocks = stream_mono(path, RATE)
    return _transcribe_blocks(blocks, total, progress, language, task)
