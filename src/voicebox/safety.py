"""Guards every path shares: an output never overwrites an input, and a reference voice is a voice.

`refuse_overwrite` is the one check the commands, batch and the server's work folder run before
they write: an output that is the same file as an input (same device and inode, after following
symlinks, so hard links count too) is refused with a one-line InputError. A not-yet-existing
output is fine.

`accept_reference` checks a zero-shot reference before any heavy work: it reads at most the first
SCAN_S seconds of a file (a 3-hour file is never decoded whole), refuses silence and clips with too
little speech (silero VAD, as bundled with faster-whisper), and trims a long recording to its best
TRIM_S seconds of speech.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import Audio, check_samples
from .errors import InputError

PathLike = str | os.PathLike[str]

RATE = 16_000
"""Rate of the reference handed to the model, whisper and the speaker encoder alike."""
MIN_SPEECH_S = 1.0
"""A reference with less detected speech than this is refused."""
SHORT_REFERENCE_S = 3.0
"""A reference shorter than this is used, with a VoiceboxWarning: the clone is a looser match."""
MAX_REFERENCE_S = 15.0
"""A reference up to this long is used as given; a longer one is trimmed to TRIM_S."""
TRIM_S = 10.0
"""Length of the window kept from a long reference (the model uses at most 10 s of prompt)."""
SCAN_S = 120.0
"""At most this much of a long file is decoded to look for the best window."""
FRAME_S = 0.02
SNAP_S = 0.3
"""A trimmed window's edges move up to this far to the quietest frame, so no word is cut."""
DIGITAL_SILENCE = 1e-6
VAD_CHUNK_S = 30.0


