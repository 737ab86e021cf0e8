"""The phone inventory the model speaks in: CMU ARPAbet without stress, plus silence and two specials.

Index 0 pads batches; index 1 is the null phone used for classifier-free guidance (phones dropped).
"""

from __future__ import annotations

PAD = "<pad>"
NULL = "<null>"
SIL = "SIL"
ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
).split()
PHONES: tuple[str, ...] = (PAD, NULL, SIL, *ARPABET)
PHONE_ID: dict[str, int] = {p: i for i, p in enumerate(PHONES)}
N_PHONES = len(PHONES)

# --- text to phones ------------------------------------------------------------------------------

import functools  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402

from ..errors import EngineError, InputError  # noqa: E402

# espeak-ng IPA (en-us, no stress marks) to ARPAbet; longest match first.
_IPA_TO_ARPA: dict[str, tuple[str, ...]] = {
    "aɪɚ": ("AY", "ER"),
    "aʊɚ": ("AW", "ER"),
    "ɑːɹ": ("AA", "R"),
    "ɔːɹ": ("AO", "R"),
    "oːɹ": ("AO", "R"),
    "ɪɹ": ("IH", "R"),
    "ɛɹ": ("EH", "R"),
    "ʊɹ": ("UH", "R"),
    "aɪ": ("AY",),
    "aʊ": ("AW",),
    "eɪ": ("EY",),
    "oʊ": ("OW",),
    "ɔɪ": ("OY",),
    "tʃ": ("CH",),
    "dʒ": ("JH",),
    "ɑː": ("AA",),
    "ɔː": ("AO",),
    "iː": ("IY",),
    "uː": ("UW",),
    "ɜː": ("ER",),
    "n̩": ("AH", "N"),
    "l̩": ("AH", "L"),
    "m̩": ("AH", "M"),
    "ɑ": ("AA",),
    "æ": ("AE",),
    "ʌ": ("AH",),
    "ə": ("AH",),
    "ɐ": ("AH",),
    "ɔ": ("AO",),
    "ɛ": ("EH",),
    "e": ("EH",),
    "ɚ": ("ER",),
    "ɝ": ("ER",),
    "ɜ": ("ER",),
    "ɪ": ("IH",),
    "ᵻ": ("IH",),
    "i": ("IY",),
    "ʊ": ("UH",),
    "u": ("UW",),
    "o": ("OW",),
    "a": ("AA",),
    "b": ("B",),
    "d": ("D",),
    "ð": ("DH",),
    "f": ("F",),
    "ɡ": ("G",),
    "g": ("G",),
    "h": ("HH",),
    "j": ("Y",),
    "k": ("K",),
    "l": ("L",),
    "m": ("M",),
    "n": ("N",),
    "ŋ": ("NG",),
    "p": ("P",),
    "ɹ": ("R",),
    "r": ("R",),
    "s": ("S",),
    "ʃ": ("SH",),
    "t": ("T",),
    "θ": ("TH",),
    "v": ("V",),
    "w": ("W",),
    "x": ("K",),
    "z": ("Z",),
    "ʒ": ("ZH",),
    "ɾ": ("T",),
    "ʔ": ("T",),
}
_IPA_KEYS = sorted(_IPA_TO_ARPA, key=len, reverse=True)
_IPA_SKIP = set("ˈˌː ‍-_.|'̃")
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*|[.,;:!?…—–()\"]")
_PAUSE = set('.,;:!?…—–()"')
_lock = threading.Lock()


def ipa_to_arpabet(ipa: str) -> list[str]:
    """ARPAbet phones for an espeak-ng IPA string (unknown symbols are skipped)."""
    out: list[str] = []
    i = 0
    while i < len(ipa):
        for key in _IPA_KEYS:
            if ipa.startswith(key, i):
                out.extend(_IPA_TO_ARPA[key])
                i += len(key)
                break
        else:
            i += 1  # stress marks, length marks, spaces and anything espeak adds that we do not model
    return out


@functools.cache
def cmudict() -> dict[str, list[str]]:
    """The CMU pronouncing dictionary bundled with pocketsphinx: word -> first pronunciation."""
    import pocketsphinx

    path = os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")
    if not os.path.exists(path):
        raise EngineError(f"pocketsphinx dictionary missing at {path}; reinstall pocketsphinx")
    table: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or "(" in parts[0]:
                continue
            table.setdefault(parts[0], [re.sub(r"\d", "", p) for p in parts[1:]])
    return table


@functools.cache
def _espeak():  # noqa: ANN202 - phonemizer backend, imported lazily
    import espeakng_loader

    os.environ.setdefault("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    return EspeakBackend("en-us", with_stress=False, preserve_punctuation=False)


def word_phones(word: str) -> list[str]:
    """ARPAbet phones of one word: the CMU dictionary first, espeak-ng for anything it lacks."""
    key = word.lower().replace("’", "'")
    found = cmudict().get(key)
    if found:
        return list(found)
    with _lock:
        ipa = _espeak().phonemize([key], strip=True)[0]
    phones = ipa_to_arpabet(ipa)
    if not phones:
        raise InputError(f"cannot pronounce {word!r}")
    return phones


def words(text: str) -> list[str]:
    """Words and pause marks of a text, in order (pause marks are single punctuation tokens)."""
    return _TOKEN.findall(text)


def g2p_words(text: str) -> list[tuple[str, list[str]]]:
    """(word, phones) pairs for a text, with ("", [SIL]) at punctuation pauses and both edges."""
    out: list[tuple[str, list[str]]] = [("", [SIL])]
    for token in words(text):
        if token in _PAUSE:
            if out[-1][0] != "":
                out.append(("", [SIL]))
            continue
        out.append((token, word_phones(token)))
    if out[-1][0] != "":
        out.append(("", [SIL]))
    if len(out) == 1:
        raise InputError("text has no words to speak")
    return out


def g2p(text: str) -> list[str]:
    """Phones (PHONES symbols) for English text: SIL at the edges and at punctuation pauses."""
    return [p for _, phones in g2p_words(text) for p in phones]
