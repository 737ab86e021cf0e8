"""Phone-level forced alignment with pocketsphinx: which phone is spoken in each mel frame.

Voicebox conditions on frame-aligned phones; pocketsphinx's bundled en-us model aligns known text on CMU
phones, so the paper's recipe (a forced aligner) works offline. Times come out at 100 frames/s and are
converted to MEL frames so the durations sum exactly to `features.frames_for(n_samples)`.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from ..audio import Audio
from ..errors import AudioError, InputError
from .features import MEL, frames_for
from .phones import PHONE_ID, SIL, g2p_words

RATE = 16_000
SPHINX_FPS = 100.0
_lock = threading.Lock()


@dataclass
class WordTiming:
    """One aligned word (seconds); silences are not listed."""

    text: str
    start: float
    end: float


WIDE_BEAMS = {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}
"""Retried with when the default beams lose the path: short clear clips ("by your leave") fail with
"Failed to set up sub-word alignment" at the defaults and align at these (1 % of the training sets)."""


@functools.cache
def _decoder(wide: bool = False):  # noqa: ANN202 - pocketsphinx.Decoder, one per beam setting
    from pocketsphinx import Decoder

    beams = WIDE_BEAMS if wide else {}
    # batch CMN: the whole utterance is normalised on its own, so the same audio always aligns the
    # same way (live CMN carries state from the previous utterance). No language model: alignment
    # follows the given words, and the bundled LM cost 67 MB per decoder (same alignments without).
    return Decoder(samprate=RATE, bestpath=False, loglevel="FATAL", cmn="batch", lm=None, **beams)


def _run_alignment(entries: list[tuple[str, list[str]]], pcm: bytes):  # noqa: ANN202 - Alignment
    """Two-pass forced alignment of the words in `entries`; None when no path is found. Call under _lock."""
    for wide in (False, True):
        dec = _decoder(wide)
        for word, phones in entries:
            if dec.lookup_word(word) is None:
                dec.add_word(word, " ".join(phones), True)
        dec.set_align_text(" ".join(w for w, _ in entries))
        _decode(dec, pcm)
        try:
            dec.set_alignment()  # never call hyp() after this: it segfaults in pocketsphinx 5
        except RuntimeError:  # the first pass found no path through the words
            continue
        _decode(dec, pcm)
        alignment = dec.get_alignment()
        if alignment is not None:
            return alignment
    return None


def _decode(dec, pcm: bytes) -> None:  # noqa: ANN001 - pocketsphinx.Decoder
    """One pass over the whole utterance, its feature extraction started afresh: it otherwise keeps
    state from the previous utterance (the pre-emphasis filter's last sample, it seems), and the same
    audio's first phone came out a frame longer or shorter depending on what was aligned before."""
    dec.reinit_feat()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()


def _pcm(audio: Audio) -> tuple[bytes, int]:
    if audio.frames == 0:
        raise AudioError("cannot align empty audio")
    x = audio.samples[0] if audio.rate == RATE and audio.channels == 1 else None
    if x is None:
        x = audio.to_rate(RATE).mono() if audio.rate != RATE else audio.mono()
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    return pcm.tobytes(), int(pcm.shape[0])


def _entries(text: str) -> list[tuple[str, list[str]]]:
    """(lower-case word, phones) for every word of `text`; InputError when there is none."""
    entries = [(w.lower().replace("’", "'"), p) for w, p in g2p_words(text) if w]
    if not entries:
        raise InputError("text has no words to align")
    return entries


def _aligned(entries: list[tuple[str, list[str]]], pcm: bytes):  # noqa: ANN202 - Alignment
    """The forced alignment of `entries` to `pcm`, or AudioError. Call under _lock."""
    alignment = _run_alignment(entries, pcm)
    if alignment is None:
        raise AudioError("forced alignment failed: the audio does not match the text")
    return alignment


def _sphinx_segments(
    audio: Audio, text: str
) -> tuple[list[tuple[str, float, float]], list[WordTiming], int]:
    """(phone, start s, end s) and word timings from a two-pass forced alignment."""
    entries = _entries(text)
    pcm, n = _pcm(audio)
    with _lock:
        alignment = _aligned(entries, pcm)
        phones: list[tuple[str, float, float]] = []
        timings: list[WordTiming] = []
        for word in alignment:
            name = word.name
            start, end = word.start / SPHINX_FPS, (word.start + word.duration) / SPHINX_FPS
            if not name.startswith("<") and not name.startswith("+") and name != "[NOISE]":
                timings.append(WordTiming(name.split("(")[0], start, end))
            for ph in word:
                label = ph.name if ph.name in PHONE_ID else SIL
                phones.append((label, ph.start / SPHINX_FPS, (ph.start + ph.duration) / SPHINX_FPS))
    if len(timings) != len(entries):
        raise AudioError(f"forced alignment found {len(timings)} of {len(entries)} words")
    return phones, timings, n


def to_frames(
    segments: list[tuple[str, float, float]], total_frames: int, fps: float = MEL.fps
) -> tuple[list[str], list[int]]:
    """Turn (phone, start, end) seconds into phones + frame counts summing to total_frames.

    Gaps become SIL, adjacent SILs merge, every phone keeps at least one frame.
    """
    spans: list[list] = []
    t = 0.0
    for phone, start, end in sorted(segments, key=lambda s: s[1]):
        if start > t + 1e-6:
            spans.append([SIL, t, start])
        spans.append([phone, max(start, t), end])
        t = max(t, end)
    end_s = total_frames / fps
    if t < end_s:
        spans.append([SIL, t, end_s])
    merged: list[list] = []
    for span in spans:
        if merged and span[0] == SIL and merged[-1][0] == SIL:
            merged[-1][2] = span[2]
        elif span[2] > span[1]:
            merged.append(span)
    if len(merged) > total_frames:
        raise AudioError("audio too short for its text")
    bounds = [int(round(s[2] * fps)) for s in merged]
    bounds[-1] = total_frames
    prev = 0
    for i in range(len(bounds)):  # forward: each phone at least one frame
        bounds[i] = max(bounds[i], prev + 1)
        prev = bounds[i]
    bounds[-1] = total_frames
    for i in range(len(bounds) - 2, -1, -1):  # backward: leave room for the phones after
        bounds[i] = min(bounds[i], bounds[i + 1] - 1)
    durations = np.diff([0, *bounds]).tolist()
    return [s[0] for s in merged], [int(d) for d in durations]


def align_words(audio: Audio, text: str) -> tuple[list[str], list[int], list[WordTiming]]:
    """Phones, MEL-frame durations and word timings of `audio` speaking `text`."""
    segments, timings, n = _sphinx_segments(audio, text)
    phones, durations = to_frames(segments, frames_for(n))
    return phones, durations, timings


def spread_words(audio: Audio, text: str) -> tuple[list[str], list[int], list[WordTiming]]:
    """A coarse alignment for when forced alignment finds no path (the text does not quite match,
    or a word is cut at the clip's edge): the text's phones, equal in length, over the stretch from
    the first to the last frame within 35 dB of the loudest. Same shape as `align_words`."""
    pairs = _entries(text)
    n_frames = frames_for(audio.frames)
    x = audio.mono() if audio.channels > 1 else audio.samples[0]
    hop = max(1, audio.frames // max(1, n_frames))
    energy = np.array([float(np.mean(x[i * hop : (i + 1) * hop] ** 2)) for i in range(n_frames)])
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db > db.max() - 35.0)
    first, last = (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, n_frames)
    phones = [p for _, ps in pairs for p in ps]
    if last - first < len(phones):
        raise AudioError("audio too short for its text")
    cuts = np.linspace(first, last, len(phones) + 1)
    segments, timings, k = [], [], 0
    for word, ps in pairs:
        start = cuts[k] / MEL.fps
        for p in ps:
            segments.append((p, cuts[k] / MEL.fps, cuts[k + 1] / MEL.fps))
            k += 1
        timings.append(WordTiming(word, start, cuts[k] / MEL.fps))
    out_phones, durations = to_frames(segments, n_frames)
    return out_phones, durations, timings


def align(audio: Audio, text: str) -> tuple[list[str], list[int]]:
    """Force-align `text` to `audio`: PHONES symbols and frames per phone (sum = frames_for(n))."""
    phones, durations, _ = align_words(audio, text)
    return phones, durations


def score(audio: Audio, text: str) -> float:
    """Acoustic log-likelihood of `audio` saying `text` under forced alignment: of two texts for the
    same audio, the higher-scoring one is the better account of what is said."""
    entries = _entries(text)
    pcm, _ = _pcm(audio)
    with _lock:
        return float(sum(w.score for w in _aligned(entries, pcm)))
