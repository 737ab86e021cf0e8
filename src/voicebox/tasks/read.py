"""Read text aloud: normalise, split into sentences, synthesise each, and time sentences and words.

`read` returns the whole `Speech`; `read_stream` yields one (audio chunk, timing) per sentence so
long text plays or writes as it is made, with bounded memory.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import dsp, provenance, subtitles
from ..audio import Audio
from ..engines import tts
from ..errors import InputError
from ..model.config import DURATION_SCALE, GUIDANCE
from ..progress import Progress
from ..text import Sentence, guess_language, has_words, iter_sentences, normalize, sentences

GAP_SECONDS = 0.25
"""Silence between sentences."""
CLAUSE_GAP_SECONDS = 0.12
"""Pause where a long first sentence was cut after its first clause (streaming only)."""
QUICK_START_CHARS = 80
"""A streamed first sentence longer than this is spoken clause first, for a faster first audio."""
MAX_PITCH = 12.0
DEFAULT_VOICES = {"ja": "jf_alpha"}
"""Used when bench/languages.py has not measured a language; English always goes by the measured
ranking (english_ranking), every other language defaults to espeak-ng."""
READ_RTF_TARGET = 0.3
"""A default voice must read at least this fast (CPU seconds per audio second, one thread): the
target bench/read.py holds reading to, so a default never makes the reader lag."""
MEASURED_PATH = Path(__file__).resolve().parents[1] / "data" / "languages.json"
_MEASURED: dict | None = None
OPENAI_GENDERS = {
    "alloy": "female",
    "ash": "male",
    "ballad": "male",
    "coral": "female",
    "echo": "male",
    "fable": "male",
    "nova": "female",
    "onyx": "male",
    "sage": "female",
    "shimmer": "female",
    "verse": "male",
}
"""OpenAI's speech voices and how they sound (their documentation's descriptions)."""
OPENAI_ORDER = ("alloy", "echo", "nova", "onyx", "shimmer", "fable", "coral", "ash", "sage")
OPENAI_ORDER += ("ballad", "verse")
"""Most used first: they get the best-measured voices when a gender has several close ones."""
VOICE_ALIASES = {"af_heart": "heart"}
"""Kokoro-FastAPI names that ship here under another id (hibari's heart is distilled from it)."""


@dataclass
class Timing:
    """A stretch of the output: its text and start/end in seconds."""

    text: str
    start: float
    end: float


@dataclass
class SentenceTiming(Timing):
    """A sentence's times, the words actually spoken, and each word's times."""

    spoken: str = ""
    words: list[Timing] = field(default_factory=list)


@dataclass
class Speech:
    """Read-aloud audio with sentence and word timings."""

    audio: Audio
    sentences: list[SentenceTiming]
    voice: str
    consent: provenance.ConsentRecord | None = None
    """Set when the speech is in another person's voice: the record `grant` wrote to the ledger."""
    route: str | None = None
    """How a reading in another person's voice was made when not by our model (cross-lingual)."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the audio, and beside it `<path>.provenance.json` (the mark and any consent)."""
        from ..audio import save

        written = save(self.audio, path)
        if self.consent is not None:
            provenance.write_sidecar(written, self.consent)
        return written

    @property
    def words(self) -> list[Timing]:
        """Every spoken word with its times, in order."""
        return [w for s in self.sentences for w in s.words]

    def to_json(self) -> str:
        """Timings as JSON: voice, rate, duration, sentences (with words)."""
        return timings_json(
            self.sentences, self.voice, self.audio.rate, self.audio.duration, route=self.route
        )

    def to_srt(self) -> str:
        """Subtitles in SubRip format (readable cues, see `subtitle_cues`)."""
        return to_srt(self.sentences)

    def to_vtt(self) -> str:
        """Subtitles in WebVTT format (readable cues, see `subtitle_cues`)."""
        return to_vtt(self.sentences)


# ---------------------------------------------------------------- voices


def voices(lang: str | None = None) -> list[tts.Voice]:
    """Voices available offline; with `lang`, only those that can read that language."""
    every = tts.list_voices()
    return [v for v in every if v.speaks(lang)] if lang else every


def _measured() -> dict:
    """What bench/languages.py measured (src/voicebox/data/languages.json); {} when absent."""
    global _MEASURED
    if _MEASURED is None:
        try:
            _MEASURED = json.loads(MEASURED_PATH.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _MEASURED = {}
    return _MEASURED


def measured_language(lang: str) -> dict | None:
    """The measured round trip for reading `lang` (voice, wer or cer, rtf), when there is one."""
    found = _measured().get("languages", {}).get(lang.lower().split("-")[0])
    return found if isinstance(found, dict) else None


def english_ranking(gender: str | None = None) -> list[str]:
    """English voices and blends that may be defaults, best first by measured whisper WER (ties:
    DNSMOS). Only voices that read at the project's pace (measured RTF at most READ_RTF_TARGET on
    one thread) qualify, and only those close to the best (WER within 0.05, DNSMOS within 0.3)."""
    rows = [
        r
        for r in _measured().get("english_voices", [])
        if isinstance(r, dict) and (gender is None or r.get("gender") == gender)
    ]
    fast = [r for r in rows if float(r.get("rtf", 0.0)) <= READ_RTF_TARGET]
    rows = sorted(fast or rows, key=lambda r: (float(r["wer"]), -float(r["dnsmos"])))
    if not rows:  # not measured in this build: the native voices (ENGINES.md)
        native = {"female": [tts.HIBARI_VOICE], "male": [tts.PIPER_VOICE]}
        return native.get(gender or "", [tts.HIBARI_VOICE, tts.PIPER_VOICE])
    best = rows[0]
    return [
        str(r["voice"])
        for r in rows
        if float(r["wer"]) <= float(best["wer"]) + 0.05
        and float(r["dnsmos"]) >= float(best["dnsmos"]) - 0.3
    ]


def voice_figures(voice_id: str) -> dict:
    """What is measured about a voice (bench/languages.py) and what points at it: English WER and
    DNSMOS, the round trip of the language it is the default for, OpenAI names, default-for."""
    out: dict = {}
    for row in _measured().get("english_voices", []):
        if row.get("voice") == voice_id:
            out["english"] = {k: row[k] for k in ("wer", "dnsmos") if k in row}
    trips = {}
    for lang, row in _measured().get("languages", {}).items():
        if isinstance(row, dict) and row.get("voice") == voice_id:
            metric = str(row.get("metric", "wer"))
            trips[lang] = {"metric": metric, "value": row.get(metric), "rtf": row.get("rtf")}
    if trips:
        out["round_trip"] = trips
    names = [name for name, target in openai_voices().items() if target == voice_id]
    if names:
        out["openai"] = names
    out["default_for"] = [lang for lang in ("en", "ja") if default_voice(lang) == voice_id]
    return {k: v for k, v in out.items() if v}


def figures_line(figures: dict) -> str:
    """voice_figures as a short table cell: 'en WER 0.02 OVRL 3.4; ja CER 0.05; default en'."""
    parts = []
    if "english" in figures:
        e = figures["english"]
        parts.append(f"en WER {e['wer']:.2f} OVRL {e['dnsmos']:.2f}")
    for lang, trip in figures.get("round_trip", {}).items():
        if lang == "en" and "english" in figures:
            continue
        value = trip.get("value")
        if value is not None:
            parts.append(f"{lang} {trip['metric'].upper()} {float(value):.2f}")
    if figures.get("default_for"):
        parts.append("default " + ",".join(figures["default_for"]))
    if figures.get("openai"):
        parts.append("= " + ",".join(figures["openai"]))
    return "; ".join(parts)


def openai_voices() -> dict[str, str]:
    """OpenAI's voice names mapped to our voices of the same gender: the best-measured English
    voice first, then the next close ones in turn, so different names sound different when they can."""
    out: dict[str, str] = {}
    for gender in ("female", "male"):
        ranked = english_ranking(gender)
        names = [n for n in OPENAI_ORDER if OPENAI_GENDERS[n] == gender]
        for i, name in enumerate(names):
            out[name] = ranked[i % len(ranked)]
    return {n: out[n] for n in sorted(out)}


def _defaults() -> dict[str, str]:
    return {"en": default_voice("en"), "ja": default_voice("ja")}


def default_voice(lang: str) -> str:
    """The voice used when none is chosen: the best measured for the language (English: the
    best English voice; Japanese: the best Kokoro pack), espeak-ng where nothing else speaks it."""
    base = lang.lower().split("-")[0]
    if base == "en":
        return english_ranking()[0]
    row = measured_language(base)
    if row and row.get("voice") and not str(row["voice"]).startswith(tts.ESPEAK_PREFIX):
        return str(row["voice"])
    return DEFAULT_VOICES.get(base, tts.ESPEAK_PREFIX + lang)


DEFAULT_VOICES.update(_defaults())  # the measured choices, for callers that read the table


_COMBINATION = re.compile(r"^\s*([^()+\s]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")


def parse_blend(spec: str) -> dict[str, float]:
    """Parse a blend: 'jf_alpha:0.6,jm_kumo:0.4', or Kokoro-FastAPI's 'jf_alpha(2)+jm_kumo(1)'
    (a name without weight counts 1)."""
    return check_blend(_parse_weights(spec))


def _parse_weights(spec: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in _blend_parts(spec):
        if "+" in spec or "(" in part:
            found = _COMBINATION.match(part)
            if not found:
                raise InputError(f"cannot read '{part.strip()}' in '{spec}'; write 'a(2)+b(1)'")
            name, weight = found.group(1), found.group(2) or ""
        else:
            name, _, weight = part.strip().partition(":")
        name = name.strip()
        if not name:
            continue
        try:
            value = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise InputError(f"blend weight '{weight}' for '{name}' is not a number") from None
        weights[name] = weights.get(name, 0.0) + value
    return weights


def _blend_parts(spec: str) -> list[str]:
    if "+" in spec or "(" in spec:
        if re.search(r"\)\s*-|-\s*\w+\(", spec):
            raise InputError(f"'{spec}': voices can be added (a+b), not subtracted")
        return spec.split("+")
    return spec.split(",")


def is_combination(spec: str) -> bool:
    """Whether a voice name is really a blend ('a+b', 'a(2)+b(1)', 'a:0.6,b:0.4')."""
    return any(c in spec for c in "+(,") or (":" in spec and not spec.startswith(tts.ESPEAK_PREFIX))


def check_blend(weights: dict[str, float]) -> dict[str, float]:
    """The blend itself if every name is a Kokoro voice and the weights are usable; else InputError
    (a voice of another engine is named as such: voices of different engines cannot mix)."""
    if not weights:
        raise InputError("empty blend; write it like 'jf_alpha:0.6,jm_kumo:0.4' or 'a(2)+b(1)'")
    for name, value in weights.items():
        if name not in tts.KOKORO_VOICES:
            raise InputError(_not_blendable(name, weights))
        if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
            raise InputError(f"blend weight for '{name}' must be a non-negative number")
    if sum(weights.values()) <= 0:
        raise InputError("blend weights must not all be zero")
    return dict(weights)


def _not_blendable(name: str, weights: dict[str, float]) -> str:
    kokoro = ", ".join(tts.KOKORO_VOICES)
    if tts.is_voice(name) or name.startswith(tts.ESPEAK_PREFIX) or name == "espeak":
        engine = _engine_of(name)
        others = sorted({_engine_of(n) for n in weights if n != name})
        across = f" with {'/'.join(others)} voices" if others else ""
        return (
            f"'{name}' is a {engine} voice and cannot be blended{across}: only Kokoro voices "
            f"mix ({kokoro}); pick one voice instead"
        )
    return f"'{name}' cannot be blended: {unknown_voice_hint(name)}; blends mix Kokoro voices ({kokoro})"


def _engine_of(name: str) -> str:
    if name in tts.KOKORO_VOICES:
        return "kokoro"
    if name == tts.PIPER_VOICE:
        return "piper"
    if name == tts.HIBARI_VOICE:
        return "hibari"
    return "espeak" if name.startswith("espeak") else "unknown"


def unknown_voice_hint(name: str) -> str:
    """'unknown voice X; nearest: a, b, c' — close spellings (difflib), and for a Kokoro-style
    name (af_bella: American female) the best voices of that language and gender."""
    import difflib

    ids = [v.id for v in tts.list_voices()]
    near = difflib.get_close_matches(name, ids + list(OPENAI_GENDERS), n=3, cutoff=0.6)
    style = re.match(r"^([abjz])([fm])_", name)
    if style:
        gender = "female" if style.group(2) == "f" else "male"
        if style.group(1) in "ab":
            near = english_ranking(gender)[:2] + near
        elif style.group(1) == "j":
            near = [n for n, (g, _) in tts.KOKORO_VOICES.items() if g == gender] + near
    near = list(dict.fromkeys(near))[:4]
    tail = f"; nearest: {', '.join(near)}" if near else ""
    return f"unknown voice '{name}'{tail} (all: `voicebox voices`)"


def resolve_voice_name(name: str) -> str:
    """A voice as the engines know it: OpenAI names and Kokoro's af_heart map onto ours."""
    key = name.strip()
    low = key.lower()
    if low in OPENAI_GENDERS:
        return openai_voices()[low]
    return VOICE_ALIASES.get(low, key)


def choose_voice(
    voice: str | None,
    blend: str | dict[str, float] | None,
    lang: str | None,
    text: str | None = None,
) -> tuple[str | dict[str, float], str, str]:
    """(voice for the engine, its display name, text language) from the caller's choices.

    `voice` may be any listed id, an OpenAI name (alloy, ...), Kokoro's af_heart, or a blend
    written as a voice ('a(2)+b(1)'). With no `lang`, an espeak voice's language is used, else the
    language of `text` (guess_language), else English. Fails early with InputError on an unknown
    voice (naming the nearest), a bad blend, or detected text the chosen voice cannot read.
    """
    if voice and blend:
        raise InputError("choose either a voice or a blend, not both")
    if voice:
        voice = resolve_voice_name(voice)
        if is_combination(voice):  # 'a(2)+b(1)' where a voice goes, or an alias of a blend
            voice, blend = None, voice
    weights: dict[str, float] | None = None
    if blend:
        weights = _blend_weights(blend)
        (only, weight), *others = list(weights.items()) or [("", 0.0)]
        usable = isinstance(weight, int | float) and np.isfinite(weight) and weight > 0
        if not others and usable and tts.is_voice(only):
            voice, weights = only, None  # 'heart(1)' is just heart
        else:
            weights = check_blend(weights)
    detected = False
    if lang is None:
        code = (
            voice[len(tts.ESPEAK_PREFIX) :] if voice and voice.startswith(tts.ESPEAK_PREFIX) else ""
        )
        if code:
            lang = code.split("-")[0]
        elif text and text.strip():
            lang, detected = guess_language(text), True
        else:
            lang = "en"
    lang = lang.lower()
    if voice is None and not weights:
        voice = default_voice(lang)
    lang = lang.split("-")[0]  # text rules and the neural voices go by the base language
    if weights:
        if lang not in tts.KOKORO_LANGS:
            raise InputError(_cannot_read("this blend", tts.KOKORO_LANGS, lang, detected))
        total = sum(weights.values())
        name = ",".join(f"{k}:{v / total:.2f}" for k, v in weights.items())
        return weights, name, lang
    chosen = str(voice)
    if chosen.startswith(tts.ESPEAK_PREFIX):
        from ..engines import espeak

        espeak.resolve(chosen[len(tts.ESPEAK_PREFIX) :])  # fails early on an unknown language
    elif not tts.is_voice(chosen):
        raise InputError(unknown_voice_hint(chosen))
    else:
        found = next((v for v in tts.list_voices() if v.id == chosen), None)
        if found is not None and not found.speaks(lang):
            raise InputError(_cannot_read(chosen, found.languages, lang, detected))
    return chosen, chosen, lang


def _blend_weights(blend: str | dict[str, float]) -> dict[str, float]:
    """A blend's weights with every name resolved (aliases, OpenAI names), unchecked."""
    raw = _parse_weights(blend) if isinstance(blend, str) else dict(blend)
    out: dict[str, float] = {}
    for name, value in raw.items():
        key = resolve_voice_name(str(name))
        out[key] = out.get(key, 0.0) + value
    return out


def _cannot_read(who: str, languages: tuple[str, ...], lang: str, detected: bool) -> str:
    from ..engines.asr import LANGUAGE_NAMES

    def named(code: str) -> str:
        return LANGUAGE_NAMES.get(code, code).capitalize()

    reads = f"{who} reads {' and '.join(named(c) for c in languages)} only"
    if detected:
        return (
            f"the text looks {named(lang)} ({lang}) and {reads}; pass --lang, or a voice "
            f"from `voicebox voices --lang {lang}` (espeak:{lang})"
        )
    return f"{reads}; for {named(lang)} ({lang}) use --voice espeak:{lang}"


def reading_report(name: str, lang: str, asked: str | None) -> str | None:
    """One line for the reader's report when the text is not read by the default English voice:
    the language (and whether it was detected), the voice, whether only espeak-ng speaks it, and
    the measured round-trip intelligibility."""
    from ..engines.asr import LANGUAGE_NAMES

    if lang == "en" and asked is None:
        return None
    how = "detected from the text" if asked is None else "as asked"
    line = f"reading {LANGUAGE_NAMES.get(lang, lang).capitalize()} ({lang}, {how}) with {name}"
    if name.startswith(tts.ESPEAK_PREFIX) and not any(
        v.speaks(lang) for v in tts.list_voices() if v.engine != "espeak"
    ):
        line += ": only espeak-ng speaks this language here (robotic)"
    row = measured_language(lang)
    if row and row.get("voice") == name:
        metric = str(row.get("metric", "wer"))
        value = float(row[metric])
        line += f"; measured round-trip {metric.upper()} {value:.2f}"
        if value > 0.5:
            line += " (a recogniser understands little of it)"
    return line


def peek_text(text: str | Iterable[str]) -> tuple[str, str | Iterable[str]]:
    """(a sample to guess the language from, the text unchanged): for lines, the first line
    with letters is read ahead and put back, so streaming still starts at once."""
    if isinstance(text, str):
        return text, text
    head: list[str] = []
    rest = iter(text)
    for line in rest:
        head.append(line)
        if any(ch.isalpha() for ch in line):
            break
    return "".join(head), itertools.chain(head, rest)


# ---------------------------------------------------------------- reading


def read(
    text: str,
    voice: str | None = None,
    blend: str | dict[str, float] | None = None,
    speed: float = 1.0,
    pitch: float = 0.0,
    lang: str | None = None,
    progress: Progress | None = None,
) -> Speech:
    """Read `text` aloud; `lang` None means the voice's language (espeak) or the text's own."""
    engine_voice, name, lang = choose_voice(voice, blend, lang, text)
    items = sentences(text, lang)
    chunks, timings = [], []
    rate = 0
    paced = _paced(items)
    for chunk, timing in _speak(paced, engine_voice, speed, pitch, lang, progress, len(items)):
        chunks.append(chunk.samples[0])
        timings.append(timing)
        rate = chunk.rate
    return Speech(provenance.mark(Audio(np.concatenate(chunks), rate)), timings, name)


def read_stream(
    text: str | Iterable[str],
    voice: str | None = None,
    blend: str | dict[str, float] | None = None,
    speed: float = 1.0,
    pitch: float = 0.0,
    lang: str | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[Audio, SentenceTiming]]:
    """Yield (audio chunk, timing) per sentence as it is made; text may be a string or lines.

    Each chunk after the first starts with the pause before it; timings are on the timeline of
    all chunks joined. A long first sentence comes as two chunks (clause first) so audio starts
    sooner. Progress counts sentences (total known only for a string).
    """
    sample, text = peek_text(text) if lang is None else ("", text)
    engine_voice, _, lang = choose_voice(voice, blend, lang, sample)
    if isinstance(text, str):
        items: Iterable[Sentence] = sentences(text, lang)
        total = len(items)  # type: ignore[arg-type]
    else:
        items, total = iter_sentences(text, lang), 0
    for chunk, timing in _speak(
        _quick_start(items, lang), engine_voice, speed, pitch, lang, progress, total
    ):
        yield provenance.mark(chunk), timing  # each streamed sentence carries the watermark


def count_pieces(text: str | Iterable[str], lang: str) -> int:
    """How many pieces read_stream speaks for `text`: a progress total known before streaming."""
    items = sentences(text, lang) if isinstance(text, str) else iter_sentences(text, lang)
    return sum(1 for _ in _quick_start(items, lang))


def _paced(items: Iterable[Sentence]) -> Iterator[tuple[Sentence, float]]:
    """Each sentence with the pause before it."""
    for index, sentence in enumerate(items):
        yield sentence, GAP_SECONDS if index else 0.0


def _quick_start(items: Iterable[Sentence], lang: str) -> Iterator[tuple[Sentence, float]]:
    """Like `_paced`, but a long first sentence is cut after its first clause so audio starts sooner."""
    for index, (sentence, gap) in enumerate(_paced(items)):
        if index == 0 and len(sentence.text) > QUICK_START_CHARS:
            found = re.search(r"[,;:]\s", sentence.text)
            head = sentence.text[: found.end()].strip() if found else ""
            tail = sentence.text[found.end() :].strip() if found else ""
            if len(head.split()) >= 3 and len(tail.split()) >= 3:
                said_head, said_tail = normalize(head, lang), normalize(tail, lang)
                if has_words(said_head) and has_words(said_tail):
                    yield Sentence(head, said_head), 0.0
                    yield Sentence(tail, said_tail), CLAUSE_GAP_SECONDS
                    continue
        yield sentence, gap


def _speak(
    items: Iterable[tuple[Sentence, float]],
    voice: str | dict[str, float],
    speed: float,
    pitch: float,
    lang: str,
    progress: Progress | None,
    total: int,
) -> Iterator[tuple[Audio, SentenceTiming]]:
    check_pitch(pitch)
    check_speed(speed)
    tempo = Tempo(voice, speed, lang)
    offset = 0.0
    for index, (sentence, pause) in enumerate(items):
        audio, factor = tempo.speak(sentence.spoken)
        x = audio.samples[0]
        if pitch or factor != 1.0:
            x = dsp.psola(x, audio.rate, pitch, factor)  # one pass: formants kept, exact length
        gap = np.zeros(int(pause / speed * audio.rate), np.float32)  # pauses keep the pace too
        start = offset + gap.size / audio.rate
        end = start + x.size / audio.rate
        words = word_times(sentence.spoken, start, end, lang)
        offset = end
        if progress:
            progress(index + 1, max(total, index + 1))
        timing = SentenceTiming(sentence.text, start, end, sentence.spoken, words)
        yield Audio(np.concatenate([gap, x]), audio.rate), timing


def shift_pitch(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by `semitones` keeping duration and formants (PSOLA, see voicebox.dsp)."""
    return dsp.pitch_shift(x, rate, semitones)


def check_speed(speed: float) -> None:
    """Refuse a speaking rate outside what the voices can be made to do (InputError)."""
    if not np.isfinite(speed) or not tts.MIN_SPEED <= speed <= tts.MAX_SPEED:
        raise InputError(
            f"speed must be between {tts.MIN_SPEED:g} and {tts.MAX_SPEED:g}, got {speed:g}"
        )


class Tempo:
    """Speak at exactly the asked speed: the engine's own speed control first (natural rhythm),
    then the stretch factor that corrects what it missed (Piper at 2.0 is only ~1.5x faster).

    What a voice misses is measured by also speaking the first sentences at speed 1, until
    CALIBRATE_SECONDS of it are heard; from then on their ratio is used, per voice, speed and
    language, for the rest of the process (so only the first few sentences cost twice).
    """

    CALIBRATE_SECONDS = 8.0
    _measured: dict[tuple[str, float, str], list[float]] = {}
    """(voice, speed, lang) -> [seconds at speed 1, seconds at the engine's speed]."""

    def __init__(self, voice: str | dict[str, float], speed: float, lang: str) -> None:
        self.voice, self.speed, self.lang = voice, float(speed), lang
        key = voice if isinstance(voice, str) else json.dumps(voice, sort_keys=True)
        self.seen = self._measured.setdefault((key, self.speed, lang), [0.0, 0.0])

    def speak(self, text: str) -> tuple[Audio, float]:
        """The engine's audio for `text` and the length factor that brings it to the asked pace."""
        audio = tts.synthesize(text, self.voice, speed=self.speed, lang=self.lang)
        if self.speed == 1.0 or audio.frames == 0:
            return audio, 1.0
        if self.seen[0] < self.CALIBRATE_SECONDS:
            plain = tts.synthesize(text, self.voice, speed=1.0, lang=self.lang).duration
            self.seen[0] += plain
            self.seen[1] += audio.duration
        else:
            plain = audio.duration * self.seen[0] / self.seen[1]
        factor = plain / self.speed / audio.duration
        return audio, 1.0 if abs(factor - 1.0) < 0.01 else factor


def word_times(spoken: str, start: float, end: float, lang: str) -> list[Timing]:
    """Spread a sentence's time over its words in proportion to their phoneme counts.

    Clause punctuation after a word adds a pause's worth of weight, as the voices pause there.
    """
    words = spoken.split() if lang != "ja" else [spoken]
    if not words:
        return []
    try:
        phones = tts.phonemize_words([re.sub(r"[^\w']", "", w) or w for w in words], lang)
        weights = [max(1, len(re.sub(r"[ˈˌː\s]", "", p))) for p in phones]
    except Exception:  # noqa: BLE001 - timing weights are a nicety: fall back to letters
        weights = [max(1, len(w)) for w in words]
    weights = [w + (3 if word[-1] in ",;:" else 0) for w, word in zip(weights, words, strict=True)]
    scale = (end - start) / sum(weights)
    out, t = [], start
    for word, weight in zip(words, weights, strict=True):
        label = word.strip('.,;:!?"()[]') or word
        out.append(Timing(label, round(t, 3), round(t + weight * scale, 3)))
        t += weight * scale
    return out


# ---------------------------------------------------------------- timing files


def subtitle_cues(timings: Iterable[SentenceTiming]) -> list[subtitles.Cue]:
    """Readable cues (≤ 2 lines of 42 characters, ≤ 7 s) of the text as written, timed by the
    words as spoken; a cue never spans two sentences."""
    groups = []
    for t in timings:
        tokens = t.text.split()
        if not t.words:
            groups.append(subtitles.spread(t.text, t.start, t.end))
        elif len(tokens) == len(t.words):
            groups.append(subtitles.project(tokens, [1.0] * len(tokens), t.words))
        else:  # "5 pm" was said "five p m": each written token stands for the words it became
            weights = [float(len(normalize(token).split())) for token in tokens]
            groups.append(subtitles.project(tokens, weights, t.words))
    return subtitles.cues(groups)


def to_srt(timings: Iterable[SentenceTiming]) -> str:
    """SubRip subtitles in readable cues (see `subtitle_cues`)."""
    return subtitles.to_srt(subtitle_cues(timings))


def to_vtt(timings: Iterable[SentenceTiming]) -> str:
    """WebVTT subtitles in readable cues (see `subtitle_cues`)."""
    return subtitles.to_vtt(subtitle_cues(timings))


def timings_json(
    timings: list[SentenceTiming],
    voice: str,
    rate: int,
    duration: float,
    levelled: dict | None = None,
    route: str | None = None,
) -> str:
    """Sentence and word timings as a JSON document; `levelled` is what loudness levelling
    measured on the output (loudness LUFS, true_peak dBTP, gain_db, limited_db), when asked;
    `route` how a reading in a recording's voice was made (Speech.route)."""
    doc = {
        "voice": voice,
        **({"route": route} if route else {}),
        "rate": rate,
        "duration": round(duration, 3),
        **({"levelled": levelled} if levelled else {}),
        "sentences": [
            {**asdict(t), "start": round(t.start, 3), "end": round(t.end, 3)} for t in timings
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


# ---------------------------------------------------------------- reading in a reference's voice


ENGINES = ("stock", "voicebox")


def read_like(
    text: str,
    reference: Audio | str | os.PathLike[str],
    reference_text: str | None = None,
    seed: int | None = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    progress: Progress | None = None,
    *,
    consent: provenance.Consent | provenance.ConsentRecord | None,
    lang: str | None = None,
    speed: float = 1.0,
    pitch: float = 0.0,
) -> Speech:
    """Read `text` in the voice of `reference` (3–10 s of speech, or a file), sentence by
    sentence. English is read by our Voicebox model (zero-shot: the reference is the prompt, only
    the new words are generated); another language (`lang`, else the text's own) by its nearest
    native voice re-voiced towards the reference (tasks/crosslingual.py; Speech.route says how).
    `speed` scales the generated phones and pauses (the model's own durations, not a stretch);
    `pitch` moves the speaker's voice by semitones after it is spoken (PSOLA, formants kept).

    `consent` is required: the speaker's `provenance.Consent` (recorded in the ledger, and in the
    returned Speech's `consent`, once the reference is accepted), or a record from an earlier call
    on the same reference. A silent reference is refused and a long one trimmed to its best 10 s
    before any model work. `reference_text` is the reference's transcript (whisper's when absent).
    """
    from ..model.checkpoint import find
    from ..safety import accept_reference
    from . import crosslingual

    check_speed(speed)
    check_pitch(pitch)
    target = crosslingual.route_language(text, lang)  # InputError naming the languages that work
    if target != "en":
        speech = _read_across(text, reference, reference_text, target, progress, consent, speed)
        return _shifted(speech, pitch)
    find(None, "audio")  # NotReadyError (one line) before any work when no model is trained
    provenance.check_consent(consent)  # cheap: refuse before any work
    items = sentences(text, "en")
    if not items:
        raise InputError("nothing to read: the text has no words")
    accepted = accept_reference(reference, reference_text)
    reference, reference_text = accepted.audio, accepted.text
    record = provenance.grant(consent, reference)  # only once the reference is accepted
    if reference_text is None:
        from ..engines.asr import transcribe_text

        reference_text = transcribe_text(reference)  # once, not once per sentence
    chunks, timings, rate, offset = [], [], 0, 0.0
    for index, (sentence, pause) in enumerate(_paced(items)):
        audio = _zero_shot(
            sentence.spoken, reference, reference_text, seed, index, nfe, guidance, speed
        )
        rate = audio.rate
        gap = np.zeros(int(pause / speed * rate), np.float32)
        start = offset + gap.size / rate
        end = start + audio.frames / rate
        words = word_times(sentence.spoken, start, end, "en")
        timings.append(SentenceTiming(sentence.text, start, end, sentence.spoken, words))
        chunks += [gap, audio.samples[0]]
        offset = end
        if progress:
            progress(index + 1, len(items))
    speech = Speech(Audio(np.concatenate(chunks), rate), timings, "voicebox", record)
    return _shifted(speech, pitch)


def _shifted(speech: Speech, pitch: float) -> Speech:
    """`speech` with its pitch moved by `pitch` semitones (same length, so the timings hold),
    marked again: the shift blurs the mark the reading carried."""
    if not pitch:
        return speech
    x = shift_pitch(speech.audio.samples[0], speech.audio.rate, pitch)
    speech.audio = provenance.mark(Audio(x[None], speech.audio.rate))
    return speech


def check_pitch(pitch: float) -> None:
    """Refuse a pitch shift outside ±MAX_PITCH semitones (or not a number)."""
    if not np.isfinite(pitch) or abs(pitch) > MAX_PITCH:
        raise InputError(f"pitch must be between -{MAX_PITCH:g} and {MAX_PITCH:g} semitones")


def native_reader(
    items: list[Sentence], lang: str, speed: float = 1.0
) -> Callable[[str | dict[str, float]], Iterator[tuple[Audio, SentenceTiming]]]:
    """A function reading `items` (sentences of `lang`) with a given stock voice at `speed`,
    sentence by sentence: what crosslingual.speak re-voices."""

    def read_with(voice: str | dict[str, float]) -> Iterator[tuple[Audio, SentenceTiming]]:
        return _speak(_paced(items), voice, speed, 0.0, lang, None, len(items))

    return read_with


def _read_across(
    text: str,
    reference: Audio | str | os.PathLike[str],
    reference_text: str | None,
    lang: str,
    progress: Progress | None,
    consent: provenance.Consent | provenance.ConsentRecord | None,
    speed: float = 1.0,
) -> Speech:
    """read_like for a language our model does not speak: consent checked and recorded exactly as
    for English, the reading re-voiced (tasks/crosslingual.py) and watermarked."""
    from ..safety import accept_reference
    from . import crosslingual

    provenance.check_consent(consent)  # cheap: refuse before any work
    items = sentences(text, lang)
    if not items:
        raise InputError("nothing to read: the text has no words")
    accepted = accept_reference(reference, reference_text)
    record = provenance.grant(consent, accepted.audio)  # only once the reference is accepted
    reader = native_reader(items, lang, speed)
    audio, timings, route = crosslingual.speak(items, accepted.audio, lang, reader, progress)
    return Speech(provenance.mark(audio), timings, route.voice, record, route.describe())


def _zero_shot(
    spoken: str,
    reference: Audio,
    reference_text: str | None,
    seed: int | None,
    index: int,
    nfe: int,
    guidance: float,
    speed: float = 1.0,
) -> Audio:
    import voicebox.model as vm

    from ..errors import EngineError, VoiceboxError

    try:
        return vm.zero_shot(
            spoken,
            reference,
            reference_text,
            nfe=nfe,
            guidance=guidance,
            seed=None if seed is None else seed + index,
            duration_scale=DURATION_SCALE / speed,
        )
    except VoiceboxError:
        raise
    except Exception as exc:  # the model is another component: report, do not crash
        raise EngineError(f"the voicebox model failed to read {spoken!r}: {exc}") from None


def variation_paths(out: str, n: int) -> list[str]:
    """Where `--variations N` writes: OUT-1.wav … OUT-N.wav beside OUT (just OUT when N is 1)."""
    if n == 1:
        return [out]
    from pathlib import Path

    path = Path(out)
    return [str(path.with_name(f"{path.stem}-{i}{path.suffix}")) for i in range(1, n + 1)]
