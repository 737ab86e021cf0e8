"""Edit a recording by its words: replace, delete or insert phrases, or diff an edited transcript.

The recording is transcribed, each edit becomes a span of words, the span's edges move to the
quietest nearby point, and the new words are spoken by the nearest-sounding bundled voice matched to
the speaker (rate, pitch, loudness, tilt, room noise), then spliced in with short equal-power
crossfades. Every sample outside the edited spans is copied from the input unchanged.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import provenance
from ..audio import Audio, check_samples
from ..errors import EngineError, InputError, NotReadyError, VoiceboxError
from ..progress import Progress
from . import match
from .transcribe import Transcript

ENGINES = ("stock", "voicebox")
CROSSFADE_S = 0.008
MIN_PAD_S = 0.02
INSERT_GAP_S = 0.0  # the words come cut from a phrase, with its own joins
NEIGHBOUR_S = 3.0
SEARCH_S = 0.12  # how far from whisper's word boundary to look for a quiet cut point
ALIGNED_SEARCH_S = 0.05  # the same after forced alignment, which is far more precise
PROTECT_S = 0.015  # how far a cut may reach into an aligned word that is kept
MAX_NEW_CHARS = 1000


@dataclass
class Step:
    """One edit: which words go, what is spoken instead, and where (seconds)."""

    kind: str
    old: str
    new: str
    cut_start: float
    cut_end: float
    out_start: float | None = None
    out_end: float | None = None
    generated: float | None = None
    voice: str | None = None
    similarity: float | None = None


@dataclass
class EditPlan:
    """What an edit does: the source and edited text, each step's times, and the voice used."""

    source_text: str
    edited_text: str
    steps: list[Step]
    voice: str | None = None
    similarity: float | None = None
    speed: float | None = None
    semitones: float | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict of the plan."""
        return asdict(self)

    def describe(self) -> str:
        """Human-readable lines: one per step, then the voice match."""
        lines = [f"source: {self.source_text}", f"edited: {self.edited_text}"]
        for s in self.steps:
            cut = f"cut {s.cut_start:.3f}-{s.cut_end:.3f} s"
            what = {"replace": f"replace {s.old!r} with {s.new!r}", "delete": f"delete {s.old!r}"}
            line = f"{what.get(s.kind, f'insert {s.new!r}')}: {cut}"
            if s.out_start is not None:
                line += f"; new audio at {s.out_start:.3f}-{s.out_end:.3f} s of the output"
                if s.generated:
                    line += f" ({s.generated:.2f} s generated"
                    line += f" by {s.voice})" if s.voice else ")"
            lines.append(line)
        if self.voice:
            lines.append(
                f"voice: {self.voice} (similarity {self.similarity:.2f}), speed {self.speed:.2f}, "
                f"pitch {self.semitones:+.1f} st"
            )
        return "\n".join(lines)


@dataclass
class EditResult:
    """The edited audio (None for a plan-only run) and the plan that produced it."""

    audio: Audio | None
    plan: EditPlan


@dataclass
class _Edit:
    first: int  # index of the first word replaced (or the insertion point)
    stop: int  # one past the last word replaced (== first for an insertion)
    new: str
    kind: str


def normalize(word: str) -> str:
    """A word as compared between transcript and phrases: lower case, letters/digits/apostrophes."""
    return re.sub(r"[^\w']+", "", word.lower().replace("’", "'")).strip("'")


def tokens(text: str) -> list[str]:
    """The comparable words of a phrase."""
    return [t for t in (normalize(w) for w in text.split()) if t]


def check_speakable(text: str, what: str = "new text") -> str:
    """Refuse text with nothing to say (empty, only symbols) or absurdly long; returns it tidied."""
    text = " ".join(str(text).split())
    if not re.search(r"[^\W_]", text):
        raise InputError(f"{what} {text!r} has no words to speak")
    if len(text) > MAX_NEW_CHARS:
        raise InputError(f"{what} is {len(text)} characters; at most {MAX_NEW_CHARS} per edit")
    return text


def _find(words: list[str], phrase: str, occurrence: int | None, spoken: list[str]) -> int:
    """Index of the first word of `phrase` in the transcript, with actionable errors."""
    want = tokens(phrase)
    if not want:
        raise InputError(f"phrase {phrase!r} has no words to look for")
    n = len(want)
    hits = [i for i in range(len(words) - n + 1) if words[i : i + n] == want]
    if not hits:
        grams = list(dict.fromkeys(" ".join(words[i : i + n]) for i in range(len(words) - n + 1)))
        near = difflib.get_close_matches(" ".join(want), grams, n=3, cutoff=0.4)
        hint = (
            "nearest: " + ", ".join(repr(g) for g in near)
            if near
            else f"transcript: {' '.join(spoken)[:120]!r}"
        )
        raise InputError(f"{phrase!r} is not in the recording's transcript; {hint}")
    if occurrence is None:
        if len(hits) > 1:
            raise InputError(
                f"{phrase!r} occurs {len(hits)} times; choose one with --occurrence 1..{len(hits)}"
            )
        return hits[0]
    if not 1 <= occurrence <= len(hits):
        raise InputError(
            f"--occurrence {occurrence}: {phrase!r} occurs {len(hits)} time(s) in the recording"
        )
    return hits[occurrence - 1]


def _edits_from_ops(
    words: list[str],
    spoken: list[str],
    replace: list[tuple[str, str]],
    delete: list[str],
    insert_after: list[tuple[str, str]],
    occurrence: int | None,
) -> list[_Edit]:
    edits = []
    for old, new in replace:
        i = _find(words, old, occurrence, spoken)
        edits.append(_Edit(i, i + len(tokens(old)), new, "replace"))
    for old in delete:
        i = _find(words, old, occurrence, spoken)
        edits.append(_Edit(i, i + len(tokens(old)), "", "delete"))
    for phrase, new in insert_after:
        i = _find(words, phrase, occurrence, spoken) + len(tokens(phrase))
        edits.append(_Edit(i, i, new, "insert"))
    return edits


def _edits_from_text(words: list[str], edited: str) -> list[_Edit]:
    raw = edited.split()
    pairs = [(normalize(w), w) for w in raw]
    pairs = [(t, w) for t, w in pairs if t]
    target = [t for t, _ in pairs]
    ops = difflib.SequenceMatcher(None, words, target, autojunk=False).get_opcodes()
    edits = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        new = " ".join(w for _, w in pairs[j1:j2])
        kind = {"replace": "replace", "delete": "delete", "insert": "insert"}[tag]
        edits.append(_Edit(i1, i2, new, kind))
    return edits


def _merge(edits: list[_Edit]) -> list[_Edit]:
    """Sort edits; join ones that touch; refuse ones that overlap."""
    edits = sorted(edits, key=lambda e: (e.first, e.stop))
    out: list[_Edit] = []
    for e in edits:
        if out and e.first < out[-1].stop:
            raise InputError("two edits overlap the same words; combine them into one edit")
        if out and e.first == out[-1].stop and (e.first < e.stop or out[-1].first < out[-1].stop):
            prev = out.pop()
            new = " ".join(p for p in (prev.new, e.new) if p)
            e = _Edit(prev.first, e.stop, new, "replace" if new else "delete")
        elif out and e.first == out[-1].stop:
            prev = out.pop()
            e = _Edit(prev.first, e.stop, f"{prev.new} {e.new}", "insert")
        out.append(e)
    return out


@dataclass
class _Bound:
    cut: int  # sample where the cut goes
    pause_start: int  # the pause (quiet run) around it, in samples
    pause_end: int


def _boundary(
    k: int,
    times: list[tuple[float, float]],
    db: np.ndarray,
    thr: float,
    search: float,
    protect: str = "",
) -> tuple[int, int, int]:
    """Frames (point, pause start, pause end) of the quietest point between word k-1 and word k.

    `protect` ("left" or "right") keeps the search out of a word that must stay whole: a stop
    closure inside the kept word is often quieter than the true word boundary.
    """
    nf = len(db)
    if k == 0:
        t, lo_t, hi_t = times[0][0], times[0][0] - 0.3, times[0][0] + 0.08
    elif k == len(times):
        t, lo_t, hi_t = times[-1][1], times[-1][1] - 0.08, times[-1][1] + 0.3
    else:
        (s_a, e_a), (s_b, e_b) = times[k - 1], times[k]
        t = (e_a + s_b) / 2
        back = PROTECT_S if protect == "left" else search
        ahead = PROTECT_S if protect == "right" else search
        lo_t = max(min(e_a, s_b) - back, (s_a + e_a) / 2)
        hi_t = min(max(e_a, s_b) + ahead, (s_b + e_b) / 2)
    fps = 1.0 / match.FRAME_S
    lo = int(np.clip(lo_t * fps, 0, max(nf - 1, 0)))
    hi = int(np.clip(hi_t * fps, lo + 1, nf))
    smooth = np.convolve(db, np.ones(3) / 3, mode="same") if nf >= 3 else db
    idx = np.arange(lo, hi)
    cost = smooth[lo:hi] + 0.2 * np.abs(idx - t * fps)
    g = int(idx[np.argmin(cost)]) if nf else 0
    s0 = s1 = g
    if nf and db[g] < thr:
        while s0 > 0 and db[s0 - 1] < thr:
            s0 -= 1
        while s1 < nf - 1 and db[s1 + 1] < thr:
            s1 += 1
        s1 += 1
    return g, s0, s1


def _align(audio: Audio, spoken: list[str]) -> list[tuple[float, float]] | None:
    """(start, end) seconds of each of `spoken` in `audio` by forced alignment; None if it fails."""
    from ..model.align import align_words
    from ..model.phones import g2p_words

    try:
        counts = [sum(1 for w, _ in g2p_words(word) if w) for word in spoken]
        _, _, aligned = align_words(audio, " ".join(spoken))
    except (VoiceboxError, ValueError):
        return None
    if len(aligned) != sum(counts) or 0 in counts:
        return None
    out, i = [], 0
    for n in counts:
        out.append((aligned[i].start, aligned[i + n - 1].end))
        i += n
    return out


def _refine(audio: Audio, spoken: list[str], times: list[tuple[float, float]], k: int) -> set[int]:
    """Replace whisper's rough times of the words around boundary k by a local forced alignment."""
    lo, hi = max(0, k - 3), min(len(spoken), k + 3)
    start = max(0.0, times[lo][0] - 0.3 if lo else 0.0)
    end = min(audio.duration, times[hi - 1][1] + 0.3 if hi < len(spoken) else audio.duration)
    a, b = int(start * audio.rate), int(end * audio.rate)
    aligned = _align(Audio(audio.samples[:, a:b], audio.rate), spoken[lo:hi])
    if aligned is None:
        return set()
    # Keep only the words well inside the window: the edge words may be cut by the window.
    done = set()
    for i, (s, e) in enumerate(aligned, start=lo):
        if (i > lo or lo == 0) and (i < hi - 1 or hi == len(spoken)):
            times[i] = (start + s, start + e)
            done.add(i)
    return done


