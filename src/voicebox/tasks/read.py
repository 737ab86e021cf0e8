"""Read text aloud: normalise, split into sentences, synthesise each, and time sentences and words.

`read` returns the whole `Speech`; `read_stream` yields one (audio chunk, timing) per sentence so
long text plays or writes as it is made, with bounded memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import provenance
from ..audio import Audio
from ..engines import tts
from ..errors import InputError
from ..model.config import GUIDANCE
from ..progress import Progress
from ..text import Sentence, has_words, iter_sentences, normalize, sentences

GAP_SECONDS = 0.25
"""Silence between sentences."""
CLAUSE_GAP_SECONDS = 0.12
"""Pause where a long first sentence was cut after its first clause (streaming only)."""
QUICK_START_CHARS = 80
"""A streamed first sentence longer than this is spoken clause first, for a faster first audio."""
MAX_PITCH = 12.0
DEFAULT_VOICES = {"en": "piper_joe", "ja": "jf_alpha"}
"""English: Piper joe measured best by whisper WER (bench/read.py); Japanese: Kokoro's jf_alpha."""


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

    @property
    def words(self) -> list[Timing]:
        """Every spoken word with its times, in order."""
        return [w for s in self.sentences for w in s.words]

    def to_json(self) -> str:
        """Timings as JSON: voice, rate, duration, sentences (with words)."""
        return timings_json(self.sentences, self.voice, self.audio.rate, self.audio.duration)

    def to_srt(self) -> str:
        """Sentence subtitles in SubRip format."""
        return to_srt(self.sentences)

    def to_vtt(self) -> str:
        """Sentence subtitles in WebVTT format."""
        return to_vtt(self.sentences)


# ---------------------------------------------------------------- voices


def voices(lang: str | None = None) -> list[tts.Voice]:
    """Voices available offline; with `lang`, only those that can read that language."""
    every = tts.list_voices()
    return [v for v in every if v.speaks(lang)] if lang else every


def default_voice(lang: str) -> str:
    """The voice used when none is chosen: the measured best for English, espeak-ng elsewhere."""
    return DEFAULT_VOICES.get(lang, tts.ESPEAK_PREFIX + lang)


def parse_blend(spec: str) -> dict[str, float]:
    """Parse a blend like 'jf_alpha:0.6,jm_kumo:0.4' (a name without weight counts 1)."""
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, _, weight = part.strip().partition(":")
        if not name.strip():
            continue
        try:
            value = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise InputError(f"blend weight '{weight}' for '{name}' is not a number") from None
        weights[name.strip()] = weights.get(name.strip(), 0.0) + value
    return check_blend(weights)


def check_blend(weights: dict[str, float]) -> dict[str, float]:
    """The blend itself if every name is a Kokoro voice and the weights are usable; else InputError."""
    if not weights:
        raise InputError("empty blend; write it like 'jf_alpha:0.6,jm_kumo:0.4'")
    for name, value in weights.items():
        if name not in tts.KOKORO_VOICES:
            raise InputError(
                f"'{name}' cannot be blended; blends mix Kokoro voices: {', '.join(tts.KOKORO_VOICES)}"
            )
        if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
            raise InputError(f"blend weight for '{name}' must be a non-negative number")
    if sum(weights.values()) <= 0:
        raise InputError("blend weights must not all be zero")
    return dict(weights)


def choose_voice(
    voice: str | None, blend: str | dict[str, float] | None, lang: str | None
) -> tuple[str | dict[str, float], str, str]:
    """(voice for the engine, its display name, text language) from the caller's choices.

    Fails early with InputError on an unknown voice, a bad blend or a language no voice reads.
    """
    if voice and blend:
        raise InputError("choose either a voice or a blend, not both")
    if lang is None:
        code = (
            voice[len(tts.ESPEAK_PREFIX) :] if voice and voice.startswith(tts.ESPEAK_PREFIX) else ""
        )
        lang = code.split("-")[0] if code else "en"
    lang = lang.lower()
    if voice is None and not blend:
        voice = default_voice(lang)
    lang = lang.split("-")[0]  # text rules and the neural voices go by the base language
    if blend:
        weights = parse_blend(blend) if isinstance(blend, str) else check_blend(dict(blend))
        total = sum(weights.values())
        name = ",".join(f"{k}:{v / total:.2f}" for k, v in weights.items())
        return weights, name, lang
    chosen = str(voice)
    if chosen.startswith(tts.ESPEAK_PREFIX):
        from ..engines import espeak

        espeak.resolve(chosen[len(tts.ESPEAK_PREFIX) :])  # fails early on an unknown language
    elif chosen not in tts.KOKORO_VOICES and chosen != tts.PIPER_VOICE:
        raise InputError(f"unknown voice '{chosen}'; list them with `voicebox voices`")
    return chosen, chosen, lang


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
    """Read `text` aloud; `lang` None means the voice's language (English for the bundled voices)."""
    engine_voice, name, lang = choose_voice(voice, blend, lang)
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
    engine_voice, _, lang = choose_voice(voice, blend, lang)
    if isinstance(text, str):
        items: Iterable[Sentence] = sentences(text, lang)
        total = len(items)  # type: ignore[arg-type]
    else:
        items, total = iter_sentences(text, lang), 0
    for chunk, timing in _speak(
        _quick_start(items, lang), engine_voice, speed, pitch, lang, progress, total
    ):
        yield provenance.mark(chunk), timing  # each streamed sentence carries the watermark


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
    if not np.isfinite(pitch) or abs(pitch) > MAX_PITCH:
        raise InputError(f"pitch must be between -{MAX_PITCH:g} and {MAX_PITCH:g} semitones")
    offset = 0.0
    for index, (sentence, pause) in enumerate(items):
        audio = tts.synthesize(sentence.spoken, voice, speed=speed, lang=lang)
        x = audio.samples[0]
        if pitch:
            x = shift_pitch(x, audio.rate, pitch)
        gap = np.zeros(int(pause * audio.rate), np.float32)
        start = offset + gap.size / audio.rate
        end = start + x.size / audio.rate
        words = word_times(sentence.spoken, start, end, lang)
        offset = end
        if progress:
            progress(index + 1, max(total, index + 1))
        timing = SentenceTiming(sentence.text, start, end, sentence.spoken, words)
        yield Audio(np.concatenate([gap, x]), audio.rate), timing


