"""Regenerate a stretch of a recording with the Voicebox model and splice it back.

Shared by `clean --infill` (a span ruined by a transient noise) and `edit --engine voicebox` (new words):
a few seconds of the recording on each side are the model's context, the span is masked and filled from
text, and only the span's samples change — every sample outside it is the input's, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import provenance
from ..audio import Audio, check_samples, resample
from ..errors import EngineError, InputError, VoiceboxError
from ..model.config import GUIDANCE

if TYPE_CHECKING:
    from ..model.sample import MaskSpec

CONTEXT_S = 3.0
"""Seconds of the recording on each side of the span given to the model as its context."""
CROSSFADE_S = 0.01
"""Equal-power crossfade at each seam, inside the span."""
TAKES = 3
"""How many takes of a span the model speaks at most: the first that whisper hears right and whose
pitch sits within PITCH_TOLERANCE_ST of the words around it is kept, else the best of them. One
sampled take in three or four misses (a word heard as another, or a whole word in the wrong
register), so a single take left too many edits wrong (bench/results/edit.json)."""
PITCH_TOLERANCE_ST = 2.0
"""How far (semitones) a span's median pitch may sit from the words around it. A stressed word sits
a little above them; several semitones off is the model missing the speaker's register, so a take
further off is moved back to this distance (PSOLA, formants kept)."""


@dataclass
class Options:
    """Sampling settings of the model (see voicebox.model.respeak). Take k is sampled with seed
    `seed + k` (seed None: 0), so the same edit always comes out the same."""

    nfe: int = 16
    guidance: float = GUIDANCE
    seed: int | None = None
    takes: int = TAKES


def require_model() -> None:
    """Raise NotReadyError (one line) when no trained Voicebox checkpoint can be found."""
    from ..model import checkpoint

    checkpoint.find(None, "audio")


TimedWord = tuple[str, float, float]
"""A word and its start and end in seconds on the recording's timeline."""


def _recognize(audio: Audio, lo: int, hi: int) -> list[TimedWord]:
    """Whisper's words in samples [lo, hi), on the whole recording's timeline."""
    from ..engines.asr import recognize

    clip = Audio(audio.samples[:, lo:hi], audio.rate)
    offset = lo / audio.rate
    return [
        (w.text.strip(), offset + w.start, offset + w.end)
        for segment in recognize(clip, words=True)
        for w in segment.words
        if w.text.strip()
    ]


def _context(
    words: list[TimedWord], a: int, b: int, lo: int, hi: int, rate: int
) -> tuple[int, int, list[str], list[str], list[str]]:
    """Snap the window [lo, hi) to the gaps between words (no word cut in half at its edges) and
    split its words into those before the span, inside it and after it (by word centre)."""
    inside = [w for w in words if w[1] * rate >= lo and w[2] * rate <= hi]
    left = [w for w in inside if (w[1] + w[2]) / 2 * rate < a]
    right = [w for w in inside if (w[1] + w[2]) / 2 * rate >= b]
    heard = [w for w in inside if a <= (w[1] + w[2]) / 2 * rate < b]
    if left:
        before = [w[2] for w in words if w[2] <= left[0][1]]
        gap_start = before[-1] if before else max(0.0, left[0][1] - 0.1)
        lo = max(lo, int((gap_start + left[0][1]) / 2 * rate))
    if right:
        after = [w[1] for w in words if w[1] >= right[-1][2]]
        gap_end = after[0] if after else right[-1][2] + 0.1
        hi = min(hi, int((right[-1][2] + gap_end) / 2 * rate))
    lo, hi = min(lo, a), max(hi, b)
    return lo, hi, [w[0] for w in left], [w[0] for w in heard], [w[0] for w in right]


