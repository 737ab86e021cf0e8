"""Clean speech: remove noise (and optionally mains hum), keep rate, channels and exact length.

One streaming chain serves both the in-memory `clean` and the file-to-file `clean_file`:
notch hum at the input rate → resample to 48 kHz → denoiser per channel → resample back.
`clean_file` reads and writes in blocks, so memory stays bounded however long the file is.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from .. import dsp, provenance
from ..audio import (
    STREAM_EXTS,
    Audio,
    LoudnessMeter,
    StreamWriter,
    check_samples,
    temp_file,
    write_error,
)
from ..audio import stream as stream_file
from ..engines import denoise
from ..errors import AudioError, InputError
from ..model.config import GUIDANCE
from ..progress import Progress
from ..safety import refuse_overwrite
from .options import CleanOptions

_Opened = tuple[int, int, int, Iterator[np.ndarray]]
"""audio.stream's (rate, channels, frames, blocks)."""
_Pass = tuple[
    int,
    list[float],
    tuple[dict[str, float] | None, dict[str, float] | None] | None,
    "dsp.Levelled | None",
]
"""One pass over a file: samples per channel, hum lines notched, DNSMOS scores, what it measures."""
BLOCK_SECONDS = 10.0
HUM_SECONDS = 30.0
"""Hum is detected on the first 30 s of a file (mains hum is steady)."""
SCORE_SECONDS = 60.0
"""DNSMOS scores the first 60 s of input and output, so scoring stays cheap on long files."""
STREAM_FORMATS = tuple(sorted(STREAM_EXTS))
"""What clean writes: the formats audio.StreamWriter streams block by block."""
GUARD_SECONDS = 60.0
"""The guard judges the loudest 9 s DNSMOS window of the first minute, in and out (fixed cost)."""
GUARD_MIN_SECONDS = 1.0
"""Shorter signals are too short for DNSMOS to judge: the guard leaves them alone."""


@dataclasses.dataclass
class CleanReport:
    """What clean_file did and how well: the machine-readable result of one cleaned file."""

    src: str
    dst: str
    engine: str
    strength: float
    duration: float
    rate: int
    channels: int
    hum_hz: list[float]
    loudness: float | None
    seconds: float
    rtf: float
    dnsmos_before: dict[str, float] | None = None
    dnsmos_after: dict[str, float] | None = None
    guard: str | None = None
    """What the never-worse guard did: "kept", "softened to N dB" or "not denoised" (None: off)."""
    loudness_target: float | None = None
    """The asked loudness (LUFS); `loudness` is what the output measures, `true_peak` its dBTP."""
    true_peak: float | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary of every field."""
        return dataclasses.asdict(self)


class Cleaner:
    """The streaming chain for one signal: feed [channels, n] blocks, get cleaned blocks back."""

    def __init__(
        self,
        rate: int,
        channels: int,
        engine: str = "dfn3",
        strength: float | None = None,
        hum_hz: list[float] | None = None,
    ) -> None:
        import soxr

        self.rate, self.channels = rate, channels
        self.notch = dsp.Notch(hum_hz, rate, channels) if hum_hz else None
        self.denoiser = denoise.MultiChannel(engine, channels, strength)
        self.resampled = rate != denoise.RATE
        if self.resampled:
            self.up = soxr.ResampleStream(rate, denoise.RATE, channels, dtype="float32")
            self.down = soxr.ResampleStream(denoise.RATE, rate, channels, dtype="float32")
        self.fed = 0
        self.emitted = 0

    def _chain(self, block: np.ndarray, last: bool) -> np.ndarray:
        if self.resampled:
            block = self.up.resample_chunk(np.ascontiguousarray(block.T), last=last).T
        block = self.denoiser.process(np.ascontiguousarray(block, dtype=np.float32))
        if last:
            block = np.concatenate([block, self.denoiser.flush()], axis=1)
        if self.resampled:
            block = self.down.resample_chunk(np.ascontiguousarray(block.T), last=last).T
        return np.asarray(block, dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Clean the next block; returns the output ready so far (aligned with the input)."""
        block = np.asarray(block, dtype=np.float32)
        self.fed += block.shape[1]
        if self.notch is not None:
            block = self.notch(block)
        out = self._chain(block, last=False)
        out = out[:, : max(0, self.fed - self.emitted)]
        self.emitted += out.shape[1]
        return out

    def flush(self) -> np.ndarray:
        """The rest of the output: afterwards exactly as many samples came out as went in."""
        out = self._chain(np.zeros((self.channels, 0), dtype=np.float32), last=True)
        missing = self.fed - self.emitted
        out = out[:, :missing]
        if out.shape[1] < missing:
            pad = np.zeros((self.channels, missing - out.shape[1]), dtype=np.float32)
            out = np.concatenate([out, pad], axis=1)
        self.emitted += out.shape[1]
        return out