def shift_pitch(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by `semitones` keeping duration (librosa: phase-vocoder stretch, then soxr)."""
    import librosa

    if x.size < 2048:
        return x
    y = librosa.effects.pitch_shift(x, sr=rate, n_steps=semitones, res_type="soxr_hq")
    return np.clip(y, -1.0, 1.0).astype(np.float32)


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


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(timings: Iterable[Timing]) -> str:
    """SubRip subtitles, one cue per sentence."""
    cues = [
        f"{i}\n{_clock(t.start, ',')} --> {_clock(t.end, ',')}\n{t.text}\n"
        for i, t in enumerate(timings, 1)
    ]
    return "\n".join(cues)


def to_vtt(timings: Iterable[Timing]) -> str:
    """WebVTT subtitles, one cue per sentence."""
    cues = [f"{_clock(t.start, '.')} --> {_clock(t.end, '.')}\n{t.text}\n" for t in timings]
    return "WEBVTT\n\n" + "\n".join(cues)


def timings_json(timings: list[SentenceTiming], voice: str, rate: int, duration: float) -> str:
    """Sentence and word timings as a JSON document."""
    doc = {
        "voice": voice,
        "rate": rate,
        "duration": round(duration, 3),
        "sentences": [
            {**asdict(t), "start": round(t.start, 3), "end": round(t.end, 3)} for t in timings
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


# ---------------------------------------------------------------- reading in a reference's voice


ENGINES = ("stock", "voicebox")


def read_like(
    text: str,
    reference: Audio,
    reference_text: str | None = None,
    seed: int | None = None,
    nfe: int = 16,
    guidance: float = GUIDANCE,
    progress: Progress | None = None,
) -> Speech:
    """Read English `text` in the voice of `reference` (3–10 s of speech) with our Voicebox model,
    sentence by sentence (zero-shot: the reference is the prompt, only the new words are generated).

    `reference_text` is the reference's transcript (whisper's when absent); `seed` fixes the result.
    """
    from ..model.checkpoint import find

    find(None, "audio")  # NotReadyError (one line) before any work when no model is trained
    if reference.duration < 1.0:
        raise InputError("the reference voice needs at least 1 s of speech (3-10 s is best)")
    items = sentences(text, "en")
    if not items:
        raise InputError("nothing to read: the text has no words")
    if reference_text is None:
        from ..engines.asr import transcribe_text

        reference_text = transcribe_text(reference)  # once, not once per sentence
    chunks, timings, rate, offset = [], [], 0, 0.0
    for index, (sentence, pause) in enumerate(_paced(items)):
        audio = _zero_shot(sentence.spoken, reference, reference_text, seed, index, nfe, guidance)
        rate = audio.rate
        gap = np.zeros(int(pause * rate), np.float32)
        start = offset + gap.size / rate
        end = start + audio.frames / rate
        words = word_times(sentence.spoken, start, end, "en")
        timings.append(SentenceTiming(sentence.text, start, end, sentence.spoken, words))
        chunks += [gap, audio.samples[0]]
        offset = end
        if progress:
            progress(index + 1, len(items))
    return Speech(Audio(np.concatenate(chunks), rate), timings, "voicebox")


def _zero_shot(
    spoken: str,
    reference: Audio,
    reference_text: str | None,
    seed: int | None,
    index: int,
    nfe: int,
    guidance: float,
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
