"""espeak-ng speech for any language, through the library and data shipped in espeakng-loader.

A private copy of the shared library is loaded with ctypes so its global state never collides with
the copy phonemizer loads for phonemes.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EngineError, InputError

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: espeak_Synth returns once every sample is delivered
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1  # espeakRATE parameter: words per minute
_DEFAULT_WPM = 175
_LOCK = threading.Lock()
_ALIASES = {"en": "en-us", "pt": "pt-br", "zh": "cmn"}

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class EspeakLanguage:
    """One language espeak-ng can speak: its code (as used in `espeak:<code>`) and name."""

    code: str
    name: str
    identifier: str


class _Engine:
    """One initialised libespeak-ng instance in synchronous mode, collecting samples in a buffer."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise EngineError(
                "espeak-ng is not installed (espeakng-loader); reinstall voicebox"
            ) from None
        source = Path(espeakng_loader.get_library_path())
        self._dir = tempfile.mkdtemp(prefix="voicebox-espeak-")
        private = Path(self._dir) / source.name
        shutil.copy(source, private)
        self.lib = ctypes.CDLL(str(private))
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        data = espeakng_loader.get_data_path()
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, str(data).encode(), 0)
        if self.rate <= 0:
            raise EngineError("espeak-ng failed to initialise (its data folder is missing?)")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
        self.lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]

    def _collect(self, wav: ctypes.Array, count: int, events: int) -> int:
        if count > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def languages(self) -> list[EspeakLanguage]:
        found: dict[str, EspeakLanguage] = {}
        voices = self.lib.espeak_ListVoices(None)
        i = 0
        while voices[i]:
            v = voices[i].contents
            code = (v.languages or b"\x00")[1:].decode("utf-8", "replace")
            identifier = (v.identifier or b"").decode("utf-8", "replace")
            if code and not identifier.startswith("mb/") and code not in found:
                name = (v.name or b"").decode("utf-8", "replace").replace("_", " ")
                found[code] = EspeakLanguage(code, name, identifier)
            i += 1
        return sorted(found.values(), key=lambda lang: lang.code)

    def resolve(self, code: str) -> str:
        """The voice identifier for a language code; a bare code takes its first regional variant."""
        known = {lang.code: lang.identifier for lang in self.languages()}
        code = _ALIASES.get(code.lower(), code.lower())
        if code in known:
            return known[code]
        for candidate, identifier in known.items():
            if candidate.startswith(code + "-"):
                return identifier
        raise InputError(f"espeak-ng has no voice for language '{code}'; see `voicebox voices`")

    def speak(self, text: str, code: str, speed: float) -> np.ndarray:
        identifier = self.resolve(code)
        if self.lib.espeak_SetVoiceByName(identifier.encode()) != 0:
            raise EngineError(f"espeak-ng could not load its '{code}' voice")
        self.lib.espeak_SetParameter(_RATE, int(round(_DEFAULT_WPM * speed)), 0)
        payload = text.encode("utf-8") + b"\x00"
        self._chunks = []
        status = self.lib.espeak_Synth(
            payload, len(payload), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0:
            raise EngineError(f"espeak-ng failed to speak (status {status})")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return pcm.astype(np.float32) / 32768.0


@functools.cache
def _engine() -> _Engine:
    return _Engine()


def languages() -> list[EspeakLanguage]:
    """Every language the bundled espeak-ng can speak, sorted by code."""
    with _LOCK:
        return _engine().languages()


def speak(text: str, code: str, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak `text` in language `code` with espeak-ng; returns (float32 mono samples, rate)."""
    with _LOCK:
        engine = _engine()
        return engine.speak(text, code, speed), engine.rate


def resolve(code: str) -> str:
    """The espeak-ng voice identifier for a language code; InputError if there is none."""
    with _LOCK:
        return _engine().resolve(code)