def regenerate_piece(
    audio: Audio,
    a: int,
    b: int,
    said: list[str] | None,
    words: list[TimedWord] | None = None,
    options: Options | None = None,
    taken: Callable[[float], None] = lambda share: None,
) -> np.ndarray:
    """The samples [channels, m] that replace audio[:, a:b]: the model speaks `said` (default: the
    words heard there) with CONTEXT_S of the recording on each side as its context, crossfaded in.

    `words` are the recording's words with times (whisper is run on the neighbourhood when absent);
    `taken` hears the share of the takes done after each (1.0 once one is kept), for a progress bar.
    """
    opts = options or Options()
    rate, n = audio.rate, audio.frames
    lo, hi = max(0, a - int(CONTEXT_S * rate)), min(n, b + int(CONTEXT_S * rate))
    if words is None:
        words = _recognize(audio, lo, hi)
    lo, hi, left, heard, right = _context(words, a, b, lo, hi, rate)
    if said is not None and not said:
        raise InputError("no words to speak in the span; give them as text")
    if said is None and not heard:
        raise InputError("no words were heard in the span; say what is spoken there (--text)")
    ctx = Audio(audio.samples[:, lo:hi], rate)
    text = None if said is None else " ".join(said)
    context_text = " ".join(left + heard + right) or None
    best: _Take | None = None
    own: np.ndarray | None = None  # the recording's window at the model's rate, for judging
    for k in range(max(1, opts.takes)):
        take = _take(ctx, a - lo, b - lo, text, context_text, opts, (opts.seed or 0) + k)
        if opts.takes > 1:
            if own is None:
                own = (
                    ctx.mono()
                    if ctx.rate == take.rate
                    else resample(ctx.mono()[None], ctx.rate, take.rate)[0]
                )
            take.judge(text or " ".join(heard), " ".join(left + (said or heard) + right), own)
        if best is None or take.key > best.key:
            best = take
        if best.good:
            break
        taken((k + 1) / max(1, opts.takes))
    taken(1.0)
    assert best is not None
    piece, r16 = best.in_register(), best.rate
    if r16 != rate:
        piece = resample(piece[None], r16, rate)[0]
    piece = np.repeat(piece[None, :].astype(np.float32), audio.channels, axis=0)
    return splice(audio.samples, a, b, piece, int(CROSSFADE_S * rate))


@dataclass
class _Take:
    """One sampled take of a span: the model's whole window (16 kHz) and where the span lies in it."""

    window: np.ndarray
    rate: int
    head: int
    tail: int
    heard: float = 1.0  # the share of the span's words whisper hears in the window
    errors: int = 0  # words whisper hears wrong in the whole window (the seams can swallow one)
    gap_st: float = 0.0  # the span's median pitch against the words around it

    @property
    def piece(self) -> np.ndarray:
        return self.window[self.head : max(self.head, self.window.shape[0] - self.tail)]

    @property
    def excess(self) -> float:
        return max(0.0, abs(self.gap_st) - PITCH_TOLERANCE_ST)

    @property
    def key(self) -> tuple[float, int, float]:
        return (self.heard, -self.errors, -self.excess)

    @property
    def good(self) -> bool:
        return self.heard >= 1.0 and self.errors == 0 and self.excess == 0.0

    def judge(self, text: str, window_text: str, own: np.ndarray) -> None:
        """Whisper's hearing of the span's words (`text`) and of the window's (`window_text`), and
        the span's pitch gap, all with the take spliced into `own` (the recording's window at this
        take's rate) instead of the model's re-rendering of it: what is judged is what ships."""
        from ..engines import asr
        from .match import median_f0, semitones_between

        own = np.asarray(own, dtype=np.float32)
        b = max(self.head, own.shape[0] - self.tail)
        piece = splice(own[None], self.head, b, self.piece[None], int(CROSSFADE_S * self.rate))[0]
        heard = asr.heard_words(np.concatenate([own[: self.head], piece, own[b:]]), self.rate)
        self.heard = asr.share_heard(asr.spoken_words(text), heard)
        self.errors = word_errors(asr.spoken_words(window_text), heard)
        around = np.concatenate([own[: self.head], own[b:]])
        self.gap_st = semitones_between(
            median_f0(around, self.rate), median_f0(self.piece, self.rate)
        )

    def in_register(self) -> np.ndarray:
        """The span's samples, moved back within PITCH_TOLERANCE_ST of its neighbours if further."""
        from .. import dsp

        if self.excess == 0.0:
            return self.piece
        return dsp.pitch_shift(self.piece, self.rate, -np.sign(self.gap_st) * self.excess)


