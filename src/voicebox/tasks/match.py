"""Choose the voice that speaks new words for a given speaker (the signal shaping is `dsp`'s).

Register first, then timbre: the candidates are the stock voices and Kokoro blends whose median f0 lies
in the speaker's pitch register (a man's words are never spoken by a woman's voice and shifted nine
semitones), ranked by speaker-embedding similarity. The chosen voice's rendition is then moved to the
speaker's median f0 (formant-preserving PSOLA) and matched in speaking rate, loudness and spectral
tilt (by `dsp`), and the room's own noise floor is laid underneath.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import dsp
from ..audio import Audio, atomic_path
from ..errors import InputError, VoiceboxError

# A phonetically varied reference (Harvard sentences) that each candidate voice reads once per process.
REFERENCE_TEXT = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
)
ROBOTIC_ENGINE = "espeak"  # formant synthesis: never a match for a human speaker
BLENDABLE_ENGINE = "kokoro"
SPEED_RANGE = (0.75, 1.35)
# A voice is in the speaker's register when its median f0 lies within this many semitones of the
# speaker's (adult male speech centres near 85-155 Hz, female near 165-255 Hz: about 9 st apart).
REGISTER_ST = 4.0
# When the nearest single voice is further than this, a Kokoro blend bridging the speaker's f0 is tried.
BRIDGE_ST = 2.0
# The rendition is moved to the speaker's median f0 when it is off by more than this (semitones),
# by at most PITCH_LIMIT: inside the register the shift is small, so PSOLA artefacts stay small.
SHIFT_MIN_ST = 1.0
PITCH_LIMIT = 6.0
# Voices whose rendition of the actual new words is compared with the speaker (best by reference).
SHORTLIST = 3
DEFAULT_VOICE = "piper_joe"  # the English default of `voicebox read` (tasks/read.py)
MIN_F0, MAX_F0 = 60.0, 500.0

VoiceSpec = str | dict[str, float]


@dataclass
class VoiceProfile:
    """What a voice sounds like at speed 1: embedding, articulation rate (letters/s) and median f0.

    Profiles are computed once per process and kept in the cache folder, keyed by voice and reference.
    """

    spec: VoiceSpec
    embedding: np.ndarray
    rate: float
    f0: float


@dataclass
class Match:
    """The chosen voice and how to adjust it toward the speaker."""

    voice: VoiceSpec
    similarity: float | None  # None: not measurable (too little generated speech)
    speed: float
    semitones: float
    candidates: list[tuple[str, float]]


def voice_key(spec: VoiceSpec) -> str:
    """A readable, stable name for a voice id or a blend dict ("jf_alpha:0.50+jm_kumo:0.50")."""
    if isinstance(spec, str):
        return spec
    total = sum(spec.values())
    return "+".join(f"{k}:{v / total:.2f}" for k, v in sorted(spec.items()))


def letters(text: str) -> int:
    """Letters and digits in `text`: a cheap proxy for the number of phones spoken."""
    return len(re.findall(r"\w", text))


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median fundamental frequency (Hz) of the voiced frames (Praat's autocorrelation pitch); 0 if
    fewer than five frames are voiced."""
    import parselmouth

    if len(x) < int(0.05 * rate):
        return 0.0
    sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=rate)
    pitch = sound.to_pitch_ac(time_step=dsp.FRAME_S, pitch_floor=MIN_F0, pitch_ceiling=MAX_F0)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size >= 5 else 0.0


def semitones_between(f0: float, target: float) -> float:
    """How many semitones `f0` must move to reach `target` (0 when either is unknown)."""
    return float(12 * np.log2(target / f0)) if f0 > 0 and target > 0 else 0.0


PROFILE_VERSION = "2:" + REFERENCE_TEXT  # 2: f0 by Praat


def _profile_file() -> Path:
    from ..config import cache_dir

    return cache_dir() / "voice_profiles.json"


