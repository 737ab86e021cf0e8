"""Cross-lingual voice transfer: a prompt speaker's voice reading a language our model cannot.

Our flow-matching model knows English phones only, so another language is read by the bundled
natural voice of that language nearest the prompt speaker (pitch register first, then speaker
embedding: tasks/match.py), and that reading is re-voiced towards the prompt: its log-mel may be
warped along frequency (a new vocal-tract length, as the pseudo-speakers of model/recipe.py) and
rendered by the universal HiFi-GAN, and PSOLA moves its median pitch onto the prompt's. Of the
warps in WARP_GRID and no warp at all, the one whose result the speaker encoder finds most like
the prompt is used, chosen once per call on the first sentences (bench/crosslingual.py measures
the whole route on real speakers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .. import dsp
from ..audio import Audio
from ..errors import InputError
from ..progress import Progress
from ..text import Sentence, guess_language
from . import match

WARP_GRID = (0.9, 0.95, 1.0, 1.05, 1.1)
"""Frequency-warp factors tried through HiFi-GAN (>1: a shorter vocal tract), besides leaving the
voice's own audio unvocoded; the recipe's pseudo-speakers span 1 ± 0.08-0.15."""
PROBE_SECONDS = 3.0
"""How much of the reading (its first sentences) the warp is chosen on."""
RATE = 16_000
"""The re-voiced audio's rate: our mel features' and the HiFi-GAN adapter's."""
MIN_SAMPLES = 512
"""Shorter pieces (two mel hops) are left as they are."""
PITCH_LIMIT = 8.0
"""Semitones PSOLA may move the reading by (the voice is in the prompt's register already)."""


@dataclass
class Route:
    """How a cross-lingual reading was made: the native voice, the warp and the pitch shift, and
    the probe's similarity to the prompt at each warp tried."""

    voice: str
    warp: float
    semitones: float
    similarity: float
    tried: dict[str, float]
    """Similarity to the prompt per warp tried ("none": the voice's own audio, not vocoded)."""
    vocoded: bool = True

    def describe(self) -> str:
        """The route as the report and JSON give it."""
        how = " (HiFi-GAN)" if self.vocoded else " (no vocoder)"
        return (
            f"cross-lingual: {self.voice} re-voiced, warp {self.warp:.2f}{how}, "
            f"pitch {self.semitones:+.1f} st"
        )


# ---------------------------------------------------------------- which languages


def native_voices(lang: str) -> list[str]:
    """Bundled natural voices (every engine but espeak-ng) that read `lang`."""
    from ..engines import tts

    return [v.id for v in tts.list_voices() if v.engine != match.ROBOTIC_ENGINE and v.speaks(lang)]


def languages() -> tuple[str, ...]:
    """Languages other than English that some bundled natural voice reads: the ones a prompt's
    voice can be carried into (espeak-ng's formant voices cannot carry a voice)."""
    from ..engines import tts

    found = {
        code for v in tts.list_voices() if v.engine != match.ROBOTIC_ENGINE for code in v.languages
    }
    return tuple(sorted(found - {"en"}))


def _names(codes: Iterable[str]) -> str:
    from ..engines.asr import LANGUAGE_NAMES

    return ", ".join(f"{LANGUAGE_NAMES.get(c, c).capitalize()} ({c})" for c in codes)


def check_language(lang: str, detected: bool = False) -> str:
    """The base language code if a prompt's voice can speak it (en, or one of `languages()`),
    else InputError naming the languages that work."""
    from ..engines.asr import LANGUAGE_NAMES

    base = lang.lower().split("-")[0]
    if base == "en" or base in languages():
        return base
    name = LANGUAGE_NAMES.get(base, base).capitalize()
    how = f"the text looks {name} ({base})" if detected else f"{name} ({base}) cannot be read"
    raise InputError(
        f"{how}: a recording's voice speaks English (our model) and {_names(languages())} "
        f"(a native voice re-voiced) only; only espeak-ng reads {base} here, without --like "
        f"(--voice espeak:{base})"
    )


def route_language(text: str, lang: str | None) -> str:
    """The language to read `text` in with a recording's voice: `lang` (checked), else the one
    the text's script and words show (text.guess_language)."""
    if lang:
        return check_language(lang)
    return check_language(guess_language(text), detected=True)


# ---------------------------------------------------------------- the voice and the re-voicing


def nearest_native(target: match.Speaker, lang: str) -> match.VoiceSpec:
    """The natural voice (or Kokoro blend) of `lang` in the speaker's register and most like them."""
    from ..engines import tts

    if lang not in languages():
        check_language(lang)
    own = set(native_voices(lang))
    exclude = tuple(v for v in match.stock_voices() if v not in own)
    blends = all(v in tts.KOKORO_VOICES for v in own) and lang in tts.KOKORO_LANGS
    voice, _, _ = match.nearest_voice(target, exclude, blends=blends)
    return voice


