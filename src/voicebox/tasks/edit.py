"""Edit a recording by its words: replace, delete or insert phrases, or diff an edited transcript.

The recording is transcribed, each edit becomes a span of words, the span's edges move to the
quietest nearby point, and the new words are spoken by the nearest-sounding bundled voice matched to
the speaker (rate, pitch, loudness, tilt, room noise), then spliced in with short equal-power
crossfades. Every sample outside the edited spans is copied from the input unchanged.

Planning (`plan_edit`: words and phrases or an edited transcript become timed cuts, no audio made)
and rendering (`render_edit`: the new words spoken, shaped and spliced as patches) read the
recording only around each cut and from a bounded sample of the speaker, so `edit_file` edits a
file of any length in bounded memory, copying the untouched audio in blocks; `edit` does the same
for audio in memory, with the same samples as its result.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import dsp, provenance
from ..audio import STREAM_EXTS, Audio, check_samples
from ..errors import EngineError, InputError, NotReadyError, VoiceboxError
from ..progress import Progress
from . import match
from .options import EditOptions
from .recording import InMemory, OnDisk, Recording
from .transcribe import Transcript

CROSSFADE_S = 0.008
MIN_PAD_S = 0.02
INSERT_GAP_S = 0.0  # the words come cut from a phrase, with its own joins
NEIGHBOUR_S = 3.0
SEARCH_S = 0.12  # how far from whisper's word boundary to look for a quiet cut point
ALIGNED_SEARCH_S = 0.05  # the same after forced alignment, which is far more precise
PROTECT_S = 0.015  # how far a cut may reach into an aligned word that is kept


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
    kept: list[str] = field(default_factory=list)
    """Differences from a submitted transcript left as recorded: the recogniser's own mistakes."""

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
                    line += f" by {s.voice}" if s.voice else ""
                    line += f", similarity {_similarity_text(s.similarity)})"
            lines.append(line)
        lines += [f"kept: {k}" for k in self.kept]
        if not self.steps:
            lines.append("no changes: the transcript says what the recording says")
        if self.voice:
            sim = _similarity_text(self.similarity)
            lines.append(
                f"voice: {self.voice} (similarity {sim}), speed {self.speed or 1.0:.2f}, "
                f"pitch {self.semitones or 0.0:+.1f} st"
            )
        return "\n".join(lines)


def _similarity_text(value: float | None) -> str:
    """A similarity for people: two decimals, or n/a when it could not be measured."""
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2f}"


@dataclass
class EditResult:
    """The edited audio (None for a plan-only run, or once `edit_file` has written it to `path`)
    and the plan that produced it."""

    audio: Audio | None
    plan: EditPlan
    consent: provenance.ConsentRecord | None = None
    """Set when our model spoke in the recorded voice: the record `grant` wrote to the ledger."""
    path: Path | None = None
    """Where `edit_file` wrote the edited audio."""

    def save(self, path: str | os.PathLike[str], subtype: str | None = None) -> Path:
        """Write the edited audio, and beside it `<path>.provenance.json` when consent was used."""
        from ..audio import save

        if self.audio is None:
            raise InputError("a plan-only edit has no audio to save")
        written = save(self.audio, path, subtype=subtype)
        if os.fspath(path) != "-":
            self.write_sidecar(written)
        return written

    def write_sidecar(self, written: Path) -> None:
        """`<written>.provenance.json` when consent was used or words were generated: it names the
        generated ranges, since short ones hold too little watermark to find."""
        generated = [
            (s.out_start, s.out_end)
            for s in self.plan.steps
            if s.generated and s.out_start is not None and s.out_end is not None
        ]
        if self.consent is not None or generated:
            provenance.write_sidecar(written, self.consent, generated=generated)


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
    replace: tuple[tuple[str, str], ...],
    delete: tuple[str, ...],
    insert_after: tuple[tuple[str, str], ...],
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


def _spelled(words: list[str]) -> list[tuple[str, int]]:
    """Comparable tokens of `words` with the index of the word each came from: case and punctuation
    dropped, numbers and symbols spelled out ("50" and "fifty" compare equal)."""
    from ..text import normalize as spell

    out = []
    for i, word in enumerate(words):
        for t in spell(word).split():
            if t := normalize(t):
                out.append((t, i))
    return out


def _text_ops(spoken: list[str], edited: str) -> list[tuple[_Edit, list[str], list[str]]]:
    """The word-level differences between what the recogniser heard and the edited text.

    Each is an edit on whole recognised words, with the old and new comparable tokens. Token runs
    that touch or fall inside one recognised word are joined so every edit covers whole words.
    """
    raw = edited.split()
    heard, wanted = _spelled(spoken), _spelled(raw)
    owner = [i for _, i in heard]
    ops = difflib.SequenceMatcher(
        None, [t for t, _ in heard], [t for t, _ in wanted], autojunk=False
    ).get_opcodes()
    pieces = []
    for tag, ta, tb, ua, ub in ops:
        if tag == "replace" and tb - ta == ub - ua > 1:  # word for word: judge each on its own
            pieces += [(ta + k, ta + k + 1, ua + k, ua + k + 1) for k in range(tb - ta)]
        elif tag != "equal":
            pieces.append((ta, tb, ua, ub))
    spans: list[list[int]] = []  # token ranges [ta, tb) heard, [ua, ub) wanted
    for ta, tb, ua, ub in pieces:
        # widen to whole recognised words (the wanted side moves by the same equal tokens)
        while ta > 0 and ta < len(owner) and owner[ta - 1] == owner[ta]:
            ta, ua = ta - 1, ua - 1
        while 0 < tb < len(owner) and owner[tb - 1] == owner[tb]:
            tb, ub = tb + 1, ub + 1
        ua, ub = max(ua, 0), min(ub, len(wanted))
        if spans and ta < spans[-1][1]:
            spans[-1][1], spans[-1][3] = max(spans[-1][1], tb), max(spans[-1][3], ub)
        else:
            spans.append([ta, tb, ua, ub])
    out = []
    for ta, tb, ua, ub in spans:
        first = owner[ta] if ta < len(owner) else len(spoken)
        stop = owner[tb - 1] + 1 if tb > ta else first
        users = sorted({i for _, i in wanted[ua:ub]})
        whole = users and _spelled(raw[users[0] : users[-1] + 1]) == wanted[ua:ub]
        new = (
            " ".join(raw[users[0] : users[-1] + 1])
            if whole
            else " ".join(t for t, _ in wanted[ua:ub])
        )
        kind = "insert" if first == stop else "replace" if new else "delete"
        old_t = [t for t, _ in heard[ta:tb]]
        out.append((_Edit(first, stop, new, kind), old_t, [t for t, _ in wanted[ua:ub]]))
    return out