def unwritable(dst: Path) -> str:
    """Why clean refuses to write `dst` (m4a, opus, ...), naming the WAV it could write instead."""
    kind = dst.suffix.lower().lstrip(".") or "files without an extension"
    listed = ", ".join(STREAM_FORMATS)
    return f"{dst}: clean cannot write {kind}; choose {listed} (e.g. {dst.with_suffix('.wav')})"


class _Worse(Exception):
    """The guard rejected a cleaned output: it scored below its input (judged by `judge`)."""

    def __init__(self, judge: _Judge) -> None:
        super().__init__("cleaned output scored below its input")
        self.judge = judge


class _Judge:
    """DNSMOS OVRL (no reference needed) of the loudest window of the input, scored once; every
    attempt's output is compared with it on the same window."""

    def __init__(self, before: np.ndarray, rate: int) -> None:
        from ..engines.quality import busiest_window, quick_ovrl

        start, end = busiest_window(Audio(before, rate))
        self.rate, self.a, self.b = rate, int(start * rate), int(end * rate)
        self.score = quick_ovrl(Audio(before[:, self.a : self.b], rate))

    def worse(self, after: np.ndarray) -> bool:
        """Whether cleaning made the speech worse ([channels, n], aligned with the input)."""
        from ..engines.quality import quick_ovrl

        return quick_ovrl(Audio(after[:, self.a : self.b], self.rate)) < self.score


def _guard_plan(strength: float) -> list[float | None]:
    """Strengths to try in turn: as asked, then half as strong, then none (the input as it is)."""
    softer = round(strength / 2, 1)
    return [strength, softer, None] if softer > 0 else [strength, None]


def _guard_label(strength: float | None, asked: float) -> str:
    if strength is None:
        return "not denoised"
    return "kept" if strength == asked else f"softened to {strength:g} dB"


R = TypeVar("R")


def _never_worse(
    plan: list[float | None], attempt: Callable[[float | None, bool], R]
) -> tuple[float | None, R]:
    """The never-worse guard, for memory and files alike: try each strength of `plan` in turn;
    `attempt(strength, judged)` raises _Worse when `judged` and its output scored below the input.
    The last attempt (or the input as it is, strength None) is never judged, so one is taken.
    Returns the strength used and that attempt's result."""
    for i, strength in enumerate(plan):
        final = strength is None or i == len(plan) - 1
        try:
            return strength, attempt(strength, not final)
        except _Worse:
            continue
    raise AssertionError("the guard's last attempt is never judged")


def clean(
    audio: Audio,
    engine: str = "dfn3",
    strength: float | None = None,
    dehum: bool = False,
    loudness: float | None = None,
    progress: Progress | None = None,
    guard: bool = True,
) -> Audio:
    """Denoise speech in memory (engine dfn3, rnnoise or gate); same rate, channels and length out.

    `strength` caps the attenuation in dB; `dehum` notches detected 50/60 Hz hum; `loudness` is an
    EBU R128 target in LUFS. The `guard` keeps the result never worse than the input by DNSMOS
    OVRL: a cleaned signal that scores lower is redone half as strong, then left as it was.
    """
    check_samples(audio.samples, audio.rate)
    opts = CleanOptions(engine, strength, dehum, loudness, guard)
    lines = (
        dsp.detect_hum(audio.samples[:, : int(HUM_SECONDS * audio.rate)], audio.rate)
        if dehum
        else []
    )
    head = int(GUARD_SECONDS * audio.rate)
    judged = guard and audio.duration >= GUARD_MIN_SECONDS
    judge = _Judge(audio.samples[:, :head], audio.rate) if judged else None
    plan = _guard_plan(opts.strength_db) if judge else [opts.strength_db]

    def attempt(value: float | None, judged: bool) -> Audio:
        out = Audio(_clean_samples(audio, engine, value, lines, progress), audio.rate)
        if judged and judge is not None and judge.worse(out.samples[:, :head]):
            raise _Worse(judge)
        return out

    _, out = _never_worse(plan, attempt)
    if loudness is not None:
        out = Audio(dsp.level(out.samples, out.rate, loudness)[0], out.rate)
    return out