def word_errors(said: list[str], heard: list[str]) -> int:
    """Substituted, dropped and added words between two word lists (an edit distance)."""
    import difflib

    ops = difflib.SequenceMatcher(None, said, heard, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")


def _take(
    ctx: Audio, a: int, b: int, text: str | None, context_text: str | None, opts: Options, seed: int
) -> _Take:
    """The model's take of samples [a, b) of `ctx` (its context) with one seed."""
    import voicebox.model as vm

    try:
        out = vm.respeak(
            ctx,
            a / ctx.rate,
            b / ctx.rate,
            text,
            context_text=context_text,
            nfe=opts.nfe,
            guidance=opts.guidance,
            seed=seed,
        )
    except VoiceboxError:
        raise
    except Exception as exc:  # the model is another component: report, do not crash
        raise EngineError(f"the voicebox model failed to regenerate the span: {exc}") from None
    y, r16 = out.samples[0], out.rate
    head = int(round(a * r16 / ctx.rate))
    tail = int(round((ctx.frames - b) * r16 / ctx.rate))
    take = _Take(y, r16, head, tail)
    if take.piece.size == 0:
        raise EngineError("the voicebox model produced no audio for the span")
    return take


def check_span(audio: Audio, start: float, end: float, text: str | None = None) -> tuple[int, int]:
    """Samples [a, b) of the span [start, end) seconds, or InputError when it cannot be regenerated."""
    check_samples(audio.samples, audio.rate)
    rate, n = audio.rate, audio.frames
    if not (np.isfinite(start) and np.isfinite(end)) or not 0 <= start < end:
        raise InputError(f"span {start}-{end} s must be START-END seconds with START < END")
    a, b = int(round(start * rate)), int(round(end * rate))
    if b > n:
        raise InputError(f"span {start}-{end} s ends after the recording ({n / rate:.2f} s)")
    if b - a < int(0.07 * rate):
        raise InputError(f"span {start}-{end} s is too short to regenerate (at least 0.07 s)")
    if text is not None and not text.split():
        raise InputError("--text is empty; give the words said in the span")
    return a, b


def regenerate(
    audio: Audio,
    start: float,
    end: float,
    text: str | None = None,
    options: Options | None = None,
    *,
    consent: provenance.Consent | provenance.ConsentRecord | None,
) -> Audio:
    """`audio` with [start, end) seconds spoken anew by the model: `text` there (default: what whisper
    hears there), the neighbourhood as context. Samples outside the span are untouched.

    The model speaks in the recorded person's voice, so `consent` is required: their
    `provenance.Consent` (recorded in the ledger here) or a record `provenance.grant` made for
    this recording."""
    provenance.check_consent(consent)
    a, b = check_span(audio, start, end, text)
    require_model()
    provenance.grant(consent, audio)
    said = text.split() if text is not None else None
    joined = regenerate_piece(audio, a, b, said, None, options)
    rate = audio.rate
    return Audio(np.concatenate([audio.samples[:, :a], joined, audio.samples[:, b:]], axis=1), rate)


def infill(
    text: str,
    context: Audio | None = None,
    mask: MaskSpec = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    solver: str = "midpoint",
    seed: int | None = None,
    *,
    consent: provenance.Consent | provenance.ConsentRecord | None = None,
    **kwargs: object,
) -> Audio:
    """The Voicebox model's infill (voicebox.model.sample.infill): plain TTS without a context;
    with one it speaks in the context's voice, which needs the speaker's `consent` (recorded in
    the ledger; `voicebox.provenance.write_sidecar` puts it beside a saved file)."""
    from ..model import sample

    if context is not None:
        provenance.check_consent(consent)
        check_samples(context.samples, context.rate, "context")
        name = kwargs.get("checkpoint_name")
        sample.load_models(name if isinstance(name, str) else None)  # NotReadyError first
        provenance.grant(consent, context)
    return sample.infill(text, context, mask, nfe, guidance, solver, seed, **kwargs)  # type: ignore[arg-type]


def splice(orig: np.ndarray, a: int, b: int, piece: np.ndarray, fade: int) -> np.ndarray:
    """The samples replacing orig[:, a:b]: `piece` with equal-power crossfades from and back to orig
    inside the span, so nothing outside [a, b) changes."""
    fade = max(1, min(fade, piece.shape[1] // 2, (b - a) // 2))
    theta = np.linspace(0, np.pi / 2, fade, dtype=np.float64)
    fade_in, fade_out = np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)
    x = piece.astype(np.float32, copy=True)
    x[:, :fade] = orig[:, a : a + fade] * fade_out + x[:, :fade] * fade_in
    x[:, -fade:] = x[:, -fade:] * fade_out + orig[:, b - fade : b] * fade_in
    return x