# A difference between the recognised words and the submitted text is taken for a recognition error
# the user left alone (not an edit) when forced alignment explains the audio at least as well with
# the submitted words, or the words sound alike: on 14 LibriSpeech test-other utterances with their
# true transcripts these rules kept 16 of 18 recognition errors out and every one of 28 real
# replacements in (bench/edit.py measures this on other recordings).
SOUNDS_ALIKE = 0.25  # phone edit distance (share of phones) of near-homophones ("guest", "guests")
ALIKE_SCORE = -450.0  # ... which forced alignment must not clearly reject
LOW_CONFIDENCE = 0.6  # the recogniser's word probability below which it was unsure
UNSURE_ALIKE = 0.5  # phone distance that an unsure word may differ by
VERY_UNSURE = 0.3
UNSURE_SCORE = -400.0


def _phones(tokens: list[str]) -> list[str]:
    from ..model.phones import word_phones

    try:
        return [p for t in tokens for p in word_phones(t)]
    except VoiceboxError:
        return list(tokens)


def _phone_distance(a: list[str], b: list[str]) -> float:
    """Levenshtein distance between two phone strings, as a share of the longer one."""
    pa, pb = _phones(a), _phones(b)
    row = list(range(len(pb) + 1))
    for i, x in enumerate(pa, 1):
        diag, row[0] = row[0], i
        for j, y in enumerate(pb, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (x != y))
    return row[-1] / max(len(pa), len(pb), 1)


def _score_gain(rec: Recording, words: list, e: _Edit, new: list[str]) -> float | None:
    """How much better (log-likelihood) forced alignment explains the audio around `e` with the
    submitted words than with the recognised ones; None when either alignment fails."""
    from ..model.align import score

    lo, hi = max(0, e.first - 2), min(len(words), e.stop + 2)
    start = max(0.0, words[lo].start - 0.1)
    end = min(rec.duration, words[hi - 1].end + 0.1)
    clip = rec.excerpt(int(start * rec.rate), int(end * rec.rate))
    keys = [normalize(w.text) for w in words]
    old = " ".join(k for k in keys[lo:hi] if k)
    said = " ".join(k for k in [*keys[lo : e.first], *new, *keys[e.stop : hi]] if k)
    try:
        return score(clip, said) - score(clip, old)
    except (VoiceboxError, ValueError, RuntimeError):  # pocketsphinx raises RuntimeError
        return None


def _misheard(rec: Recording, words: list, e: _Edit, old: list[str], new: list[str]) -> bool:
    """Whether a difference is the recogniser's mistake rather than the user's edit."""
    if not new:
        return False  # a deletion is always meant
    near = [w.probability for w in words[max(0, e.first - 1) : max(e.stop, e.first + 1)]]
    sure = min(near, default=1.0) if e.first < e.stop else 1.0
    alike = _phone_distance(old, new) if old else 1.0
    if sure < LOW_CONFIDENCE and alike <= UNSURE_ALIKE:
        return True
    gain = _score_gain(rec, words, e, new)
    if gain is None:
        return False
    return (
        gain >= 0
        or (alike <= SOUNDS_ALIKE and gain > ALIKE_SCORE)
        or (sure < VERY_UNSURE and gain > UNSURE_SCORE)
    )


def _edits_from_text(rec: Recording, words: list, edited: str) -> tuple[list[_Edit], list[str]]:
    """Edits that turn the recognised words into `edited`, and the differences left as recorded
    because they are the recogniser's mistakes (see `_misheard`)."""
    edits, kept = [], []
    for e, old, new in _text_ops([w.text for w in words], edited):
        if _misheard(rec, words, e, old, new):
            heard = " ".join(w.text for w in words[e.first : e.stop])
            kept.append(f"{heard!r} stays as recorded ({e.new!r} sounds the same there)")
        else:
            edits.append(e)
    return edits, kept


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


LEVEL_WINDOW_S = 30.0
"""Seconds either side of a cut whose frame levels set the pause threshold there (all of a
recording up to twice this long): a long recording is never analysed whole."""
EDGE_S = 10.0
"""At most this much of the recording before its first word (after its last) is force-aligned."""