def _clean_samples(
    audio: Audio,
    engine: str,
    strength: float | None,
    lines: list[float],
    progress: Progress | None,
) -> np.ndarray:
    """One pass of the chain over a signal in memory; strength None keeps the input (hum aside)."""
    if strength is None:
        return (
            dsp.Notch(lines, audio.rate, audio.channels)(audio.samples) if lines else audio.samples
        )
    cleaner = Cleaner(audio.rate, audio.channels, engine, strength, lines)
    step = max(1, int(BLOCK_SECONDS * audio.rate))
    parts = []
    for start in range(0, audio.frames, step):
        parts.append(cleaner.process(audio.samples[:, start : start + step]))
        if progress is not None:
            progress(min(audio.frames, start + step) / audio.rate, audio.duration)
    parts.append(cleaner.flush())
    return np.concatenate(parts, axis=1)


def _output_subtype(src: Path, dst: Path) -> str | None:
    """Keep a WAV/FLAC input's bit depth where the output format can hold it; else 16-bit."""
    ext = dst.suffix.lower()
    if ext not in (".wav", ".flac"):
        return None
    from ..audio import subtype as source_subtype

    subtype = source_subtype(src) or "PCM_16"
    keep = {"PCM_24", "PCM_32", "FLOAT", "DOUBLE"} if ext == ".wav" else {"PCM_24"}
    return subtype if subtype in keep else "PCM_16"


class _Sample:
    """The first few seconds of a stream (at its rate, every channel), kept for scoring."""

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate, self.limit, self.parts, self.size = rate, int(seconds * rate), [], 0

    def add(self, block: np.ndarray) -> None:
        if self.size < self.limit:
            part = block[:, : self.limit - self.size]
            self.parts.append(part)
            self.size += part.shape[1]

    def head(self) -> np.ndarray:
        """The samples kept, [channels, n]."""
        return np.concatenate(self.parts, axis=1) if self.parts else np.zeros((1, 0), np.float32)

    def score(self) -> dict[str, float] | None:
        if not self.size:
            return None
        from ..engines.quality import dnsmos

        return dnsmos(Audio(self.head(), self.rate))


def clean_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    engine: str = "dfn3",
    strength: float | None = None,
    dehum: bool = False,
    loudness: float | None = None,
    score: bool = False,
    progress: Progress | None = None,
    guard: bool = True,
) -> CleanReport:
    """Clean one audio file into another, streaming in blocks; the input is never modified.

    The output keeps the input's rate, channel count and length; formats follow dst's extension.
    The `guard` keeps it never worse than the input by DNSMOS OVRL (on the first minute): an output
    that scores lower is not committed but redone half as strong, then not denoised at all.
    """
    src, dst = Path(src), Path(dst)
    value = CleanOptions(engine, strength, dehum, loudness, guard).strength_db
    if dst.suffix.lower() not in STREAM_FORMATS:
        raise InputError(unwritable(dst))
    refuse_overwrite([dst], [src])
    started = time.perf_counter()
    opened: _Opened | None = stream_file(src, BLOCK_SECONDS)
    rate, channels, frames, _ = opened
    judged = guard and frames >= GUARD_MIN_SECONDS * rate
    plan = _guard_plan(value) if judged else [value]
    judge: _Judge | None = None  # the input's score, made on the first pass and kept

    def attempt(strength: float | None, guarded: bool) -> _Pass:
        nonlocal judge, opened
        try:
            return _clean_pass(
                src, opened, dst, engine, strength, dehum, loudness, score, guarded, judge, progress
            )
        except _Worse as rejected:
            judge, opened = rejected.judge, None  # the next pass reads the file again
            raise

    attempt_used, (fed, lines, scores, levelled) = _never_worse(plan, attempt)
    seconds = time.perf_counter() - started
    duration = fed / rate
    report = CleanReport(
        src=str(src),
        dst=str(dst),
        engine=engine,
        strength=0.0 if attempt_used is None else attempt_used,
        duration=duration,
        rate=rate,
        channels=channels,
        hum_hz=lines,
        loudness=levelled.loudness if levelled else None,
        seconds=round(seconds, 3),
        rtf=round(seconds / duration, 4) if duration else 0.0,
        guard=_guard_label(attempt_used, value) if judged else None,
        loudness_target=loudness,
        true_peak=levelled.true_peak if levelled else None,
    )
    if scores is not None:
        report.dnsmos_before, report.dnsmos_after = scores
    return report