def _bounds(
    audio: Audio, words: list, needed: dict[int, str]
) -> tuple[dict[int, _Bound], np.ndarray, float]:
    x = audio.mono()
    hop = int(match.FRAME_S * audio.rate)
    db = match.frame_db(x, audio.rate)
    thr = match.silence_threshold(db)
    times = [(w.start, w.end) for w in words]
    spoken = [w.text for w in words]
    refined: set[int] = set()
    for k in sorted(needed):
        refined |= _refine(audio, spoken, times, k)
    out = {}
    for k in needed:
        sure = {k - 1, k} & set(range(len(words))) <= refined
        if sure:
            g, s0, s1 = _boundary(k, times, db, thr, ALIGNED_SEARCH_S, needed[k])
        else:
            g, s0, s1 = _boundary(k, times, db, thr, SEARCH_S)
        out[k] = _Bound(
            min(g * hop + hop // 2, audio.frames),
            min(s0 * hop, audio.frames),
            min(s1 * hop, audio.frames),
        )
    return out, db, thr


def _context(spoken: list[str], e: _Edit, n: int = 2) -> list[str]:
    """Up to `n` words before an edit, within its sentence, to speak the new words after.

    Words spoken after a lead-in get phrase-internal prosody; a context after them is not used
    because its onset bleeds into the cut (measured: "wild honey" became "wild punny").
    """
    left: list[str] = []
    for word in reversed(spoken[max(0, e.first - n) : e.first]):
        if re.search(r"[.!?]$", word):
            break
        left.insert(0, word)
    return left


def _speak(new: str, left: list[str], voice: match.VoiceSpec, speed: float) -> Audio:
    """The new words spoken inside their neighbours (for natural phrasing), cut out at quiet points."""
    from ..engines import tts

    middle = new.split()
    if left:
        said = left + middle
        audio = tts.synthesize(" ".join(said), voice, speed=speed)
        times = _align(audio, said)
        if times is not None:
            db = match.frame_db(audio.mono(), audio.rate)
            thr = match.silence_threshold(db)
            hop = int(match.FRAME_S * audio.rate)
            a = _boundary(len(left), times, db, thr, ALIGNED_SEARCH_S, protect="right")[0]
            start = a * hop + hop // 2
            if audio.frames - start > int(0.05 * audio.rate):
                return Audio(match.trim(audio.samples[0, start:], audio.rate), audio.rate)
    alone = tts.synthesize(new, voice, speed=speed)
    return Audio(match.trim(alone.mono(), alone.rate), alone.rate)


def _generate(
    text: str,
    context: list[str],
    engine: str,
    voice: match.VoiceSpec,
    speed: float,
    rate: int,
) -> np.ndarray:
    """Mono speech for `text` at `rate`, from a stock voice or our Voicebox model."""
    if engine == "voicebox":  # edit() infills in context instead; kept for direct callers
        import voicebox.model as vm

        try:
            audio = vm.infill(text)
        except VoiceboxError:
            raise
        except Exception as exc:  # the model is another component: report, do not crash
            raise EngineError(f"voicebox model failed to speak {text!r}: {exc}") from None
    else:
        audio = _speak(text, context, voice, speed)
    return audio.to_rate(rate).mono() if audio.rate != rate else audio.mono()


def _infill_available() -> bool:
    """Whether our Voicebox model package offers `infill` (it may still lack a checkpoint)."""
    try:
        import voicebox.model as vm
    except ImportError:
        return False
    return hasattr(vm, "infill")


def _require_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'; use one of {', '.join(ENGINES)}")
    if engine == "voicebox" and not _infill_available():
        raise NotReadyError(
            "the voicebox model cannot infill yet (no trained checkpoint); use --engine stock"
        )
    if engine == "voicebox":
        from .regenerate import require_model

        require_model()  # NotReadyError (one line) when no checkpoint is found


def _span(bounds: dict[int, _Bound], e: _Edit, n: int, rate: int) -> tuple[int, int, int, int]:
    """Cut [a, b) in samples plus the lead and trail pause (samples) the new words need."""
    fade = int(CROSSFADE_S * rate)
    if e.first == e.stop:
        bd = bounds[e.first]
        run = bd.pause_end - bd.pause_start
        a = b = bd.pause_start + min(int(0.03 * rate), run // 2) if run else bd.cut
        lead = trail = int(INSERT_GAP_S * rate)
    else:
        start, stop = bounds[e.first], bounds[e.stop]
        a = (start.pause_start + start.pause_end) // 2 if start.pause_end > start.cut else start.cut
        b = (stop.pause_start + stop.pause_end) // 2 if stop.pause_end > stop.cut else stop.cut
        b = max(a, b)
        lead = max(start.pause_end - a, 0)
        trail = max(b - stop.pause_start, 0) if stop.pause_end > stop.cut else 0
    if b - a < 2 * fade:
        c = (a + b) // 2
        a, b = max(0, c - fade), min(n, c + fade)
    minimum = int(MIN_PAD_S * rate)
    return a, b, max(lead, minimum), max(trail, minimum)


def _untouched(audio: Audio, spans: list[tuple[int, int]]) -> Audio:
    keep = np.ones(audio.frames, bool)
    for a, b in spans:
        keep[a:b] = False
    return Audio(audio.samples[:, keep], audio.rate)


def _neighbours(audio: Audio, a: int, b: int) -> np.ndarray:
    w = int(NEIGHBOUR_S * audio.rate)
    x = audio.mono()
    return np.concatenate([x[max(0, a - w) : a], x[b : b + w]])


def _shape(
    speech: np.ndarray, rate: int, near: np.ndarray, m: match.Match, lead: int, trail: int
) -> np.ndarray:
    """Pitch-shift, tilt and level the synthetic words like their neighbours; add the pauses."""
    y = match.fade(speech, rate)
    if y.size == 0 or not np.any(y):
        raise EngineError("the voice produced no audible speech for the new words")
    y = match.pitch_shift(y, rate, m.semitones)
    delta = match.spectral_slope(near, rate) - match.spectral_slope(y, rate)
    y = match.tilt(y, rate, float(np.clip(delta, -match.TILT_LIMIT, match.TILT_LIMIT)))
    y = y * 10 ** ((match.active_rms_db(near, rate) - match.active_rms_db(y, rate)) / 20)
    peak = float(np.abs(y).max())
    if peak > 0.99:
        y *= 0.99 / peak
    return np.concatenate([np.zeros(lead, np.float32), y, np.zeros(trail, np.float32)])


def _splice(orig: np.ndarray, a: int, b: int, piece: np.ndarray, fade: int) -> np.ndarray:
    """The samples replacing orig[a:b]: `piece` with equal-power crossfades into orig at both ends."""
    theta = np.linspace(0, np.pi / 2, fade, dtype=np.float64)
    fade_in, fade_out = np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)
    head, tail = orig[:, a : a + fade], orig[:, b - fade : b]
    if piece.shape[1] == 0:
        return head * fade_out + tail * fade_in
    x = piece.copy()
    x[:, :fade] = head * fade_out + x[:, :fade] * fade_in
    x[:, -fade:] = x[:, -fade:] * fade_out + tail * fade_in
    return x


def _render(
    text: str,
    context: list[str],
    engine: str,
    options: list[match.Match],
    embedding: np.ndarray | None,
    near: np.ndarray,
    lead: int,
    trail: int,
    rate: int,
) -> tuple[match.Match, np.ndarray]:
    """Speak `text` with each option and keep the rendition that is heard right and, among those,
    sounds most like the speaker.

    Heard right: whisper finds the new words in the rendition (an accented voice can turn "milk"
    into "nook"). The likeness is the speaker embedding of the shaped words against the speaker's:
    ranking voices by a reference sentence alone often mis-ranks them on the actual words.
    """
    best: tuple[tuple[float, float], match.Match, np.ndarray] | None = None
    for opt in options:
        speech = _generate(text, context, engine, opt.voice, opt.speed, rate)
        mono = _shape(speech, rate, near, opt, lead, trail)
        if len(options) == 1 or embedding is None:
            return opt, mono
        from ..engines import speaker

        score = speaker.similarity(speaker.embed(Audio(mono, rate)), embedding)
        key = (_heard_share(text, mono, rate), score)
        if best is None or key > best[0]:
            best = (key, opt, mono)
    assert best is not None
    (_, score), opt, mono = best
    return match.Match(opt.voice, score, opt.speed, opt.semitones, opt.candidates), mono


def _heard_share(text: str, mono: np.ndarray, rate: int) -> float:
    """The share of `text`'s words that whisper hears in a rendition of it."""
    from ..engines.asr import transcribe_text
    from ..text import normalize

    def words(s: str) -> list[str]:  # "50" and "fifty" are the same word here
        return re.sub(r"[^a-z' ]", " ", normalize(s).lower().replace("-", " ")).split()

    wanted = words(text)
    if not wanted:
        return 1.0
    heard = set(words(transcribe_text(Audio(mono[None, :], rate))))
    return sum(w in heard for w in wanted) / len(wanted)


def _infill_in_context(audio: Audio, words: list, a: int, b: int, new: str) -> np.ndarray:
    """The samples replacing audio[:, a:b] when our Voicebox model speaks `new` there, with the
    recording around the cut as its context (voice, room and prosody come from the context)."""
    from .regenerate import regenerate_piece

    timed = [(w.text, w.start, w.end) for w in words]
    return regenerate_piece(audio, a, b, new.split(), timed)


def edit(
    audio: Audio,
    replace: list[tuple[str, str]] | None = None,
    delete: list[str] | None = None,
    insert_after: list[tuple[str, str]] | None = None,
    transcript: str | None = None,
    occurrence: int | None = None,
    plan_only: bool = False,
    engine: str = "stock",
    progress: Progress | None = None,
    exclude_voices: tuple[str, ...] | list[str] = (),
    voice: match.VoiceSpec | None = None,
    source: Transcript | None = None,
) -> EditResult:
    """Change what is said in a recording while keeping every untouched sample as it was.

    `transcript` is the full edited text (diffed word by word against the recording); `voice` forces
    a voice instead of searching for the nearest; `source` reuses a transcript of `audio`.
    """
    replace = [(o, check_speakable(n)) for o, n in (replace or [])]
    delete = list(delete or [])
    insert_after = [(p, check_speakable(n)) for p, n in (insert_after or [])]
    if transcript is not None:
        transcript = check_speakable(transcript, "edited transcript")
    if not (replace or delete or insert_after or transcript is not None):
        raise InputError(
            "nothing to edit: give --replace, --delete, --insert-after or --transcript"
        )
    if transcript is not None and (replace or delete or insert_after):
        raise InputError("use either an edited transcript or --replace/--delete/--insert-after")
    if occurrence is not None and occurrence < 1:
        raise InputError("--occurrence counts from 1")
    _require_engine(engine)
    check_samples(audio.samples, audio.rate)
    exclude = tuple(exclude_voices)

    from .transcribe import transcribe

    report = progress or (lambda done, total: None)
    src = source or transcribe(audio)
    report(1, 4)
    words = src.words
    spoken = [w.text for w in words]
    keys = [normalize(w) for w in spoken]
    if not words:
        raise InputError("no speech was recognised in the recording; nothing to edit")
    if transcript is not None:
        edits = _edits_from_text(keys, transcript)
    else:
        edits = _edits_from_ops(keys, spoken, replace, delete, insert_after, occurrence)
    edits = _merge(edits)
    if not edits:
        raise InputError("the edited transcript says the same as the recording; nothing to change")
    pieces, cursor = [], 0
    for e in edits:
        pieces += spoken[cursor : e.first] + ([e.new] if e.new else [])
        cursor = e.stop
    pieces += spoken[cursor:]
    edited_text = " ".join(pieces)

    needed: dict[int, str] = {}
    for e in edits:  # a cut keeps the word before its start and the word after its end whole
        for k, side in ((e.first, "left"), (e.stop, "right")):
            needed[k] = side if needed.get(k, side) == side and e.first < e.stop else ""
    bounds, _, _ = _bounds(audio, words, needed)
    spans = [_span(bounds, e, audio.frames, audio.rate) for e in edits]
    for (_, end, _, _), (start, _, _, _) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise InputError("two edits are too close together to splice; combine them into one")
    steps = [
        Step(e.kind, " ".join(spoken[e.first : e.stop]), e.new, a / audio.rate, b / audio.rate)
        for e, (a, b, _, _) in zip(edits, spans, strict=True)
    ]
    plan = EditPlan(src.text, edited_text, steps)
    if plan_only:
        return EditResult(None, plan)

    rate = audio.rate
    untouched = _untouched(audio, [(a, b) for a, b, _, _ in spans])
    cut_words = {i for e in edits for i in range(e.first, e.stop)}
    untouched_letters = sum(match.letters(w) for i, w in enumerate(spoken) if i not in cut_words)
    if engine == "voicebox":  # the model takes the voice from the context itself
        m = match.Match("voicebox", float("nan"), 1.0, 0.0, [])
    elif voice is None:
        target = match.measure(untouched, untouched_letters)
        spec, _, ranked = match.nearest_voice(target.embedding, exclude)
        m = match.tune(target, spec, ranked)
    else:
        m = match.choose(untouched, untouched_letters, default=voice)
    plan.candidates = m.candidates
    report(2, 4)

    fade = int(CROSSFADE_S * rate)
    out, pos, shift = [], 0, 0
    chosen: dict[int, match.Match] = {}
    for n_done, (e, (a, b, lead, trail), step) in enumerate(zip(edits, spans, steps, strict=True)):
        out.append(audio.samples[:, pos:a])
        if e.new and engine == "voicebox":
            joined = _infill_in_context(audio, words, a, b, e.new)
            step.voice, step.generated = "voicebox", round(joined.shape[1] / rate, 3)
            step.similarity = m.similarity  # not measured: the model takes the voice from context
        else:
            piece = np.zeros((audio.channels, 0), np.float32)
            if e.new:
                near = _neighbours(audio, a, b)
                options, embedding = [m], None
                if engine == "stock" and voice is None:
                    options = [match.tune(target, v, m.candidates) for v in match.shortlist(m)]
                    embedding = target.embedding
                best, mono = _render(
                    e.new, _context(spoken, e), engine, options, embedding, near, lead, trail, rate
                )
                step.voice = match.voice_key(best.voice)
                step.similarity = round(best.similarity, 4)
                chosen[id(step)] = best
                piece = np.repeat(mono[None, :], audio.channels, axis=0)
                piece += match.noise_bed(untouched.samples, rate, piece.shape[1], seed=n_done)
                step.generated = round((len(mono) - lead - trail) / rate, 3)
            joined = _splice(audio.samples, a, b, piece, fade)
        step.out_start = (a + shift) / rate
        step.out_end = (a + shift + joined.shape[1]) / rate
        out.append(joined.astype(np.float32))
        shift += joined.shape[1] - (b - a)
        pos = b
        report(2 + 2 * (n_done + 1) / len(edits), 4)
    out.append(audio.samples[:, pos:])
    used = [s for s in steps if s.voice] or [None]
    first = used[0]
    plan.voice = first.voice if first else match.voice_key(m.voice)
    plan.similarity = first.similarity if first else m.similarity
    plan.speed, plan.semitones = m.speed, m.semitones
    if first is not None and id(first) in chosen:
        plan.speed, plan.semitones = chosen[id(first)].speed, chosen[id(first)].semitones
    result = Audio(np.concatenate(out, axis=1), rate)
    for step in steps:  # provenance: every generated span carries the watermark, nothing else does
        if step.generated and step.out_start is not None and step.out_end is not None:
            result = provenance.mark(result, step.out_start, step.out_end)
    return EditResult(result, plan)
