"""Make synthetic words sound like a given speaker in a given room.

Picks the stock voice or Kokoro blend whose speaker embedding is nearest the speaker, then matches
speaking rate, pitch level, loudness and spectral tilt, and lays the room's own noise floor underneath.
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
STOCK_ENGINES = ("kokoro", "piper")
BLENDABLE_ENGINE = "kokoro"
SPEED_RANGE = (0.75, 1.35)
PITCH_LIMIT = 4.0  # semitones
# Move half way toward the speaker's median f0: speaker similarity barely changes with the shift
# (0.565/0.577/0.558 for 0/half/full on a Piper speaker) and a full shift adds PSOLA artefacts.
PITCH_STRENGTH = 0.5
# Voices whose rendition of the actual new words is compared with the speaker (best by reference).
SHORTLIST = 4
DEFAULT_VOICE = "piper_joe"  # the English default of `voicebox read` (tasks/read.py)
TILT_LIMIT = 3.0  # dB per octave
FRAME_S = 0.01
MIN_F0, MAX_F0 = 60.0, 400.0

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
    similarity: float
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
    """Median fundamental frequency (Hz) of voiced frames, by normalised autocorrelation; 0 if none."""
    from ..audio import resample

    sr = 16_000
    y = resample(x, rate, sr) if rate != sr else np.asarray(x, np.float32)
    win, hop = int(0.04 * sr), int(0.01 * sr)
    if len(y) < win:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(y, win)[::hop].astype(np.float64)
    db = 10 * np.log10(np.square(frames).mean(axis=1) + 1e-12)
    frames = frames[db > silence_threshold(db)]
    if len(frames) == 0:
        return 0.0
    frames = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames * np.hanning(win), n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]
    ac /= ac[:, :1] + 1e-12
    lo, hi = int(sr / MAX_F0), int(sr / MIN_F0)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(len(ac)), lag]
    voiced = lag[peak > 0.5]
    if voiced.size < 5:
        return 0.0
    return float(sr / np.median(voiced))


PROFILE_VERSION = "1:" + REFERENCE_TEXT


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
    """English-capable bundled voices (Kokoro packs and Piper), minus `exclude`."""
    from ..engines import tts

    return [
        v.id
        for v in tts.list_voices()
        if v.engine in STOCK_ENGINES and v.speaks("en") and v.id not in exclude
    ]


def blendable(voice: str) -> bool:
    """Whether a stock voice can be mixed into a blend."""
    from ..engines import tts

    return any(v.id == voice and v.engine == BLENDABLE_ENGINE for v in tts.list_voices())


def nearest_voice(
    target: np.ndarray, exclude: tuple[str, ...] = (), blends: bool = True
) -> tuple[VoiceSpec, float, list[tuple[str, float]]]:
    """The stock voice or two-voice blend whose embedding is most similar to `target`."""
    from ..engines.speaker import similarity

    names = stock_voices(exclude)
    if not names:
        raise InputError("every bundled voice is excluded; nothing left to speak the new words")
    scored = sorted(((similarity(profile(n).embedding, target), n) for n in names), reverse=True)
    candidates: list[tuple[VoiceSpec, float]] = [(n, s) for s, n in scored]
    mixable = [n for _, n in scored if blendable(n)][:2]
    if blends and len(mixable) >= 2:
        a, b = mixable
        specs: list[dict[str, float]] = [{a: 0.5, b: 0.5}, {a: 0.75, b: 0.25}]
        candidates += [(s, similarity(profile(s).embedding, target)) for s in specs]
    best, score = max(candidates, key=lambda c: c[1])
    return best, score, [(voice_key(s), round(v, 4)) for s, v in candidates]


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
    semitones = 0.0
    if target.f0 > 0 and prof.f0 > 0:
        full = PITCH_STRENGTH * 12 * np.log2(target.f0 / prof.f0)
        semitones = float(np.clip(full, -PITCH_LIMIT, PITCH_LIMIT))
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
    voice, _, candidates = nearest_voice(target.embedding, exclude)
    return tune(target, voice, candidates)


def shortlist(m: Match, n: int = SHORTLIST) -> list[VoiceSpec]:
    """The `n` best-scoring candidate voices of a match, plus the default English voice if allowed.

    The default is always tried so matching can never sound less like the speaker than not matching.
    """
    ranked = [key for key, _ in sorted(m.candidates, key=lambda c: -c[1])]
    keys = ranked[:n] + [k for k in ranked[n:] if k == DEFAULT_VOICE]
    return [_parse_key(key) for key in keys]


def pitch_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Move the pitch median by `semitones`, keeping duration and formants (Praat PSOLA)."""
    if abs(semitones) < 0.3 or len(x) < int(0.1 * rate):
        return x
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=rate)
    pitch = call(sound, "To Pitch", 0.0, MIN_F0, MAX_F0)
    median = call(pitch, "Get quantile", 0, 0, 0.5, "Hertz")
    if not np.isfinite(median) or median <= 0:
        return x
    target = median * 2 ** (semitones / 12)
    shifted = call(sound, "Change gender", MIN_F0, MAX_F0 * 1.5, 1.0, target, 1.0, 1.0)
    y = np.asarray(shifted.values[0], np.float32)
    return y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))


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