def _clean_pass(
    src: Path,
    opened: _Opened | None,
    dst: Path,
    engine: str,
    strength: float | None,
    dehum: bool,
    loudness: float | None,
    score: bool,
    guarded: bool,
    judge: _Judge | None,
    progress: Progress | None,
) -> _Pass:
    """Stream src (`opened`, else opened here) through the chain into dst (strength None: not
    denoised). When `guarded`, raise _Worse before committing an output whose head scores below the
    input's (nothing is written); `judge` holds the input's score when an earlier pass made it.
    Returns samples per channel, the hum lines notched, the DNSMOS scores when asked and, with a
    loudness target, what the output measures."""
    rate, channels, frames, blocks = opened or stream_file(src, BLOCK_SECONDS)
    blocks, lines = _detect_hum(blocks, rate) if dehum else (blocks, [])
    notch = dsp.Notch(lines, rate, channels) if strength is None and lines else None
    cleaner = Cleaner(rate, channels, engine, strength, lines) if strength is not None else None
    subtype = _output_subtype(src, dst)
    need_input = score or (guarded and judge is None)
    before = _Sample(rate, max(SCORE_SECONDS, GUARD_SECONDS)) if need_input else None
    after = _Sample(rate, SCORE_SECONDS) if score else None
    judged = _Sample(rate, GUARD_SECONDS) if guarded else None
    total = frames / rate if frames > 0 else 0.0
    fed = 0

    def cleaned() -> Iterator[np.ndarray]:
        nonlocal fed
        for block in blocks:
            if before is not None:
                before.add(block)
            fed += block.shape[1]
            if cleaner is None:
                out = notch(block) if notch is not None else block
            else:
                out = cleaner.process(block)
            if judged is not None:
                judged.add(out)
            yield out
            if progress is not None:
                progress(fed / rate, max(total, fed / rate))
        if fed == 0:
            raise AudioError(f"{src}: contains no audio samples")
        if cleaner is not None:
            tail = cleaner.flush()
            if judged is not None:
                judged.add(tail)
            yield tail

    def verdict() -> None:
        nonlocal judge
        if judged is None:
            return
        if judge is None:
            assert before is not None
            judge = _Judge(before.head()[:, : int(GUARD_SECONDS * rate)], rate)
        if judge.worse(judged.head()):
            raise _Worse(judge)

    levelled = None
    if loudness is None:
        _write(dst, rate, channels, subtype, cleaned(), after, verdict)
    else:
        levelled = _write_normalised(
            dst, rate, channels, subtype, cleaned(), after, loudness, verdict
        )
    scores = (before.score(), after.score()) if score and before and after else None
    return fed, lines, scores, levelled


def _detect_hum(
    blocks: Iterator[np.ndarray], rate: int
) -> tuple[Iterator[np.ndarray], list[float]]:
    """Peek at the first HUM_SECONDS of a stream to find hum, then hand back the whole stream."""
    head, size = [], 0
    for block in blocks:
        head.append(block)
        size += block.shape[1]
        if size >= HUM_SECONDS * rate:
            break
    lines = dsp.detect_hum(np.concatenate(head, axis=1), rate) if head else []
    return itertools.chain(head, blocks), lines


def _write(
    dst: Path,
    rate: int,
    channels: int,
    subtype: str | None,
    blocks: Iterator[np.ndarray],
    sample: _Sample | None,
    verdict: Callable[[], None] | None = None,
) -> None:
    """Write blocks atomically; `verdict` may raise before the output is committed."""
    with StreamWriter(dst, rate, channels, subtype=subtype) as writer:
        for block in blocks:
            writer.write(block)
            if sample is not None:
                sample.add(block)
        if verdict is not None:
            verdict()


