"""Make synthetic words sound like a given speaker in a given room.

Register first, then timbre: the candidates are the stock voices and Kokoro blends whose median f0 lies
in the speaker's pitch register (a man's words are never spoken by a woman's voice and shifted nine
semitones), ranked by speaker-embedding similarity. The chosen voice's rendition is then moved to the
speaker's median f0 (formant-preserving PSOLA) and matched in speaking rate, loudness and spectral
tilt, and the room's own noise floor is laid underneath.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
TILT_LIMIT = 3.0  # dB per octave
FRAME_S = 0.01
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


def frame_db(x: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Energy in dB of consecutive frames of a mono signal."""
    hop = max(1, int(frame_s * rate))
    n = len(x) // hop
    if n == 0:
        return np.zeros(0)
    power = np.square(x[: n * hop].astype(np.float64)).reshape(n, hop).mean(axis=1)
    return 10 * np.log10(power + 1e-12)


def silence_threshold(db: np.ndarray) -> float:
    """Frames below this level (dB) are pauses: a little above the noise floor, well below speech."""
    if db.size == 0:
        return -120.0
    floor = float(np.percentile(db, 10))
    loud = float(np.percentile(db, 95))
    return max(floor + 10.0, loud - 35.0) if loud - floor > 15 else floor + 3.0


def active_seconds(x: np.ndarray, rate: int) -> float:
    """Seconds of `x` above the pause threshold: speaking time without pauses."""
    db = frame_db(x, rate)
    return float((db > silence_threshold(db)).sum()) * FRAME_S


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median fundamental frequency (Hz) of the voiced frames (Praat's autocorrelation pitch); 0 if
    fewer than five frames are voiced."""
    import parselmouth

    if len(x) < int(0.05 * rate):
        return 0.0
    sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=rate)
    pitch = sound.to_pitch_ac(time_step=FRAME_S, pitch_floor=MIN_F0, pitch_ceiling=MAX_F0)
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
        letters(REFERENCE_TEXT) / max(active_seconds(x, audio.rate), 1e-3),
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
    seconds = active_seconds(x, speech.rate)
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


def pitch_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Move the pitch median by `semitones`, keeping duration and formants (PSOLA)."""
    if abs(semitones) < 0.3 or len(x) < int(0.1 * rate):
        return x
    try:
        from .. import dsp  # the project's one PSOLA shifter, where it exists
    except ImportError:
        dsp = None
    if dsp is not None and hasattr(dsp, "pitch_shift"):
        y = np.asarray(dsp.pitch_shift(np.asarray(x, np.float32), rate, semitones), np.float32)
    else:
        y = _praat_shift(x, rate, semitones)
    return y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))


def _praat_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=rate)
    pitch = call(sound, "To Pitch", 0.0, MIN_F0, MAX_F0)
    median = call(pitch, "Get quantile", 0, 0, 0.5, "Hertz")
    if not np.isfinite(median) or median <= 0:
        return np.asarray(x, np.float32)
    target = median * 2 ** (semitones / 12)
    shifted = call(sound, "Change gender", MIN_F0, MAX_F0 * 1.5, 1.0, target, 1.0, 1.0)
    return np.asarray(shifted.values[0], np.float32)


def shift_to(x: np.ndarray, rate: int, f0: float, fallback: np.ndarray | None = None) -> float:
    """Semitones that bring the speech `x` to a median f0 of `f0` (measured on `fallback`, the phrase
    `x` was cut from, when `x` is too short to measure): 0 when already within SHIFT_MIN_ST or a
    pitch is unknown; at most PITCH_LIMIT."""
    have = median_f0(x, rate)
    if have <= 0 and fallback is not None:
        have = median_f0(fallback, rate)
    st = semitones_between(have, f0)
    return float(np.clip(st, -PITCH_LIMIT, PITCH_LIMIT)) if abs(st) > SHIFT_MIN_ST else 0.0


