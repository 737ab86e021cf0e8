"""Inference: fill a masked stretch of speech (or a whole sentence) from text with the trained model.

One entry point, `infill`: text → phones (g2p) → durations (the context's own alignment where it is kept,
the duration model for new phones) → frame-aligned phones → ODE from noise to mel, guided by the context
and the phones (classifier-free guidance) → vocoder. TTS, editing, zero-shot cloning and variations are
all ways of choosing the context and the mask.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import provenance
from ..audio import Audio
from ..config import env, threads
from ..errors import InputError, NotReadyError
from . import checkpoint
from .checkpoint import load_vocoder
from .config import DURATION_SCALE, GUIDANCE, ZERO_SHOT_PAUSE, Config
from .features import MEL, audio_to_mel
from .flow import SOLVERS, generate_mel
from .phones import PHONE_ID
from .vocoder import griffin_lim

LEAD_IN_FRAMES = 16  # frames vocoded before the wanted ones so Griffin-Lim's phase settles
MaskSpec = Sequence[tuple[float, float]] | np.ndarray | None


@dataclass
class Models:
    """A loaded checkpoint: the audio network, the duration network (if trained) and a vocoder."""

    audio: nn.Module
    config: Config
    duration: nn.Module | None
    vocode: Callable[[torch.Tensor], np.ndarray]
    vocoder_name: str


VOCODERS = ("hifigan", "checkpoint", "griffin-lim")


def _vocoder(folder: str) -> tuple[Callable[[torch.Tensor], np.ndarray], str]:
    """The universal HiFi-GAN (bench/vocoder.py: DNSMOS of real speech as the originals'), else the
    checkpoint's own small vocoder, else Griffin-Lim; VOICEBOX_VOCODER picks one of VOCODERS."""
    from . import hifigan

    choice = (env("vocoder", "") or "").lower()
    if choice and choice not in VOCODERS:
        raise InputError(f"VOICEBOX_VOCODER={choice!r}: choose one of {', '.join(VOCODERS)}")
    if choice in ("", "hifigan") and hifigan.available():
        return hifigan.load_hifigan(adapter=hifigan.adapter_beside(folder)), "hifigan"
    if choice in ("", "hifigan", "checkpoint"):
        neural = load_vocoder(folder)
        if neural is not None:
            return neural, "vocoder"
    return griffin_lim, "griffin-lim"


@functools.lru_cache(maxsize=2)
def load_models(name: str | None = None) -> Models:
    """Load (once per process) the checkpoint named or found by checkpoint.find."""
    folder = checkpoint.find(name, "audio")
    audio, config = checkpoint.load(folder, "audio")
    duration = None
    if (folder / "duration.pt").is_file():
        duration, _ = checkpoint.load(folder, "duration")
    vocode, vocoder_name = _vocoder(str(folder))
    return Models(audio, config, duration, vocode, vocoder_name)


@dataclass
class Plan:
    """What to generate: per output phone its id, duration (frames), whether that duration is known
    (from the context) and, for phones copied from the context, where its frames start there (else −1)."""

    phone_ids: torch.Tensor
    durations: torch.Tensor
    known: torch.Tensor
    source: torch.Tensor


def _ids(phones: Sequence[str]) -> torch.Tensor:
    unknown = [p for p in phones if p not in PHONE_ID]
    if unknown:
        raise InputError(f"unknown phone(s) {unknown[:5]}: use the PHONES inventory")
    return torch.tensor([PHONE_ID[p] for p in phones], dtype=torch.long)


@dataclass
class ContextAlignment:
    """The context's phones and frames per phone, and the phones actually spoken in each word."""

    phones: list[str]
    durations: list[int]
    words: list[str]
    word_phones: list[list[str]]


def _align_leniently(audio: Audio, text: str) -> tuple[list[str], list[int], list]:
    """Forced alignment of the context; when it finds no path (a misheard word, a word cut at the
    clip's edge: one of 8 real recordings in bench/edit.py), the recogniser's own words are tried,
    then the phones are spread evenly over the speech, so a context never makes the model fail."""
    from ..errors import AudioError

    try:
        from .align import align_words, spread_words
    except ImportError as exc:
        raise NotReadyError(f"forced alignment is not available: {exc}") from None
    try:
        return align_words(audio, text)
    except AudioError:
        pass
    from ..engines.asr import transcribe_text

    heard = transcribe_text(audio).strip()
    if heard and heard.lower() != text.strip().lower():
        try:
            return align_words(audio, heard)
        except AudioError:
            pass
    return spread_words(audio, text)


def _align(audio: Audio, text: str | None) -> ContextAlignment:
    if text is None:
        from ..engines.asr import transcribe_text

        text = transcribe_text(audio)
    if not text.strip():
        raise InputError("the context has no recognisable speech; pass its transcript")
    phones, durations, timings = _align_leniently(audio, text)
    word_phones: list[list[str]] = [[] for _ in timings]
    pos = 0
    for phone, d in zip(phones, durations, strict=True):
        centre = (pos + d / 2) / MEL.fps
        pos += d
        if phone == "SIL":
            continue
        for k, w in enumerate(timings):
            if w.start <= centre < w.end:
                word_phones[k].append(phone)
                break
    return ContextAlignment(list(phones), list(durations), [w.text for w in timings], word_phones)


def _norm_word(word: str) -> str:
    return word.lower().replace("’", "'").strip()


def spoken_phones(text: str, ctx: ContextAlignment | None) -> list[str]:
    """Phones for `text`; words it shares with the context (word-level diff) take the pronunciation
    the aligner heard there, so unchanged words match the context phone for phone."""
    try:
        from .phones import g2p_words
    except ImportError as exc:
        raise NotReadyError(f"text-to-phones is not available: {exc}") from None
    if not text or not text.strip():
        raise InputError("no text to speak")
    pairs = g2p_words(text)
    if ctx is not None and ctx.words:
        new = [(i, _norm_word(w)) for i, (w, _) in enumerate(pairs) if w]
        matcher = difflib.SequenceMatcher(
            None, [_norm_word(w) for w in ctx.words], [w for _, w in new], autojunk=False
        )
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                continue
            for ci, nj in zip(range(i1, i2), range(j1, j2), strict=True):
                if ctx.word_phones[ci]:
                    idx = new[nj][0]
                    pairs[idx] = (pairs[idx][0], ctx.word_phones[ci])
    phones = [p for _, ph in pairs for p in ph]
    if not any(p != "SIL" for p in phones):
        raise InputError(f"nothing speakable in {text!r}")
    return phones


def mask_frames(mask: MaskSpec, n_frames: int) -> np.ndarray:
    """A boolean frame mask [n_frames] from (start, end) second ranges or a boolean array."""
    out = np.zeros(n_frames, dtype=bool)
    if mask is None:
        return out
    if isinstance(mask, np.ndarray) and mask.dtype == bool:
        if mask.shape != (n_frames,):
            raise InputError(
                f"frame mask has {mask.shape} entries; the context has {n_frames} frames"
            )
        return mask.copy()
    for item in mask:
        try:
            start, end = float(item[0]), float(item[1])
        except (TypeError, ValueError, IndexError):
            raise InputError(f"mask ranges must be (start, end) seconds, got {item!r}") from None
        if not 0 <= start < end:
            raise InputError(f"mask range {start}-{end} s is empty or negative")
        a = int(np.floor(start * MEL.fps))
        b = int(np.ceil(end * MEL.fps))
        if a >= n_frames:
            raise InputError(f"mask range {start}-{end} s starts after the context ends")
        out[a : min(b, n_frames)] = True
    return out


def plan_infill(
    new_phones: list[str], ctx_phones: list[str], ctx_durations: list[int], masked: np.ndarray
) -> Plan:
    """Match the new phones to the context's (difflib); phones that match and lie outside the mask are
    copied with their frames, matched phones inside it keep their duration, the rest are new."""
    starts = np.concatenate([[0], np.cumsum(ctx_durations)[:-1]]).astype(int)
    phone_masked = [
        bool(masked[s : s + d].any()) if d > 0 else False
        for s, d in zip(starts, ctx_durations, strict=True)
    ]
    n = len(new_phones)
    durations = torch.zeros(n, dtype=torch.long)
    known = torch.zeros(n, dtype=torch.bool)
    source = torch.full((n,), -1, dtype=torch.long)
    matcher = difflib.SequenceMatcher(None, ctx_phones, new_phones, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            continue
        for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
            durations[j] = ctx_durations[i]
            known[j] = True
            if not phone_masked[i]:
                source[j] = int(starts[i])
    return Plan(_ids(new_phones), durations, known, source)


def plan_respeak(
    phones: list[str], durations: list[int], masked: np.ndarray, said: list[str] | None
) -> Plan:
    """Every frame outside the mask is copied in place (a phone the mask's edge cuts is split there),
    so the output keeps the context's timing on both sides to the frame. The mask is filled with
    `said` (durations predicted), keeping pauses and edge phones mostly outside it at their own
    length; without `said` it is the phones the mask covers, spoken again at their own lengths."""
    total = int(masked.shape[0])
    phones, durations = list(phones), [int(d) for d in durations]
    if sum(durations) < total:  # the aligner left trailing frames: they are a pause
        phones.append("SIL")
        durations.append(total - sum(durations))
    if not masked.any():
        raise InputError("the span to speak anew is empty")
    first = int(np.argmax(masked))
    last = total - int(np.argmax(masked[::-1]))
    left: list[tuple[str, int, bool, int]] = []
    right: list[tuple[str, int, bool, int]] = []
    inner: list[tuple[str, int, bool, int]] = []
    inside_share: list[float] = []
    pos = 0
    for phone, d in zip(phones, durations, strict=True):
        s, e = pos, min(pos + d, total)
        pos += d
        if e <= s:
            continue
        if s < first:
            left.append((phone, min(e, first) - s, True, s))
        if e > last:
            right.append((phone, e - max(s, last), True, max(s, last)))
        a, b = max(s, first), min(e, last)
        if b > a:
            inner.append((phone, b - a, True, -1))
            inside_share.append((b - a) / (e - s))
    if said is not None:

        def kept(i: int) -> bool:  # a pause, or an edge phone mostly outside the span, stays
            return inner[i][0] == "SIL" and inside_share[i] < 1 or inside_share[i] < 0.5

        j0, j1 = 0, len(inner)
        while j0 < j1 and kept(j0):
            j0 += 1
        while j1 > j0 and kept(j1 - 1):
            j1 -= 1
        inner = inner[:j0] + [(p, 0, False, -1) for p in said] + inner[j1:]
    rows = left + inner + right
    return Plan(
        _ids([r[0] for r in rows]),
        torch.tensor([r[1] for r in rows], dtype=torch.long),
        torch.tensor([r[2] for r in rows], dtype=torch.bool),
        torch.tensor([r[3] for r in rows], dtype=torch.long),
    )


def _durations(models: Models, plan: Plan, scale: float) -> torch.Tensor:
    if bool(plan.known.all()):
        return plan.durations
    if models.duration is None:
        raise NotReadyError(
            "this checkpoint has no duration model (duration.pt); train it with "
            "`voicebox train --part duration`"
        )
    from .duration import predict_durations

    return predict_durations(models.duration, plan.phone_ids, plan.durations, plan.known, scale)


def _realize(
    plan: Plan, durations: torch.Tensor, ctx_mel: torch.Tensor | None, n_mels: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
    """Frame phones [T], context mel [T, n_mels], generation mask [T] and the copied runs
    (output frame, context frame, length)."""
    frame_phones = torch.repeat_interleave(plan.phone_ids, durations)
    total = int(durations.sum())
    mel = torch.zeros(total, n_mels)
    gen = torch.ones(total, dtype=torch.bool)
    runs: list[tuple[int, int, int]] = []
    pos = 0
    for j in range(len(plan.phone_ids)):
        d, src = int(durations[j]), int(plan.source[j])
        if src >= 0 and ctx_mel is not None and d > 0:
            mel[pos : pos + d] = ctx_mel[src : src + d]
            gen[pos : pos + d] = False
            if runs and runs[-1][0] + runs[-1][2] == pos and runs[-1][1] + runs[-1][2] == src:
                runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + d)
            else:
                runs.append((pos, src, d))
        pos += d
    return frame_phones, mel, gen, runs


def _splice(
    generated: np.ndarray,
    context: np.ndarray | None,
    runs: list[tuple[int, int, int]],
    fade: int = 160,
) -> np.ndarray:
    """Put the context's own samples back where its frames were copied, with short equal-power fades,
    so kept speech is the original recording rather than a vocoded copy."""
    out = generated.copy()
    if context is None:
        return out
    hop = MEL.hop
    for dst, src, n in runs:
        a, b = dst * hop, min((dst + n) * hop, out.shape[0])
        s = src * hop
        piece = context[s : s + (b - a)]
        b = a + piece.shape[0]
        if b <= a:
            continue
        w = np.ones(b - a, dtype=np.float32)
        f = min(fade, (b - a) // 2)
        if f > 0:
            ramp = np.sin(np.linspace(0, np.pi / 2, f, dtype=np.float32)) ** 2
            if a > 0:
                w[:f] = ramp
            if b < out.shape[0]:
                w[-f:] = ramp[::-1]
        out[a:b] = w * piece + (1 - w) * out[a:b]
    return out


def _run(
    models: Models,
    plan: Plan,
    ctx_mel: torch.Tensor | None,
    ctx_wave: np.ndarray | None,
    nfe: int,
    guidance: float,
    solver: str,
    seed: int | None,
    duration_scale: float,
    splice: bool,
    keep_from: Callable[[torch.Tensor], int] | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """Generate and vocode the plan. With `keep_from` (durations → first frame wanted) only the
    frames from there on are vocoded (after a short lead-in for the phase) and returned."""
    durations = _durations(models, plan, duration_scale)
    cfg = models.config.model
    frame_phones, mel, gen, runs = _realize(plan, durations, ctx_mel, cfg.n_mels)
    out_mel = generate_mel(models.audio, cfg, frame_phones, mel, gen, nfe, guidance, solver, seed)
    if keep_from is not None:  # e.g. zero-shot: the prompt's frames are never heard
        first = max(0, min(int(keep_from(durations)), out_mel.shape[0] - 1))
        lead = min(first, LEAD_IN_FRAMES)
        wave = np.asarray(models.vocode(out_mel[first - lead :]), dtype=np.float32).reshape(-1)
        return np.clip(wave[lead * MEL.hop :], -1.0, 1.0), durations
    wave = np.asarray(models.vocode(out_mel), dtype=np.float32).reshape(-1)
    # T centred frames cover (T - 1) hops plus the context's own tail (under one hop) when there is one.
    tail = 0
    if ctx_wave is not None and ctx_mel is not None:
        tail = max(0, ctx_wave.shape[0] - (ctx_mel.shape[0] - 1) * MEL.hop)
    length = (out_mel.shape[0] - 1) * MEL.hop + tail
    wave = np.pad(wave, (0, max(0, length - wave.shape[0])))[:length]
    if splice:
        wave = _splice(wave, ctx_wave, runs)
    return np.clip(wave, -1.0, 1.0), durations


def _prepare(
    nfe: int, guidance: float, solver: str, duration_scale: float, checkpoint_name: str | None
) -> Models:
    if solver not in SOLVERS:
        raise InputError(f"unknown ODE solver {solver!r}: choose euler or midpoint")
    if not 1 <= nfe <= 1000:
        raise InputError("nfe must be between 1 and 1000")
    if not 0 <= guidance <= 10:
        raise InputError("guidance must be between 0 and 10")
    if not 0.25 <= duration_scale <= 4:
        raise InputError("duration_scale must be between 0.25 and 4")
    # The model is the one heavy engine that gains from more threads in one stream: unless
    # VOICEBOX_THREADS says otherwise it takes the machine's cores (up to 4).
    torch.set_num_threads(threads() if env("threads") else min(4, os.cpu_count() or 1))
    return load_models(checkpoint_name)


def infill(
    text: str,
    context: Audio | None = None,
    mask: MaskSpec = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    solver: str = "midpoint",
    seed: int | None = None,
    *,
    context_text: str | None = None,
    duration_scale: float = DURATION_SCALE,
    splice: bool = True,
    checkpoint_name: str | None = None,
) -> Audio:
    """Speak `text` (the whole output's transcript) at 16 kHz. Without a context this is plain TTS; with
    one, everything the new text shares with the context's transcript (context_text, else whisper's)
    and that lies outside `mask` ((start, end) seconds, or a frame mask) is kept, the rest generated."""
    models = _prepare(nfe, guidance, solver, duration_scale, checkpoint_name)
    if context is None:
        new_phones = spoken_phones(text, None)
        n = len(new_phones)
        plan = Plan(
            _ids(new_phones),
            torch.zeros(n, dtype=torch.long),
            torch.zeros(n, dtype=torch.bool),
            torch.full((n,), -1, dtype=torch.long),
        )
        wave, _ = _run(
            models, plan, None, None, nfe, guidance, solver, seed, duration_scale, splice=False
        )
        return provenance.mark(Audio(wave[None], MEL.rate))
    ctx = _mono16k(context)
    ctx_mel = audio_to_mel(ctx)
    aligned = _align(ctx, context_text)
    new_phones = spoken_phones(text, aligned)
    masked = mask_frames(mask, ctx_mel.shape[0])
    plan = plan_infill(new_phones, aligned.phones, aligned.durations, masked)
    wave, _ = _run(
        models, plan, ctx_mel, ctx.samples[0], nfe, guidance, solver, seed, duration_scale, splice
    )
    return _mark_generated(Audio(wave[None], MEL.rate), ctx.samples[0])


def _mark_generated(audio: Audio, context: np.ndarray) -> Audio:
    """Watermark what differs from the context: the kept head and tail stay bit-identical."""
    out = audio.samples[0]
    n = min(out.size, context.size)
    head = int(np.argmax(out[:n] != context[:n])) if np.any(out[:n] != context[:n]) else n
    same_tail = out[::-1][:n] == context[::-1][:n]
    tail = int(np.argmax(~same_tail)) if not same_tail.all() else n
    start, end = head / audio.rate, (out.size - tail) / audio.rate
    return provenance.mark(audio, start, end) if end > start else audio


def _mono16k(audio: Audio) -> Audio:
    x = audio.to_rate(MEL.rate) if audio.rate != MEL.rate else audio
    return Audio(x.mono()[None], MEL.rate)


def zero_shot(
    text: str,
    reference: Audio,
    reference_text: str | None = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    solver: str = "midpoint",
    seed: int | None = None,
    *,
    duration_scale: float = DURATION_SCALE,
    max_reference_s: float = 10.0,
    checkpoint_name: str | None = None,
) -> Audio:
    """Speak `text` in the reference's voice and conditions: the prompt is reference + new text, only
    the new part is generated and returned (reference transcribed with whisper when no text is given)."""
    models = _prepare(nfe, guidance, solver, duration_scale, checkpoint_name)
    ref = _mono16k(reference)
    ref_mel = audio_to_mel(ref)
    aligned = _align(ref, reference_text)
    new_phones = spoken_phones(text, None)
    if aligned.phones[-1] == "SIL" and new_phones[0] == "SIL":
        new_phones = new_phones[1:]  # the reference's closing pause separates the two (and `gap`)
    ref_phones, ref_durs = aligned.phones, aligned.durations
    starts = np.concatenate([[0], np.cumsum(ref_durs)[:-1]]).astype(int)
    first = 0  # keep at most max_reference_s of the prompt, cut at a phone boundary
    limit = int(max_reference_s * MEL.fps)
    while sum(ref_durs[first:]) > limit and first < len(ref_phones) - 1:
        first += 1
    ref_phones, ref_durs, starts = ref_phones[first:], ref_durs[first:], starts[first:]
    new_durs, new_known = [0] * len(new_phones), [False] * len(new_phones)
    pause = round(float(env("zero_shot_pause", str(ZERO_SHOT_PAUSE)) or 0) * MEL.fps)
    gap = max(0, pause - (ref_durs[-1] if ref_phones[-1] == "SIL" else 0))
    if gap:  # a sentence break between the prompt and the new words, never heard itself
        if new_phones[0] == "SIL":
            new_phones, new_durs, new_known = new_phones[1:], new_durs[1:], new_known[1:]
        new_phones, new_durs, new_known = ["SIL", *new_phones], [gap, *new_durs], [True, *new_known]
    n_ref, n_new = len(ref_phones), len(new_phones)
    plan = Plan(
        _ids(list(ref_phones) + new_phones),
        torch.tensor(list(ref_durs) + new_durs, dtype=torch.long),
        torch.tensor([True] * n_ref + new_known),
        torch.tensor(list(starts) + [-1] * n_new, dtype=torch.long),
    )
    wave, _ = _run(
        models,
        plan,
        ref_mel,
        None,
        nfe,
        guidance,
        solver,
        seed,
        duration_scale,
        splice=False,
        keep_from=lambda durations: int(durations[:n_ref].sum()) + gap,
    )
    return provenance.mark(Audio(wave[None], MEL.rate))


def variations(
    text: str,
    context: Audio | None = None,
    mask: MaskSpec = None,
    n: int = 3,
    seed: int | None = None,
    **kwargs: object,
) -> list[Audio]:
    """`n` different renditions of the same infill (different noise seeds): pick the one you like."""
    if not 1 <= n <= 64:
        raise InputError("n must be between 1 and 64")
    base = int(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, (1,)))
    return [infill(text, context, mask, seed=base + i, **kwargs) for i in range(n)]


def respeak(
    context: Audio,
    start: float,
    end: float,
    text: str | None = None,
    *,
    context_text: str | None = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    solver: str = "midpoint",
    seed: int | None = None,
    duration_scale: float = DURATION_SCALE,
    checkpoint_name: str | None = None,
) -> Audio:
    """`context` (at 16 kHz) with [start, end) seconds spoken anew: `text` there, or by default the
    same words again (a span a noise ruined). Phones outside the span, and pauses and phones mostly
    outside it at its edges, keep the context's alignment, so the audio around it keeps its place."""
    models = _prepare(nfe, guidance, solver, duration_scale, checkpoint_name)
    ctx = _mono16k(context)
    ctx_mel = audio_to_mel(ctx)
    aligned = _align(ctx, context_text)
    masked = mask_frames([(start, end)], ctx_mel.shape[0])
    said = None
    if text is not None:
        said = spoken_phones(text, None)
        while said and said[0] == "SIL":
            said = said[1:]
        while said and said[-1] == "SIL":
            said = said[:-1]
    plan = plan_respeak(aligned.phones, aligned.durations, masked, said)
    wave, _ = _run(
        models, plan, ctx_mel, ctx.samples[0], nfe, guidance, solver, seed, duration_scale, True
    )
    return Audio(wave[None], MEL.rate)