def _write_normalised(
    dst: Path,
    rate: int,
    channels: int,
    subtype: str | None,
    blocks: Iterator[np.ndarray],
    sample: _Sample | None,
    target: float,
    verdict: Callable[[], None] | None = None,
) -> dsp.Levelled:
    """Clean into a float scratch file while metering, find the gain that lands on the target
    after the true-peak limiter (a few metering passes over the scratch), then write; bounded
    memory throughout. Returns what the written output measures."""
    import soundfile as sf

    folder = dst.parent if str(dst.parent) else Path(".")
    if not folder.is_dir():
        raise AudioError(f"{dst}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise AudioError(f"{dst}: output folder {folder} is not writable")
    scratch = str(temp_file(folder, dst.name, ".pass1.wav"))  # named so a rerun can remove it
    try:
        meter = LoudnessMeter(rate, channels)
        try:
            with sf.SoundFile(
                scratch, "w", samplerate=rate, channels=channels, format="WAV", subtype="FLOAT"
            ) as f:
                for block in blocks:
                    meter.add(block)
                    f.write(block.T)
        except (sf.LibsndfileError, OSError) as exc:
            raise write_error(dst, exc) from None  # a full disk says so, not "System error."
        step = max(1, int(BLOCK_SECONDS * rate))

        def scratch_blocks() -> Iterator[np.ndarray]:
            with sf.SoundFile(scratch) as f:
                for block in f.blocks(blocksize=step, dtype="float32", always_2d=True):
                    yield block.T

        gain = dsp.fit_gain(scratch_blocks, rate, channels, target, measured=meter.integrated())
        writer = dsp.LevelWriter(rate, channels, gain)

        def levelled() -> Iterator[np.ndarray]:
            for block in scratch_blocks():
                yield writer.process(block)
            yield writer.flush()

        _write(dst, rate, channels, subtype, levelled(), sample, verdict)
        return writer.result()
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


# ---------------------------------------------------------------- regenerate a span (Voicebox model)


def parse_span(spec: str) -> tuple[float, float]:
    """'START-END' in seconds (e.g. '1.2-2.5') as (start, end); InputError when malformed."""
    start, sep, end = spec.strip().partition("-")
    try:
        span = (float(start), float(end))
    except ValueError:
        span = None
    if not sep or span is None or not all(np.isfinite(span)) or not 0 <= span[0] < span[1]:
        raise InputError(f"span '{spec}' must be START-END seconds with START < END, e.g. 1.2-2.5")
    return span


def infill_span(
    audio: Audio,
    start: float,
    end: float,
    text: str | None = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    seed: int | None = None,
    *,
    consent: provenance.Consent | provenance.ConsentRecord | None,
) -> Audio:
    """Speak [start, end) seconds anew with the Voicebox model, for a span a transient noise ruined;
    `text` is what is said there (default: whisper's guess). Samples outside the span are untouched.
    The model speaks in the recorded voice, so the speaker's `consent` is required (see regenerate)."""
    from .regenerate import Options, regenerate

    return regenerate(audio, start, end, text, Options(nfe, guidance, seed), consent=consent)


def infill_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    start: float,
    end: float,
    text: str | None = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    seed: int | None = None,
    *,
    consent: provenance.Consent | provenance.ConsentRecord | None,
) -> dict[str, object]:
    """`infill_span` from file to file (atomic; the input's bit depth kept for WAV/FLAC), with the
    consent record in `<dst>.provenance.json`; a report."""
    from ..audio import load, save
    from .regenerate import check_span, require_model

    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in STREAM_FORMATS:
        raise InputError(unwritable(dst))
    refuse_overwrite([dst], [src])
    require_model()
    provenance.check_consent(consent)
    started = time.perf_counter()
    audio = load(src)
    check_span(audio, start, end, text)
    record = provenance.grant(consent, audio)
    out = infill_span(audio, start, end, text, nfe, guidance, seed, consent=record)
    save(out, dst, _output_subtype(src, dst))
    provenance.write_sidecar(dst, record)
    seconds = time.perf_counter() - started
    return {
        "src": str(src),
        "dst": str(dst),
        "engine": "voicebox",
        "span": [start, end],
        "duration": round(out.duration, 3),
        "length_change_s": round(out.duration - audio.duration, 3),
        "seconds": round(seconds, 3),
    }