def _boundary(
    k: int,
    times: list[tuple[float, float]],
    db: np.ndarray,
    thr: float,
    search: float,
    protect: str = "",
    off: int = 0,
) -> tuple[int, int, int]:
    """Frames (point, pause start, pause end) of the quietest point between word k-1 and word k;
    `db` holds the frame levels from frame `off` on.

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
    fps = 1.0 / dsp.FRAME_S
    lo = int(np.clip(lo_t * fps - off, 0, max(nf - 1, 0)))
    hi = int(np.clip(hi_t * fps - off, lo + 1, nf))
    smooth = np.convolve(db, np.ones(3) / 3, mode="same") if nf >= 3 else db
    idx = np.arange(lo, hi)
    cost = smooth[lo:hi] + 0.2 * np.abs(idx - (t * fps - off))
    g = int(idx[np.argmin(cost)]) if nf else 0
    s0 = s1 = g
    if nf and db[g] < thr:
        while s0 > 0 and db[s0 - 1] < thr:
            s0 -= 1
        while s1 < nf - 1 and db[s1 + 1] < thr:
            s1 += 1
        s1 += 1
    return g + off, s0 + off, s1 + off


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


def _refine(
    rec: Recording, spoken: list[str], times: list[tuple[float, float]], k: int
) -> set[int]:
    """Replace whisper's rough times of the words around boundary k by a local forced alignment."""
    lo, hi = max(0, k - 3), min(len(spoken), k + 3)
    start = max(0.0, times[lo][0] - (0.3 if lo else EDGE_S))
    end = min(rec.duration, times[hi - 1][1] + (0.3 if hi < len(spoken) else EDGE_S))
    a, b = int(start * rec.rate), int(end * rec.rate)
    aligned = _align(rec.excerpt(a, b), spoken[lo:hi])
    if aligned is None:
        return set()
    # Keep only the words well inside the window: the edge words may be cut by the window.
    done = set()
    for i, (s, e) in enumerate(aligned, start=lo):
        if (i > lo or lo == 0) and (i < hi - 1 or hi == len(spoken)):
            times[i] = (start + s, start + e)
            done.add(i)
    return done


def _levels(rec: Recording, times: list[tuple[float, float]], k: int) -> tuple[np.ndarray, int]:
    """Frame levels (dB) within LEVEL_WINDOW_S of boundary k, and the index of their first frame."""
    hop = int(dsp.FRAME_S * rec.rate)
    total, reach = rec.frames // hop, int(LEVEL_WINDOW_S / dsp.FRAME_S)
    if k == 0:
        t = times[0][0]
    else:
        t = times[-1][1] if k == len(times) else (times[k - 1][1] + times[k][0]) / 2
    lo, hi = 0, total
    if total > 2 * reach:
        centre = min(max(int(t / dsp.FRAME_S), 0), total)
        lo = min(max(0, centre - reach), total - 2 * reach)
        hi = lo + 2 * reach
    x = rec.read(lo * hop, hi * hop).mean(axis=0).astype(np.float32)
    return dsp.frame_db(x, rec.rate), lo


