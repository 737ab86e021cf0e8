"""Regenerate a stretch of a recording with the Voicebox model and splice it back.

Shared by `clean --infill` (a span ruined by a transient noise) and `edit --engine voicebox` (new words):
a few seconds of the recording on each side are the model's context, the span is masked and filled from
text, and only the span's samples change — every sample outside it is the input's, bit for bit.
"""

from __future__ import annotations

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


@dataclass
class Options:
    """Sampling settings of the model (see voicebox.model.respeak)."""

    nfe: int = 16
    guidance: float = GUIDANCE
    seed: int | None = None


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
) -> np.ndarray:
    """The samples [channels, m] that replace audio[:, a:b]: the model speaks `said` (default: the
    words heard there) with CONTEXT_S of the recording on each side as its context, crossfaded in.

    `words` are the recording's words with times (whisper is run on the neighbourhood when absent).
    """
    import voicebox.model as vm

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
    try:
        out = vm.respeak(
            ctx,
            (a - lo) / rate,
            (b - lo) / rate,
            None if said is None else " ".join(said),
            context_text=" ".join(left + heard + right) or None,
            nfe=opts.nfe,
            guidance=opts.guidance,
            seed=opts.seed,
        )
    except VoiceboxError:
        raise
    except Exception as exc:  # the model is another component: report, do not crash
        raise EngineError(f"the voicebox model failed to regenerate the span: {exc}") from None
    y, r16 = out.samples[0], out.rate
    head = int(round((a - lo) * r16 / rate))
    tail = int(round((hi - b) * r16 / rate))
    piece = y[head : max(head, y.shape[0] - tail)]
    if piece.size == 0:
        raise EngineError("the voicebox model produced no audio for the span")
    if r16 != rate:
        piece = resample(piece[None], r16, rate)[0]
    piece = np.repeat(piece[None, :].astype(np.float32), audio.channels, axis=0)
    return splice(audio.samples, a, b, piece, int(CROSSFADE_S * rate))


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