# ---------------------------------------------------------------- never destroy an input


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when both paths exist and name one file (symlinks followed, hard links included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_overwrite(outputs: Iterable[PathLike | None], inputs: Iterable[PathLike | None]) -> None:
    """Raise InputError when any output is the same file as any input ('-' and None are skipped).

    Writers replace their target atomically, so writing to an input would destroy it: refuse
    before any work is done, whatever path (symlink, hard link, ./x) names it. Each path is
    stat'ed once, so a batch of many files costs one look-up per file.
    """
    seen: dict[tuple[int, int], str] = {}
    for inp in inputs:
        if inp is None or os.fspath(inp) == "-":
            continue
        try:
            st = os.stat(inp)
        except (OSError, ValueError):
            continue  # a missing input is reported by its reader
        seen.setdefault((st.st_dev, st.st_ino), os.fspath(inp))
    for out in outputs:
        if out is None or os.fspath(out) == "-":
            continue
        try:
            st = os.stat(out)
        except (OSError, ValueError):
            continue  # not there yet: nothing to overwrite
        inp = seen.get((st.st_dev, st.st_ino))
        if inp is not None:
            raise InputError(
                f"{os.fspath(out)}: is the same file as the input {inp}; refusing to overwrite "
                "an input, choose another output"
            )


# ---------------------------------------------------------------- references that are voices


@dataclass
class Reference:
    """An accepted reference voice: the audio the model gets, and what was done to it."""

    audio: Audio
    text: str | None
    speech_seconds: float
    source_seconds: float
    window: tuple[float, float] | None = None
    """(start, end) seconds of the source kept when it was trimmed; None when used whole."""
    scanned_seconds: float | None = None
    """How much of a long file was decoded to choose the window (None: all of it)."""

    def describe(self) -> str:
        """One line saying what was used, e.g. for the CLI."""
        if self.window is None:
            return f"reference: {self.audio.duration:.1f} s, {self.speech_seconds:.1f} s of speech"
        a, b = self.window
        return (
            f"reference: using {a:.1f}-{b:.1f} s of a {self.source_seconds:.0f} s recording "
            f"({self.speech_seconds:.1f} s of speech)"
        )


def _to16k_mono(x: np.ndarray, rate: int) -> np.ndarray:
    from .audio import resample

    mono = x.mean(axis=0) if x.ndim == 2 else x
    return resample(np.asarray(mono, np.float32), rate, RATE) if rate != RATE else mono


def _scan(path: Path) -> tuple[np.ndarray, int, float, float | None, Audio | None]:
    """(16 kHz mono of at most SCAN_S s, rate, source seconds, scanned seconds, whole Audio).

    A file up to MAX_REFERENCE_S is loaded whole (and returned as given); a longer one is read
    block by block and only its first SCAN_S seconds are kept, resampled as they stream.
    """
    import soxr

    from .audio import load, stream

    rate, channels, frames, blocks = stream(path, block_seconds=5.0)
    if frames and frames / rate <= MAX_REFERENCE_S:
        blocks.close()
        whole = load(path)
        return _to16k_mono(whole.samples, whole.rate), whole.rate, whole.duration, None, whole
    resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32") if rate != RATE else None
    parts: list[np.ndarray] = []
    kept = 0
    limit = int(SCAN_S * rate)
    try:
        for block in blocks:
            block = block[:, : limit - kept]
            kept += block.shape[1]
            mono = np.ascontiguousarray(block.mean(axis=0), dtype=np.float32)
            parts.append(resampler.resample_chunk(mono) if resampler else mono)
            if kept >= limit:
                break
    finally:
        blocks.close()  # stops an ffmpeg decoder at once instead of decoding the rest
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    seconds = max(frames / rate, kept / rate)
    if kept == 0:
        from .errors import AudioError

        raise AudioError(f"{path}: contains no audio samples")
    return x, rate, seconds, kept / rate if kept < frames else None, None


def speech_mask(x16: np.ndarray) -> np.ndarray:
    """Per FRAME_S frame of 16 kHz mono: True where silero VAD hears speech."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    n = int(np.ceil(x16.size / (FRAME_S * RATE)))
    mask = np.zeros(n, bool)
    if x16.size == 0 or float(np.abs(x16).max()) <= DIGITAL_SILENCE:
        return mask
    options = VadOptions(min_silence_duration_ms=200, speech_pad_ms=60)
    step = int(VAD_CHUNK_S * RATE)  # in pieces: the VAD copies its input a few times
    for offset in range(0, x16.size, step):
        piece = np.ascontiguousarray(x16[offset : offset + step], np.float32)
        for span in get_speech_timestamps(piece, options):
            a = int((offset + span["start"]) / (FRAME_S * RATE))
            b = int(np.ceil((offset + span["end"]) / (FRAME_S * RATE)))
            mask[a:b] = True
    return mask


def _frame_db(x16: np.ndarray) -> np.ndarray:
    hop = int(FRAME_S * RATE)
    n = int(np.ceil(x16.size / hop))
    padded = np.pad(np.asarray(x16, np.float32), (0, n * hop - x16.size)).reshape(n, hop)
    return 10 * np.log10(np.einsum("ij,ij->i", padded, padded) / hop + 1e-12)


def best_window(x16: np.ndarray, seconds: float = TRIM_S) -> tuple[int, int]:
    """Samples [a, b) of the `seconds`-long stretch with the most speech (the loudest on ties),
    its edges moved to the quietest nearby frame so no word is cut in half."""
    hop = int(FRAME_S * RATE)
    mask = speech_mask(x16)
    db = _frame_db(x16)
    width = int(seconds / FRAME_S)
    if len(mask) <= width:
        return 0, x16.size
    loud = np.where(mask, np.clip(db + 60.0, 0.0, 60.0), 0.0)
    cover = np.concatenate([[0], np.cumsum(mask)])
    level = np.concatenate([[0.0], np.cumsum(loud)])
    score = (cover[width:] - cover[:-width]) + 1e-3 * (level[width:] - level[:-width])
    start = int(np.argmax(score))
    snap = int(SNAP_S / FRAME_S)

    def quiet(k: int, lo: int, hi: int) -> int:
        lo, hi = max(0, lo), min(len(db), hi)
        return k if hi <= lo else lo + int(np.argmin(db[lo:hi]))

    a = quiet(start, start, start + snap)  # inward only: the window never grows past `seconds`
    b = quiet(start + width, start + width - snap, start + width)
    return a * hop, min(x16.size, max(b, a + 1) * hop)


def accept_reference(
    source: Audio | PathLike, reference_text: str | None = None, what: str = "reference"
) -> Reference:
    """Check that `source` is a usable voice before any heavy work, trimming a long one.

    Refuses digital silence and clips with under MIN_SPEECH_S of speech. Up to MAX_REFERENCE_S
    the audio is used as given; a longer one is cut to its best TRIM_S of speech (only the first
    SCAN_S of a file is decoded), and then `reference_text`, which cannot say which words fall
    in the window, is refused.
    """
    name = os.fspath(source) if not isinstance(source, Audio) else what
    if isinstance(source, Audio):
        check_samples(source.samples, source.rate, what)
        whole: Audio | None = source
        x16 = _to16k_mono(source.samples, source.rate)
        seconds, scanned = source.duration, None
    else:
        x16, _, seconds, scanned, whole = _scan(Path(source))
    if x16.size == 0 or float(np.abs(x16).max()) <= DIGITAL_SILENCE:
        raise InputError(f"{name}: is digital silence; give 3-10 s of the speaker talking")
    if seconds <= MAX_REFERENCE_S and whole is not None:
        speech = float(speech_mask(x16).sum() * FRAME_S)
        _enough(name, speech)
        _warn_short(seconds)
        return Reference(whole, reference_text, round(speech, 2), round(seconds, 3))
    if reference_text is not None:
        raise InputError(
            f"{name}: is {seconds:.0f} s long; with a transcript give a 3-{MAX_REFERENCE_S:.0f} s "
            f"recording, or leave the transcript out and voicebox picks the best {TRIM_S:.0f} s"
        )
    a, b = best_window(x16)
    clip = x16[a:b]
    speech = float(speech_mask(clip).sum() * FRAME_S)
    _enough(name, speech, f" in its best {TRIM_S:.0f} s")
    return Reference(
        Audio(np.ascontiguousarray(clip, np.float32), RATE),
        None,
        round(speech, 2),
        round(seconds, 3),
        (round(a / RATE, 3), round(b / RATE, 3)),
        scanned,
    )


def _warn_short(seconds: float) -> None:
    """Warn when a reference is under SHORT_REFERENCE_S: it works, but sounds less alike.

    The message names no path and comes from one place, so a reference checked twice on its way
    (by the command, then the task) warns once."""
    if seconds < SHORT_REFERENCE_S:
        import warnings

        from .errors import VoiceboxWarning

        # One fixed location (stacklevel 1), so the CLI's check and the task's show it once.
        warnings.warn(
            f"the reference voice is only {seconds:.1f} s long; the clone will be a looser match "
            f"(give {SHORT_REFERENCE_S:g}-10 s of clear speech)",
            VoiceboxWarning,
            stacklevel=1,
        )


def _enough(name: str, speech: float, where: str = "") -> None:
    if speech < MIN_SPEECH_S:
        raise InputError(
            f"{name}: has {speech:.1f} s of speech{where}; a reference voice needs at least "
            f"{MIN_SPEECH_S:g} s (3-10 s is best)"
        )


def voice_sample(audio: Audio, seconds: float = TRIM_S) -> Audio:
    """At most `seconds` of `audio`'s clearest speech at 16 kHz mono: what a speaker embedding
    of a long recording should look at (embedding hours of audio costs without helping)."""
    x16 = _to16k_mono(audio.samples[:, : int(SCAN_S * audio.rate)], audio.rate)
    if x16.size <= seconds * RATE:
        return Audio(np.ascontiguousarray(x16, np.float32), RATE)
    a, b = best_window(x16, seconds)
    return Audio(np.ascontiguousarray(x16[a:b], np.float32), RATE)