def _load_profiles() -> dict:
    try:
        data = json.loads(_profile_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == PROFILE_VERSION else {}


def _store_profile(key: str, prof: VoiceProfile) -> None:
    data = _load_profiles() or {"version": PROFILE_VERSION}
    data[key] = {"embedding": prof.embedding.tolist(), "rate": prof.rate, "f0": prof.f0}
    try:
        with atomic_path(_profile_file()) as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")
    except VoiceboxError:
        pass  # a read-only cache only costs time


@functools.cache
def _profile_cached(key: str) -> VoiceProfile:
    from ..engines import speaker, tts

    spec: VoiceSpec = _parse_key(key)
    stored = _load_profiles().get(key)
    if isinstance(stored, dict):
        emb = np.asarray(stored["embedding"], np.float32)
        return VoiceProfile(spec, emb, float(stored["rate"]), float(stored["f0"]))
    audio = tts.synthesize(REFERENCE_TEXT, spec)
    x = audio.mono()
    prof = VoiceProfile(
        spec,
        speaker.embed(audio),
        letters(REFERENCE_TEXT) / max(dsp.active_seconds(x, audio.rate), 1e-3),
        median_f0(x, audio.rate),
    )
    _store_profile(key, prof)
    return prof


def _parse_key(key: str) -> VoiceSpec:
    if ":" not in key:
        return key
    return {name: float(w) for name, w in (part.split(":") for part in key.split("+"))}


def profile(spec: VoiceSpec) -> VoiceProfile:
    """The voice's profile, computed once per process."""
    return _profile_cached(voice_key(spec))


def stock_voices(exclude: tuple[str, ...] = ()) -> list[str]:
    """English-capable bundled natural voices (every engine but espeak-ng), minus `exclude`."""
    from ..engines import tts

    return [
        v.id
        for v in tts.list_voices()
        if v.engine != ROBOTIC_ENGINE and v.speaks("en") and v.id not in exclude
    ]


def blendable(voice: str) -> bool:
    """Whether a stock voice can be mixed into a blend."""
    from ..engines import tts

    return any(v.id == voice and v.engine == BLENDABLE_ENGINE for v in tts.list_voices())


def _gap(spec: VoiceSpec, f0: float) -> float:
    """Semitones between a voice's median f0 and `f0` (0 when the speaker's f0 is unknown)."""
    return abs(semitones_between(profile(spec).f0, f0)) if f0 > 0 else 0.0


def _bridge(names: list[str], f0: float) -> list[VoiceSpec]:
    """A Kokoro blend of the nearest blendable voices below and above `f0`, weighted to land near it.

    Weights are rounded to quarters so few blends ever need a profile.
    """
    voices = [(profile(n).f0, n) for n in names if blendable(n) and profile(n).f0 > 0]
    below = max((v for v in voices if v[0] <= f0), default=None)
    above = min((v for v in voices if v[0] > f0), default=None)
    if below is None or above is None:
        return []
    w = float(np.log(f0 / below[0]) / np.log(above[0] / below[0]))
    w = float(np.clip(round(w * 4) / 4, 0.25, 0.75))
    return [{below[1]: 1.0 - w, above[1]: w}]


def candidates(
    target: Speaker, exclude: tuple[str, ...] = (), blends: bool = True
) -> list[tuple[VoiceSpec, float]]:
    """Voices in the speaker's pitch register, most similar in timbre first: (voice, similarity).

    Register first: a voice whose median f0 is more than REGISTER_ST from the speaker's is left out
    (unless none is that close: then the closest ones). Blends are the two most similar voices in
    register, and a bridge across the speaker's f0 when no single voice is close to it.
    """
    from ..engines.speaker import similarity

    names = stock_voices(exclude)
    if not names:
        raise InputError("every bundled voice is excluded; nothing left to speak the new words")
    pool: list[VoiceSpec] = list(names)
    if blends and target.f0 > 0 and min(_gap(n, target.f0) for n in names) > BRIDGE_ST:
        pool += _bridge(names, target.f0)
    in_register = _in_register(pool, target.f0)
    mixable = [
        n for n in _by_similarity(in_register, target) if isinstance(n, str) and blendable(n)
    ]
    if blends and len(mixable) >= 2:
        a, b = mixable[:2]
        pool += _in_register([{a: 0.5, b: 0.5}, {a: 0.75, b: 0.25}], target.f0, floor=REGISTER_ST)
    scored = [
        (s, similarity(profile(s).embedding, target.embedding))
        for s in _in_register(pool, target.f0)
    ]
    return sorted(scored, key=lambda c: -c[1])


def _in_register(pool: list[VoiceSpec], f0: float, floor: float | None = None) -> list[VoiceSpec]:
    """The voices of `pool` within REGISTER_ST of `f0`, or (none being) within 1 st of the closest."""
    if f0 <= 0 or not pool:
        return list(pool)
    gaps = [_gap(s, f0) for s in pool]
    limit = REGISTER_ST if floor is not None else max(REGISTER_ST, min(gaps) + 1.0)
    return [s for s, g in zip(pool, gaps, strict=True) if g <= limit]


def _by_similarity(pool: list[VoiceSpec], target: Speaker) -> list[VoiceSpec]:
    from ..engines.speaker import similarity

    return sorted(pool, key=lambda s: -similarity(profile(s).embedding, target.embedding))


def nearest_voice(
    target: Speaker, exclude: tuple[str, ...] = (), blends: bool = True
) -> tuple[VoiceSpec, float, list[tuple[str, float]]]:
    """The in-register stock voice or blend most similar to the speaker, its score and all scores."""
    ranked = candidates(target, exclude, blends)
    best, score = ranked[0]
    return best, score, [(voice_key(s), round(v, 4)) for s, v in ranked]


@dataclass
class Speaker:
    """The measured speaker: embedding, articulation rate (letters/s) and median f0 (0 if unknown)."""

    embedding: np.ndarray
    rate: float
    f0: float


def measure(speech: Audio, spoken_letters: int) -> Speaker:
    """Measure the speaker in `speech`, which says `spoken_letters` letters."""
    from ..engines import speaker

    x = speech.mono()
    seconds = dsp.active_seconds(x, speech.rate)
    rate = spoken_letters / seconds if spoken_letters >= 20 and seconds > 0.5 else 0.0
    return Speaker(speaker.embed(speech), rate, median_f0(x, speech.rate))


def tune(
    target: Speaker, voice: VoiceSpec, candidates: list[tuple[str, float]] | None = None
) -> Match:
    """Speed and pitch shift that bring `voice` toward the speaker's rate and pitch level."""
    prof = profile(voice)
    score = float(np.dot(prof.embedding, target.embedding))
    speed = 1.0
    if target.rate > 0 and prof.rate > 0:
        speed = float(np.clip(target.rate / prof.rate, *SPEED_RANGE))
    semitones = float(np.clip(semitones_between(prof.f0, target.f0), -PITCH_LIMIT, PITCH_LIMIT))
    return Match(
        voice, score, speed, semitones, candidates or [(voice_key(voice), round(score, 4))]
    )


def choose(
    speech: Audio, spoken_letters: int, exclude: tuple[str, ...] = (), default: str | None = None
) -> Match:
    """Voice, speed and pitch shift that bring synthetic words closest to the speaker in `speech`."""
    target = measure(speech, spoken_letters)
    if default is not None:
        return tune(target, default)
    voice, _, ranked = nearest_voice(target, exclude)
    return tune(target, voice, ranked)


def shortlist(m: Match, n: int = SHORTLIST) -> list[VoiceSpec]:
    """The `n` best-scoring candidate voices of a match, plus the default English voice if it is
    among the candidates (in the speaker's register), so matching never sounds less like the speaker
    than not matching."""
    ranked = [key for key, _ in sorted(m.candidates, key=lambda c: -c[1])]
    keys = ranked[:n] + [k for k in ranked[n:] if k == DEFAULT_VOICE]
    return [_parse_key(key) for key in keys]


def shift_to(x: np.ndarray, rate: int, f0: float, fallback: np.ndarray | None = None) -> float:
    """Semitones that bring the speech `x` to a median f0 of `f0` (measured on `fallback`, the phrase
    `x` was cut from, when `x` is too short to measure): 0 when already within SHIFT_MIN_ST or a
    pitch is unknown; at most PITCH_LIMIT."""
    have = median_f0(x, rate)
    if have <= 0 and fallback is not None:
        have = median_f0(fallback, rate)
    st = semitones_between(have, f0)
    return float(np.clip(st, -PITCH_LIMIT, PITCH_LIMIT)) if abs(st) > SHIFT_MIN_ST else 0.0