@functools.cache
def _vocoder() -> Callable[[np.ndarray], np.ndarray]:
    from ..model.hifigan import adapter_beside, load_hifigan

    return load_hifigan(adapter=adapter_beside())


def warp(x: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Mono speech with its spectral envelope moved by `factor` (content at f Hz to factor·f),
    rendered by the universal HiFi-GAN: 16 kHz (RATE), as long as the input."""
    from ..audio import resample
    from ..model.features import audio_to_mel, warp_mel

    x16 = np.asarray(
        resample(np.asarray(x, np.float32)[None], rate, RATE)[0] if rate != RATE else x
    )
    if x16.size < MIN_SAMPLES:
        return x16.astype(np.float32)
    mel = audio_to_mel(Audio(x16, RATE)).numpy()
    if factor != 1.0:
        mel = warp_mel(mel, factor)
    y = _vocoder()(mel)
    return np.pad(y, (0, max(0, x16.size - y.size)))[: x16.size].astype(np.float32)


def revoice(x: np.ndarray, rate: int, route: Route) -> tuple[np.ndarray, int]:
    """One piece of the reading re-voiced as `route` says: (samples, their rate)."""
    if route.vocoded:
        x, rate = warp(x, rate, route.warp), RATE
    y = dsp.pitch_shift(x, rate, route.semitones) if route.semitones else np.asarray(x, np.float32)
    return y, rate


def plan(
    probe: np.ndarray,
    rate: int,
    target: match.Speaker,
    voice: str,
    progress: Callable[[], None] | None = None,
) -> Route:
    """The re-voicing whose result on `probe` the speaker encoder finds most like the speaker:
    each warp of WARP_GRID through HiFi-GAN, or none (the voice's own audio), each with the pitch
    shift that lands it on the speaker's median f0."""
    from ..engines import speaker

    options: list[tuple[float, bool]] = [(1.0, False)] + [(f, True) for f in WARP_GRID]
    scores: dict[tuple[float, bool], tuple[float, float]] = {}
    for factor, vocoded in options:
        y, at = (warp(probe, rate, factor), RATE) if vocoded else (probe, rate)
        semitones = _semitones(y, at, target.f0)
        z = dsp.pitch_shift(y, at, semitones) if semitones else y
        sim = speaker.similarity(speaker.embed(Audio(z, at)), target.embedding)
        scores[(factor, vocoded)] = (sim, semitones)
        if progress:
            progress()
    best = max(scores, key=lambda k: scores[k][0])
    sim, semitones = scores[best]
    tried = {_label(*k): round(v[0], 4) for k, v in scores.items()}
    return Route(voice, best[0], round(semitones, 2), round(sim, 4), tried, best[1])


def _label(factor: float, vocoded: bool) -> str:
    return f"{factor:.2f}" if vocoded else "none"


def _semitones(x: np.ndarray, rate: int, f0: float) -> float:
    """The shift (semitones, within PITCH_LIMIT) that moves `x`'s median f0 onto `f0`."""
    st = match.semitones_between(dsp.median_f0(x, rate), f0)
    return float(np.clip(st, -PITCH_LIMIT, PITCH_LIMIT))


# ---------------------------------------------------------------- reading


def speak(
    items: list[Sentence],
    reference: Audio,
    lang: str,
    read: Callable[[match.VoiceSpec], Iterable[tuple[Audio, object]]],
    progress: Progress | None = None,
) -> tuple[Audio, list, Route]:
    """Read `items` (sentences of `lang`) in the voice of `reference`: (audio, sentence timings,
    the route taken). Unmarked: the caller marks it and holds the speaker's consent. Progress
    counts steps: each sentence read, each re-voicing tried, each sentence re-voiced. `read`
    reads the sentences with a stock voice (tasks/read.py native_reader)."""

    total = 2 * len(items) + len(WARP_GRID) + 1
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    target = match.measure(reference, 0)
    voice = nearest_native(target, lang)
    pieces, timings, rate = [], [], 0
    for chunk, timing in read(voice):
        pieces.append(chunk.mono())
        timings.append(timing)
        rate = chunk.rate
        step()
    route = plan(_probe(pieces, rate), rate, target, match.voice_key(voice), step)
    out, out_rate = [], rate
    for x in pieces:
        y, out_rate = revoice(x, rate, route)
        out.append(y)
        step()
    return Audio(np.concatenate(out).astype(np.float32), out_rate), timings, route


def _probe(pieces: list[np.ndarray], rate: int) -> np.ndarray:
    """The first sentences, up to PROBE_SECONDS (at least one whole sentence)."""
    taken, seconds = [], 0.0
    for x in pieces:
        taken.append(x)
        seconds += x.size / rate
        if seconds >= PROBE_SECONDS:
            break
    return np.concatenate(taken)