def _bounds(rec: Recording, words: list, needed: dict[int, str]) -> dict[int, _Bound]:
    """Where each needed boundary between words is cut, and the pause around it (samples)."""
    hop = int(dsp.FRAME_S * rec.rate)
    times = [(w.start, w.end) for w in words]
    spoken = [w.text for w in words]
    refined: set[int] = set()
    for k in sorted(needed):
        refined |= _refine(rec, spoken, times, k)
    out = {}
    for k in needed:
        db, off = _levels(rec, times, k)
        thr = dsp.silence_threshold(db)
        sure = {k - 1, k} & set(range(len(words))) <= refined
        if sure:
            g, s0, s1 = _boundary(k, times, db, thr, ALIGNED_SEARCH_S, needed[k], off)
        else:
            g, s0, s1 = _boundary(k, times, db, thr, SEARCH_S, off=off)
        out[k] = _Bound(
            min(g * hop + hop // 2, rec.frames),
            min(s0 * hop, rec.frames),
            min(s1 * hop, rec.frames),
        )
    return out


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


def _speak(new: str, left: list[str], voice: match.VoiceSpec, speed: float) -> tuple[Audio, Audio]:
    """The new words spoken inside their neighbours (for natural phrasing), cut out at quiet points,
    and the whole phrase they were cut from (a longer sample of the voice, for measuring it)."""
    from ..engines import tts

    middle = new.split()
    if left:
        said = left + middle
        audio = tts.synthesize(" ".join(said), voice, speed=speed)
        times = _align(audio, said)
        if times is not None:
            db = dsp.frame_db(audio.mono(), audio.rate)
            thr = dsp.silence_threshold(db)
            hop = int(dsp.FRAME_S * audio.rate)
            a = _boundary(len(left), times, db, thr, ALIGNED_SEARCH_S, protect="right")[0]
            start = a * hop + hop // 2
            if audio.frames - start > int(0.05 * audio.rate):
                piece = Audio(dsp.trim(audio.samples[0, start:], audio.rate), audio.rate)
                return piece, Audio(audio.mono()[None, :], audio.rate)
    alone = tts.synthesize(new, voice, speed=speed)
    piece = Audio(dsp.trim(alone.mono(), alone.rate), alone.rate)
    return piece, piece


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
        audio = _speak(text, context, voice, speed)[0]
    return audio.to_rate(rate).mono() if audio.rate != rate else audio.mono()


MIN_LIKENESS_S = 0.8
"""Speaking time (pauses left out) below which a speaker embedding says too little to report."""
TRIAL_EDITS = 3
"""How many of an edit's spans (the longest) each candidate voice speaks before one is chosen."""


@dataclass
class _Rendition:
    piece: np.ndarray  # the new words, mono at the recording's rate, at the speaker's pitch
    semitones: float  # the pitch shift applied
    similarity: float | None  # of the phrase they were cut from, to the speaker


def _likeness(parts: list[np.ndarray], target: np.ndarray, rate: int) -> float | None:
    """Speaker similarity of the speech in `parts` to the embedding `target`; None when too short."""
    from ..engines import speaker

    x = np.concatenate([np.concatenate([p, np.zeros(rate // 10, np.float32)]) for p in parts])
    if x.size == 0 or dsp.active_seconds(x, rate) < MIN_LIKENESS_S:
        return None
    return round(speaker.similarity(speaker.embed(Audio(x[None, :], rate)), target), 4)


def _rendition(
    text: str, left: list[str], m: match.Match, target: match.Speaker, rate: int
) -> tuple[_Rendition, np.ndarray]:
    """`text` spoken by the voice of `m`, moved to the speaker's median f0; and the shifted phrase."""
    piece, phrase = (a.to_rate(rate).mono() for a in _speak(text, left, m.voice, m.speed))
    st = match.shift_to(piece, rate, target.f0, fallback=phrase)
    if st:  # 0, or at least match.SHIFT_MIN_ST
        piece, phrase = dsp.pitch_shift(piece, rate, st), dsp.pitch_shift(phrase, rate, st)
    return _Rendition(piece, st, _likeness([phrase], target.embedding, rate)), phrase


def _choose_voice(
    jobs: list[tuple[int, str, list[str]]],
    options: list[match.Match],
    target: match.Speaker,
    rate: int,
) -> tuple[match.Match, dict[int, _Rendition]]:
    """One voice for every span of an edit: among `options`, the one whose renditions whisper hears
    right and that, among those, sounds most like the speaker; with its renditions of `jobs`.

    Heard right: an accented voice can turn "milk" into "nook". Likeness is measured on the new words
    with their lead-in phrase, pitch-shifted as they will be used: ranking voices by a reference
    sentence alone often mis-ranks them on the actual words. Every voice speaks before whisper
    listens, so on a long recording (one engine at a time) a voice engine and whisper are never
    loaded together; the choice is the same either way.
    """
    trial = sorted(jobs, key=lambda j: -len(j[1]))[:TRIAL_EDITS] if len(options) > 1 else jobs
    lean = _LEAN.get()
    tried = []
    for n, opt in enumerate(options):
        if n and lean:  # one voice engine at a time; the chosen one reloads if needed
            _release(tts=True)
        done = {i: _rendition(text, left, opt, target, rate) for i, text, left in trial}
        tried.append(
            (opt, done, _likeness([ph for _, ph in done.values()], target.embedding, rate))
        )
    if lean and len(options) > 1:  # whisper listens once no voice engine is loaded
        _release(tts=True)
    best: tuple[tuple[float, float], match.Match, dict[int, _Rendition], float | None] | None = None
    for opt, done, likeness in tried:
        heard = 1.0
        if len(options) > 1:
            heard = float(np.mean([_heard_share(t, done[i][0].piece, rate) for i, t, _ in trial]))
        key = (heard, likeness if likeness is not None else -1.0)
        if best is None or key > best[0]:
            best = (key, opt, {i: r for i, (r, _) in done.items()}, likeness)
    if lean and len(options) > 1:  # not needed again: the voice engine reloads without it
        _release(asr=True)
    assert best is not None
    _, opt, renditions, likeness = best
    for i, text, left in jobs:
        if i not in renditions:
            renditions[i] = _rendition(text, left, opt, target, rate)[0]
    shifts = [r.semitones for r in renditions.values()]
    semitones = round(float(np.mean(shifts)), 2) if shifts else opt.semitones
    return match.Match(opt.voice, likeness, opt.speed, semitones, opt.candidates), renditions


def _infill_available() -> bool:
    """Whether our Voicebox model package offers `infill` (it may still lack a checkpoint)."""
    try:
        import voicebox.model as vm
    except ImportError:
        return False
    return hasattr(vm, "infill")


def chosen_engine(engine: str, consent_given: bool) -> str:
    """The engine an edit runs with: "auto" is our model when the speaker's consent is given and a
    trained checkpoint is found (it speaks in their own voice, and measures better than the
    nearest stock voice: bench/results/edit.json), else the stock voices; others are kept."""
    if engine != "auto":
        return engine
    if not consent_given:
        return "stock"
    try:
        _require_engine("voicebox")
    except NotReadyError:
        return "stock"
    return "voicebox"


def _require_engine(engine: str) -> None:
    """Refuse an engine that is not ready (EditOptions has refused an unknown one)."""
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


def _neighbours(rec: Recording, a: int, b: int) -> np.ndarray:
    """The recording's mono samples within NEIGHBOUR_S before and after a cut."""
    w = int(NEIGHBOUR_S * rec.rate)
    before, after = rec.read(a - w, a).mean(axis=0), rec.read(b, b + w).mean(axis=0)
    return np.concatenate([before, after]).astype(np.float32)


def _shape(speech: np.ndarray, rate: int, near: np.ndarray, lead: int, trail: int) -> np.ndarray:
    """Tilt and level the synthetic words like their neighbours; add the pauses."""
    y = dsp.fit_to(speech, rate, near)
    if y.size == 0 or not np.any(y):
        raise EngineError("the voice produced no audible speech for the new words")
    return np.concatenate([np.zeros(lead, np.float32), y, np.zeros(trail, np.float32)])


def _splice(head: np.ndarray, tail: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """The samples replacing a cut whose first and last `fade` samples are `head` and `tail`:
    `piece` with equal-power crossfades from and back to the recording at both ends."""
    fade = head.shape[1]
    theta = np.linspace(0, np.pi / 2, fade, dtype=np.float64)
    fade_in, fade_out = np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)
    if piece.shape[1] == 0:
        return head * fade_out + tail * fade_in
    x = piece.copy()
    x[:, :fade] = head * fade_out + x[:, :fade] * fade_in
    x[:, -fade:] = x[:, -fade:] * fade_out + tail * fade_in
    return x


def _heard_share(text: str, mono: np.ndarray, rate: int) -> float:
    """The share of `text`'s words that whisper hears in a rendition of it (engines.asr)."""
    from ..engines.asr import heard_share

    return heard_share(text, mono, rate)


def _infill_in_context(
    rec: Recording, words: list, a: int, b: int, new: str, taken: Callable[[float], None]
) -> np.ndarray:
    """The samples replacing [a, b) when our Voicebox model speaks `new` there, with the recording
    around the cut as its context (voice, room and prosody come from the context); `taken` hears
    the share of the takes spoken so far."""
    from .regenerate import CONTEXT_S, regenerate_piece

    reach = int(CONTEXT_S * rec.rate)
    lo, hi = max(0, a - reach), min(rec.frames, b + reach)
    t0 = lo / rec.rate
    timed = [(w.text, w.start - t0, w.end - t0) for w in words]
    return regenerate_piece(rec.excerpt(lo, hi), a - lo, b - lo, new.split(), timed, taken=taken)


MERGE_GAP_S = 0.15
"""Edits whose cuts come closer than this are spoken as one span (the words between included)."""


def _lay_out(rec: Recording, words: list, edits: list[_Edit]) -> tuple[list[_Edit], list[tuple]]:
    """The edits and their cuts (samples), edits too close to splice apart merged into one span."""
    spoken = [w.text for w in words]
    gap = int(MERGE_GAP_S * rec.rate)
    while True:
        needed: dict[int, str] = {}
        for e in edits:  # a cut keeps the word before its start and the word after its end whole
            for k, side in ((e.first, "left"), (e.stop, "right")):
                needed[k] = side if needed.get(k, side) == side and e.first < e.stop else ""
        bounds = _bounds(rec, words, needed)
        spans = [_span(bounds, e, rec.frames, rec.rate) for e in edits]
        close = next(
            (i for i in range(len(spans) - 1) if spans[i + 1][0] < spans[i][1] + gap), None
        )
        if close is None:
            return edits, spans
        a, b = edits[close], edits[close + 1]
        new = " ".join(p for p in (a.new, *spoken[a.stop : b.first], b.new) if p)
        joined = _Edit(a.first, b.stop, new, "replace" if new else "delete")
        if joined.first == joined.stop:
            joined.kind = "insert"
        edits = [*edits[:close], joined, *edits[close + 2 :]]


# ---------------------------------------------------------------- planning


def check_ops(options: EditOptions | None = None, **given: object) -> EditOptions:
    """The edit's options (`options`, with any `given` by name on top), refusing an edit that
    cannot be done (nothing to do, unspeakable text, both kinds at once) before any audio is
    touched."""
    asked = options.to_dict() if options is not None else {}
    return EditOptions.from_mapping({**asked, **given}).require_ops()


@dataclass
class Planned:
    """An edit planned on a recording: the plan, the words, and each edit with its cut (samples)
    and the lead and trail pauses its new words need."""

    plan: EditPlan
    words: list
    edits: list[_Edit]
    spans: list[tuple[int, int, int, int]]


def plan_edit(rec: Recording, source: Transcript, ops: EditOptions) -> Planned:
    """Turn the asked-for edits into timed cuts on the recording's words (no audio is made):
    phrases are found in the transcript, or an edited transcript is diffed against it."""
    words = source.words
    spoken = [w.text for w in words]
    if not words:
        raise InputError("no speech was recognised in the recording; nothing to edit")
    kept: list[str] = []
    if ops.transcript is not None:
        edits, kept = _edits_from_text(rec, words, ops.transcript)
    else:
        keys = [normalize(w) for w in spoken]
        edits = _edits_from_ops(
            keys, spoken, ops.replace, ops.delete, ops.insert_after, ops.occurrence
        )
    edits = _merge(edits)
    if not edits:  # the transcript says what was said: the recording, unchanged
        return Planned(EditPlan(source.text, source.text, [], kept=kept), words, [], [])
    edits, spans = _lay_out(rec, words, edits)
    pieces, cursor = [], 0
    for e in edits:
        pieces += spoken[cursor : e.first] + ([e.new] if e.new else [])
        cursor = e.stop
    pieces += spoken[cursor:]
    steps = [
        Step(e.kind, " ".join(spoken[e.first : e.stop]), e.new, a / rec.rate, b / rec.rate)
        for e, (a, b, _, _) in zip(edits, spans, strict=True)
    ]
    return Planned(EditPlan(source.text, " ".join(pieces), steps, kept=kept), words, edits, spans)


# ---------------------------------------------------------------- rendering


SPEAKER_SAMPLE_S = 60.0
"""Seconds of the recording around the first cut that the speaker is measured on (voice, rate,
pitch, noise floor): all of a shorter recording."""


@dataclass
class Patch:
    """What replaces the recording's samples [a, b): [channels, m] samples."""

    a: int
    b: int
    samples: np.ndarray


def _speaker_sample(rec: Recording, planned: Planned) -> tuple[Audio, int, tuple[int, int]]:
    """The untouched audio of the speaker sample, the letters its kept words say, and its range."""
    n = int(SPEAKER_SAMPLE_S * rec.rate)
    lo, hi = 0, rec.frames
    if rec.frames > n:
        a, b = planned.spans[0][:2]
        lo = min(max(0, (a + b) // 2 - n // 2), rec.frames - n)
        hi = lo + n
    keep = np.ones(hi - lo, bool)
    for a, b, _, _ in planned.spans:
        keep[min(max(a, lo), hi) - lo : min(max(b, lo), hi) - lo] = False
    cut = {i for e in planned.edits for i in range(e.first, e.stop)}
    said = sum(
        match.letters(w.text)
        for i, w in enumerate(planned.words)
        if i not in cut
        and ((lo, hi) == (0, rec.frames) or lo <= (w.start + w.end) / 2 * rec.rate < hi)
    )
    return Audio(rec.read(lo, hi)[:, keep], rec.rate), said, (lo, hi)


def _voice_for(
    engine: str,
    planned: Planned,
    target: match.Speaker,
    voice: match.VoiceSpec | None,
    exclude: tuple[str, ...],
    rate: int,
) -> tuple[match.Match, dict[int, _Rendition]]:
    """The voice that speaks every span, and its renditions of the new words (by edit index)."""
    if engine == "voicebox":  # the model takes the voice from the context itself
        return match.Match("voicebox", None, 1.0, 0.0, []), {}
    if voice is None:  # the in-register voice that sounds most like the speaker
        spec, _, ranked = match.nearest_voice(target, exclude)
        m = match.tune(target, spec, ranked)
        options = [match.tune(target, v, m.candidates) for v in match.shortlist(m)]
    else:
        m = match.tune(target, voice)
        options = [m]
    spoken = [w.text for w in planned.words]
    jobs = [(i, e.new, _context(spoken, e)) for i, e in enumerate(planned.edits) if e.new]
    return _choose_voice(jobs, options, target, rate) if jobs else (m, {})


@dataclass
class _Voice:
    """Who speaks the new words: the speaker sample (cuts removed: its noise floor goes under the new
    words), the speaker measured on it, the matched voice and its renditions (by edit index)."""

    untouched: Audio
    target: match.Speaker
    match: match.Match
    renditions: dict[int, _Rendition]


def _render_span(
    rec: Recording,
    planned: Planned,
    i: int,
    engine: str,
    v: _Voice,
    taken: Callable[[float], None] = lambda share: None,
) -> np.ndarray:
    """The samples replacing edit i's cut; fills in its step's voice, similarity, generated time.
    The model's takes of it are reported to `taken` as they are spoken (the share done)."""
    e, (a, b, lead, trail), step = planned.edits[i], planned.spans[i], planned.plan.steps[i]
    rate = rec.rate
    if e.new and engine == "voicebox":
        joined = _infill_in_context(rec, planned.words, a, b, e.new, taken)
        step.voice, step.generated = "voicebox", round(joined.shape[1] / rate, 3)
        step.similarity = _likeness([joined.mean(axis=0)], v.target.embedding, rate)
        return joined
    piece = np.zeros((rec.channels, 0), np.float32)
    if e.new:
        r = v.renditions[i]
        mono = _shape(r.piece, rate, _neighbours(rec, a, b), lead, trail)
        step.voice, step.similarity = match.voice_key(v.match.voice), r.similarity
        piece = np.repeat(mono[None, :], rec.channels, axis=0)
        piece += dsp.noise_bed(v.untouched.samples, rate, piece.shape[1], seed=i)
        step.generated = round((len(mono) - lead - trail) / rate, 3)
    fade = int(CROSSFADE_S * rate)
    return _splice(rec.read(a, a + fade), rec.read(b - fade, b), piece)


def render_edit(
    rec: Recording,
    planned: Planned,
    engine: str = "stock",
    voice: match.VoiceSpec | None = None,
    exclude_voices: tuple[str, ...] | list[str] = (),
    consent: provenance.Consent | provenance.ConsentRecord | None = None,
    progress: Progress | None = None,
) -> tuple[list[Patch], provenance.ConsentRecord | None]:
    """Speak, shape and splice the planned edits: the watermarked patches that replace the cuts
    (and the consent record when our model spoke in the recorded voice). Fills in each step's
    place in the output, voice and similarity, and the plan's voice match."""
    report = progress or (lambda done, total: None)
    plan, rate = planned.plan, rec.rate
    untouched, said, sample = _speaker_sample(rec, planned)
    cloning = engine == "voicebox"
    record = provenance.grant(consent, rec.reference(sample)) if cloning else None
    target = match.measure(untouched, said)
    m, renditions = _voice_for(engine, planned, target, voice, tuple(exclude_voices), rate)
    plan.candidates = m.candidates
    report(2, 4)
    v = _Voice(untouched, target, m, renditions)
    patches, shift, n = [], 0, len(planned.edits)
    for i, ((a, b, _, _), step) in enumerate(zip(planned.spans, plan.steps, strict=True)):
        joined = _render_span(
            rec, planned, i, engine, v, lambda share, i=i: report(2 + 2 * (i + share) / n, 4)
        )
        step.out_start, step.out_end = (a + shift) / rate, (a + shift + joined.shape[1]) / rate
        patches.append(Patch(a, b, joined.astype(np.float32)))
        shift += joined.shape[1] - (b - a)
        report(2 + 2 * (i + 1) / n, 4)
    spoke = [s for s in plan.steps if s.voice]
    plan.voice = spoke[0].voice if spoke else None
    plan.similarity = m.similarity
    made = [
        p.samples.mean(axis=0)
        for p, s in zip(patches, plan.steps, strict=True)
        if s.voice == "voicebox"
    ]
    if made:  # the model's words, all together: often enough speech where one word is not
        plan.similarity = _likeness(made, target.embedding, rate)
    plan.speed, plan.semitones = m.speed, m.semitones
    _watermark(rec, patches, plan.steps)
    return patches, record


class Edited:
    """The edited recording as ranges of the untouched input and the patches, never held whole."""

    def __init__(self, rec: Recording, patches: list[Patch]) -> None:
        self.rec, self.patches = rec, patches
        self.rate, self.channels = rec.rate, rec.channels
        self.frames = rec.frames + sum(p.samples.shape[1] - (p.b - p.a) for p in patches)

    def _pieces(self) -> Iterator[tuple[int, int, np.ndarray | int]]:
        """(output start, length, the patch's samples or the input sample it copies from)."""
        pos_in = pos_out = 0
        for p in self.patches:
            yield pos_out, p.a - pos_in, pos_in
            pos_out += p.a - pos_in
            yield pos_out, p.samples.shape[1], p.samples
            pos_out, pos_in = pos_out + p.samples.shape[1], p.b
        yield pos_out, self.rec.frames - pos_in, pos_in

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Output samples [lo, hi) (clamped), [channels, n] float32."""
        lo, hi = max(lo, 0), min(hi, self.frames)
        parts = [np.zeros((self.channels, 0), np.float32)]
        for start, n, src in self._pieces():
            a, b = max(lo, start), min(hi, start + n)
            if a < b:
                if isinstance(src, np.ndarray):
                    parts.append(src[:, a - start : b - start])
                else:
                    parts.append(self.rec.read(src + a - start, src + b - start))
        return np.concatenate(parts, axis=1)


def _watermark(rec: Recording, patches: list[Patch], steps: list[Step]) -> None:
    """Mark every generated patch with the provenance watermark exactly as `provenance.mark` marks
    that span of the whole output (it reads CONTEXT_S of the output either side)."""
    out = Edited(rec, patches)
    reach = round(provenance.CONTEXT_S * rec.rate)
    for p, s in zip(patches, steps, strict=True):
        if not (s.generated and s.out_start is not None and s.out_end is not None):
            continue
        a, b = round(s.out_start * rec.rate), round(s.out_end * rec.rate)
        lo, hi = max(0, a - reach), min(out.frames, b + reach)
        near = Audio(out.read(lo, hi), rec.rate)
        marked = provenance.mark(near, (a - lo) / rec.rate, (b - lo) / rec.rate)
        p.samples = marked.samples[:, a - lo : b - lo]


# ---------------------------------------------------------------- in memory and on disk


def _prepare(
    ops: EditOptions,
    plan_only: bool,
    consent: provenance.Consent | provenance.ConsentRecord | None,
) -> EditOptions:
    """The options with the engine chosen (`chosen_engine`); refuse an unready engine, and a clone
    without consent, before any work."""
    ops = dataclasses.replace(ops, engine=chosen_engine(ops.engine, consent is not None))
    _require_engine(ops.engine)
    if ops.engine == "voicebox" and not plan_only:
        provenance.check_consent(consent)  # refused without a statement; recorded once planned
    return ops


def edit(
    audio: Audio,
    options: EditOptions | None = None,
    *,
    plan_only: bool = False,
    progress: Progress | None = None,
    source: Transcript | None = None,
    consent: provenance.Consent | provenance.ConsentRecord | None = None,
    **given: object,
) -> EditResult:
    """Change what is said in a recording while keeping every untouched sample as it was.

    What to change is `options` (an EditOptions), or its fields by name (`replace`, `delete`,
    `insert_after`, `transcript`, `occurrence`, `engine`, `voice`, `exclude_voices`), which
    override it: `transcript` is the full edited text (diffed word by word against the recording);
    `voice` forces a voice instead of searching for the nearest. `source` reuses a transcript of
    `audio`. With engine "voicebox" our model speaks in the recorded person's voice, so `consent`
    (the speaker's `provenance.Consent`) is required; it is recorded just before the model speaks.
    Engine "auto" (the default) is the model when `consent` is given, else the stock voices.
    `edit_file` does the same for a file of any length in bounded memory.
    """
    ops = _prepare(check_ops(options, **given), plan_only, consent)
    check_samples(audio.samples, audio.rate)
    from .transcribe import transcribe

    report = progress or (lambda done, total: None)
    src = source or transcribe(audio, language="en")  # edits speak English words
    report(1, 4)
    rec = InMemory(audio)
    planned = plan_edit(rec, src, ops)
    if plan_only:
        return EditResult(None, planned.plan)
    if not planned.edits:
        return EditResult(Audio(audio.samples.copy(), audio.rate), planned.plan)
    patches, record = _render(rec, planned, ops, consent, progress)
    edited = Edited(rec, patches)
    return EditResult(Audio(edited.read(0, edited.frames), audio.rate), planned.plan, record)


def _render(
    rec: Recording,
    planned: Planned,
    ops: EditOptions,
    consent: provenance.Consent | provenance.ConsentRecord | None,
    progress: Progress | None,
) -> tuple[list[Patch], provenance.ConsentRecord | None]:
    return render_edit(rec, planned, ops.engine, ops.voice, ops.exclude_voices, consent, progress)


BLOCK_S = 10.0
"""Seconds of output written at a time; `audio.STREAM_EXTS` are written block by block, and
Opus, M4A and AAC (encoded by ffmpeg) are assembled first."""


def _write(edited: Edited, path: Path, subtype: str | None) -> Path:
    """Write the edited recording atomically, copying the untouched input block by block."""
    from ..audio import StreamWriter, save

    if path.suffix.lower() not in STREAM_EXTS:
        return save(Audio(edited.read(0, edited.frames), edited.rate), path, subtype=subtype)
    step = max(1, int(BLOCK_S * edited.rate))
    with StreamWriter(path, edited.rate, edited.channels, subtype=subtype) as writer:
        for lo in range(0, edited.frames, step):
            writer.write(edited.read(lo, lo + step))
    return path


def edit_file(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None,
    options: EditOptions | None = None,
    *,
    plan_only: bool = False,
    progress: Progress | None = None,
    source: Transcript | None = None,
    consent: provenance.Consent | provenance.ConsentRecord | None = None,
    subtype: str | None = None,
    **given: object,
) -> EditResult:
    """`edit` (the same options) for a recording file of any length, in bounded memory, writing
    `output` atomically.

    The file is transcribed as it streams, only the seconds around each cut and a bounded sample of
    the speaker are read, and the output is the input copied block by block with the new words
    spliced in: the same samples `edit` gives for the loaded file. A consent record fingerprints
    that speaker sample, the part of the file the voice was taken from.
    """
    from ..audio import check_audio_output
    from ..safety import refuse_overwrite

    ops = _prepare(check_ops(options, **given), plan_only, consent)
    target = None
    if not plan_only:
        if output is None:
            raise InputError("give an output file for the edited audio (or only plan the edit)")
        refuse_overwrite([output], [path])
        target = check_audio_output(output)  # before any work, not after it
    report = progress or (lambda done, total: None)
    scratch = target.parent if target is not None and str(target.parent) else None
    with OnDisk(path, scratch or Path(tempfile.gettempdir())) as rec:
        src = source or _transcribe(rec, report)
        report(1, 4)
        planned = plan_edit(rec, src, ops)
        if plan_only or target is None:
            return EditResult(None, planned.plan)
        with _lean(rec.duration > LONG_S):
            patches, record = (
                _render(rec, planned, ops, consent, progress) if planned.edits else ([], None)
            )
        written = _write(Edited(rec, patches), target, subtype)
    result = EditResult(None, planned.plan, record, written)
    result.write_sidecar(written)
    return result


LONG_S = 600.0
"""Recordings longer than this (seconds) are transcribed in a child process: whisper's memory grows
with the length it transcribes (~300 MB more over 3 hours) and goes back with the child's exit,
instead of staying through voice matching and writing."""


_LEAN: contextvars.ContextVar[bool] = contextvars.ContextVar("lean", default=False)
"""Set while a long recording (over LONG_S) is rendered: voice engines are then loaded one at a
time, and every engine is released once the patches are made."""


@contextlib.contextmanager
def _lean(on: bool) -> Iterator[None]:
    """Render a long recording with one voice engine at a time, releasing all engines after it;
    short edits (and the server, which reuses engines across requests) keep them loaded."""
    token = _LEAN.set(on)
    try:
        yield
    finally:
        _LEAN.reset(token)
        if on:
            _release(tts=True, asr=True, speaker=True)


def _release(tts: bool = False, asr: bool = False, speaker: bool = False) -> None:
    """Drop the named engines' loaded models and hand the freed memory back to the system."""
    from .. import engines
    from ..engines import asr as asr_engine
    from ..engines import speaker as speaker_engine
    from ..engines import tts as tts_engine

    for wanted, engine in ((tts, tts_engine), (asr, asr_engine), (speaker, speaker_engine)):
        if wanted:
            engine.release()
    engines.trim_memory()


def _transcribe(rec: OnDisk, report: Progress) -> Transcript:
    """The recording's words, recognised as it streams (edits speak English words); one longer
    than LONG_S in a child process (`_transcribe_apart`), the same words."""
    from .transcribe import transcribe_file

    def heard(done: float, total: float) -> None:
        report(min(done / total, 1.0) if total > 0 else 0.0, 4)

    if rec.duration > LONG_S:
        return _transcribe_apart(rec.source, heard)
    return transcribe_file(rec.source, progress=heard, language="en")


def _transcribe_child() -> None:
    """In the child (`python -c`): transcribe the file named on its command line in English,
    writing pickled ("progress", done, total) messages, then ("done", Transcript) or ("error",
    exception: anything not ours as an EngineError naming it) to the file descriptor of its stdout;
    what libraries print goes to stderr instead."""
    import pickle
    import sys

    from .transcribe import transcribe_file

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def send(*message: object) -> None:
        pickle.dump(message, out)
        out.flush()

    try:
        words = transcribe_file(
            sys.argv[1], progress=lambda *p: send("progress", *p), language="en"
        )
        send("done", words)
    except VoiceboxError as exc:
        send("error", exc)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it as ours
        send("error", EngineError(f"speech recognition failed: {type(exc).__name__}: {exc}"))


def _transcribe_apart(path: Path, heard: Progress) -> Transcript:
    """`transcribe_file(path, language="en")` in a child Python process, relaying its progress; this
    process holds no recogniser meanwhile. A plain child, not multiprocessing: it starts from any
    script (main guard or not) and from a batch worker (daemonic: no multiprocessing children)."""
    import pickle
    import subprocess
    import sys

    import voicebox

    root = str(Path(voicebox.__file__).resolve().parents[1])  # this very package, not another
    paths = [root, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    code = "from voicebox.tasks.edit import _transcribe_child; _transcribe_child()"
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    try:
        while True:
            try:
                kind, *rest = pickle.load(child.stdout)
            except (EOFError, pickle.UnpicklingError):
                child.wait()
                raise EngineError(
                    f"speech recognition stopped: its process exited (code {child.returncode}); "
                    "out of memory?"
                ) from None
            if kind == "done":
                return rest[0]
            if kind == "error":
                raise rest[0]
            heard(*rest)
    finally:
        child.stdout.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