def spectral_slope(x: np.ndarray, rate: int) -> float:
    """Slope (dB per octave) of the long-term spectrum of the active parts of `x`, 200 Hz-6 kHz."""
    from scipy.signal import welch

    hop = int(FRAME_S * rate)
    db = frame_db(x, rate)
    keep = np.repeat(db > silence_threshold(db), hop)
    y = x[: len(keep)][keep]
    if len(y) < 1024:
        return 0.0
    f, p = welch(y, fs=rate, nperseg=1024)
    band = (f >= 200) & (f <= min(6000.0, 0.45 * rate))
    if band.sum() < 4:
        return 0.0
    octaves = np.log2(f[band] / 1000.0)
    return float(np.polyfit(octaves, 10 * np.log10(p[band] + 1e-20), 1)[0])


def tilt(x: np.ndarray, rate: int, db_per_octave: float) -> np.ndarray:
    """Apply a gentle zero-phase spectral tilt (pivot 1 kHz, gain limited to ±12 dB)."""
    if abs(db_per_octave) < 0.25 or len(x) == 0:
        return x
    n = len(x)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    gain_db = np.clip(db_per_octave * np.log2(np.maximum(f, 100.0) / 1000.0), -12.0, 12.0)
    return np.fft.irfft(np.fft.rfft(x) * 10 ** (gain_db / 20), n=n).astype(np.float32)


def active_rms_db(x: np.ndarray, rate: int) -> float:
    """Level (dB) of the speaking frames only, so pauses do not dilute it."""
    db = frame_db(x, rate)
    if db.size == 0:
        return -120.0
    loud = db[db > silence_threshold(db)]
    if loud.size == 0:
        return float(np.max(db))
    return float(10 * np.log10(np.mean(10 ** (loud / 10))))


def trim(x: np.ndarray, rate: int, floor_db: float = 40.0, fade_s: float = 0.005) -> np.ndarray:
    """Cut leading/trailing silence (frames 40 dB under the loudest) and fade the new edges."""
    db = frame_db(x, rate)
    if db.size == 0:
        return x
    on = np.flatnonzero(db > db.max() - floor_db)
    hop = int(FRAME_S * rate)
    return fade(x[max(0, on[0] * hop - hop) : (on[-1] + 2) * hop], rate, fade_s)


def fade(x: np.ndarray, rate: int, fade_s: float = 0.005) -> np.ndarray:
    """A copy of `x` with short linear fades at both ends, so cut edges do not click."""
    y = np.asarray(x, np.float32).copy()
    n = min(int(fade_s * rate), len(y) // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def noise_bed(samples: np.ndarray, rate: int, length: int, seed: int = 0) -> np.ndarray:
    """`length` samples of the recording's own noise floor per channel, from its quietest stretches.

    Quiet grains (40 ms) are overlap-added with a sine window, whose squares sum to one, so the
    noise keeps its level and colour without repeating audibly.
    """
    channels = samples.shape[0]
    out = np.zeros((channels, length), np.float32)
    grain = max(16, int(0.04 * rate)) // 2 * 2
    hop = grain // 2
    mono = samples.mean(axis=0)
    starts = np.arange(0, len(mono) - grain, hop)
    if length == 0 or starts.size == 0:
        return out
    energy = np.array([np.mean(np.square(mono[s : s + grain])) for s in starts])
    quiet = starts[energy <= np.percentile(energy, 10)]
    window = np.sin(np.pi * (np.arange(grain) + 0.5) / grain).astype(np.float32)
    rng = np.random.default_rng(seed)
    for pos in range(-hop, length, hop):
        s = int(rng.choice(quiet))
        lo, hi = max(pos, 0), min(pos + grain, length)
        if hi <= lo:
            continue
        out[:, lo:hi] += samples[:, s + lo - pos : s + hi - pos] * window[lo - pos : hi - pos]
    return out
