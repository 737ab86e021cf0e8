"""Text front end for reading aloud: sentence splitting, English normalisation and length guards.

`sentences(text)` splits raw text into sentences (respecting abbreviations, initials, decimals and
URLs) and pairs each with the words a voice should say: numbers, dates, times, money, units, URLs,
e-mail addresses, phone numbers and symbols written out (num2words does the numbers).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import InputError

MAX_TEXT_CHARS = 200_000
"""Longest text read into memory at once (~9 hours of speech); longer text must be streamed."""
MAX_SENTENCE_CHARS = 300
"""Longer sentences are cut at commas, then spaces, so a voice never receives an absurd input."""
MAX_WORD_CHARS = 40
"""Longer unbroken tokens are cut into pieces of this size."""
MAX_PARAGRAPH_CHARS = 20_000
"""A streamed paragraph is processed once it reaches this size, keeping memory bounded."""


@dataclass
class Sentence:
    """One sentence: the text as written (for subtitles) and the words to speak."""

    text: str
    spoken: str


# ---------------------------------------------------------------- vocabulary

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ABBR = {m[:3].lower(): m for m in _MONTHS} | {"sept": "September"}

# Abbreviations that never end a sentence (a name or number always follows them).
_TITLES = {
    "mr": "Mister",
    "mrs": "Missus",
    "ms": "Miz",
    "dr": "Doctor",
    "prof": "Professor",
    "gen": "General",
    "gov": "Governor",
    "sen": "Senator",
    "rep": "Representative",
    "capt": "Captain",
    "lt": "Lieutenant",
    "col": "Colonel",
    "sgt": "Sergeant",
    "rev": "Reverend",
    "hon": "Honorable",
    "mt": "Mount",
    "ft": "Fort",
    "vs": "versus",
    "no": "number",
    "nos": "numbers",
    "fig": "figure",
    "approx": "approximately",
    "dept": "department",
    "est": "established",
    "vol": "volume",
    "ch": "chapter",
    "p": "page",
    "pp": "pages",
}
# Abbreviations that may end a sentence.
_FINALS = {
    "etc": "et cetera",
    "inc": "Incorporated",
    "ltd": "Limited",
    "co": "Company",
    "corp": "Corporation",
    "jr": "Junior",
    "sr": "Senior",
    "ave": "Avenue",
    "blvd": "Boulevard",
    "rd": "Road",
    "st": "Street",
}
_LATIN = {"e.g.": "for example", "i.e.": "that is", "cf.": "compare"}

_UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "m/s": ("meter per second", "meters per second"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "MW": ("megawatt", "megawatts"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "ms": ("millisecond", "milliseconds"),
    "s": ("second", "seconds"),
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
}
_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
}
_SCALES = ("thousand", "million", "billion", "trillion")
_SYMBOLS = {
    "&": " and ",
    "+": " plus ",
    "=": " equals ",
    "%": " percent ",
    "@": " at ",
    "#": " number ",
    "×": " times ",
    "÷": " divided by ",
    "~": " about ",
    "<": " less than ",
    ">": " greater than ",
    "/": " slash ",
    "*": " ",
    "_": " ",
    "|": " ",
    "^": " ",
    "\\": " ",
    "`": " ",
    "[": " ",
    "]": " ",
    "{": " ",
    "}": " ",
}
_FRACTIONS = {
    (1, 2): "one half",
    (1, 3): "one third",
    (2, 3): "two thirds",
    (1, 4): "one quarter",
    (3, 4): "three quarters",
}
_DIGITS = "zero one two three four five six seven eight nine".split()

# ---------------------------------------------------------------- numbers


def _n2w(value: int | str, to: str = "cardinal") -> str:
    from num2words import num2words

    return num2words(int(value), to=to, lang="en").replace(",", "")


def cardinal(digits: str) -> str:
    """Words for an integer or decimal written in digits (commas allowed): '1,234.5' -> words."""
    digits = digits.replace(",", "")
    negative = digits.startswith(("-", "−"))
    digits = digits.lstrip("-−")
    whole, _, frac = digits.partition(".")
    if len(whole) > 15:  # beyond trillions nobody reads magnitudes: say the digits
        words = " ".join(_DIGITS[int(d)] for d in whole)
    else:
        words = _n2w(whole or "0")
    if frac:
        words += " point " + " ".join(_DIGITS[int(d)] for d in frac)
    return ("minus " + words) if negative else words


def ordinal(value: str) -> str:
    """Words for an ordinal number given as digits: '21' -> 'twenty-first'."""
    if len(value) > 15:
        return cardinal(value)
    return _n2w(value, "ordinal")


def year(value: str) -> str:
    """A four-digit year read the usual English way: 1999 -> 'nineteen ninety-nine'."""
    n = int(value)
    if 2000 <= n <= 2009:
        return _n2w(n)
    return _n2w(n, "year")


def digits_one_by_one(value: str) -> str:
    """Each digit as a word, as phone numbers and codes are read."""
    return " ".join(_DIGITS[int(d)] for d in value if d.isdigit())


# ---------------------------------------------------------------- rules, applied in order

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?|\d*\.\d+"


def _url(match: re.Match[str]) -> str:
    url = re.sub(r"^[a-z][a-z0-9+.-]*://", "", match.group(0), flags=re.I).rstrip("/")
    return " " + _spell_address(url) + " "


def _email(match: re.Match[str]) -> str:
    user, _, host = match.group(0).partition("@")
    return f" {_spell_address(user)} at {_spell_address(host)} "


def _spell_address(text: str) -> str:
    """Read an address piecewise: dots, slashes and dashes aloud, digits one by one."""
    names = {".": " dot ", "/": " slash ", "-": " dash ", "_": " underscore ", ":": " colon "}
    names |= {"?": " question mark ", "=": " equals ", "&": " and ", "~": " tilde ", "+": " plus "}
    out = []
    for piece in re.split(r"([./\-_:?=&~+])", text):
        if piece in names:
            out.append(names[piece])
        elif piece.isdigit():
            out.append(" " + digits_one_by_one(piece) + " ")
        elif piece.lower() == "www":
            out.append(" w w w ")
        else:
            out.append(re.sub(r"[^\w]", " ", piece))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    groups = [g for g in re.split(r"[^\d]+", raw) if g]
    spoken = ", ".join(digits_one_by_one(g) for g in groups)
    return (" plus " if raw.lstrip().startswith("+") else " ") + spoken + " "


def _iso_date(match: re.Match[str]) -> str:
    y, m, d = match.group(1), int(match.group(2)), int(match.group(3))
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return match.group(0).replace("-", " ")
    return f"{_MONTHS[m - 1]} {ordinal(str(d))}, {year(y)}"


def _slash_date(match: re.Match[str]) -> str:
    a, b, y = int(match.group(1)), int(match.group(2)), match.group(3)
    month, day = (a, b) if a <= 12 else (b, a)  # US order unless the first cannot be a month
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0).replace("/", " slash ")
    if len(y) == 2:
        y = ("20" if int(y) < 50 else "19") + y
    return f"{_MONTHS[month - 1]} {ordinal(str(day))}, {year(y)}"


def _month_day(match: re.Match[str]) -> str:
    key = match.group(1).lower().rstrip(".")
    month = _MONTH_ABBR.get(key[:4] if key.startswith("sept") else key[:3], match.group(1))
    out = f"{month} {ordinal(match.group(2))}"
    if match.group(3):
        out += f", {year(match.group(3))}"
    return out


def _day_month(match: re.Match[str]) -> str:
    key = match.group(2).lower().rstrip(".")
    month = _MONTH_ABBR.get(key[:4] if key.startswith("sept") else key[:3], match.group(2))
    out = f"the {ordinal(match.group(1))} of {month}"
    if match.group(3):
        out += f", {year(match.group(3))}"
    return out


def _clock_words(hour: int, minute: int, suffix: str) -> str:
    if minute == 0:
        words = _n2w(hour) + ("" if suffix else " o'clock")
    elif minute < 10:
        words = f"{_n2w(hour)} oh {_n2w(minute)}"
    else:
        words = f"{_n2w(hour)} {_n2w(minute)}"
    return words + (" " + " ".join(suffix) if suffix else "")


def _stop(match: re.Match[str]) -> str:
    """A full stop swallowed by 'p.m.' that also ended the sentence."""
    rest = match.string[match.end() :].lstrip()
    return "." if match.group(0).endswith(".") and (not rest or rest[:1].isupper()) else ""


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    suffix = (match.group(3) or "").lower().replace(".", "").strip()
    if hour > 24 or minute > 59:
        return f"{cardinal(match.group(1))} {cardinal(match.group(2))}"
    return _clock_words(hour, minute, suffix) + _stop(match)


def _hour_suffix(match: re.Match[str]) -> str:
    digits = match.group(1)
    suffix = match.group(2).lower().replace(".", "")
    hour, minute = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
    if hour > 12 or minute > 59:
        return f"{cardinal(digits)} {' '.join(suffix)}" + _stop(match)
    return _clock_words(hour, minute, suffix) + _stop(match)


def _dotted(match: re.Match[str]) -> str:
    """Version numbers and addresses (1.2.3, 192.168.0.1): each group, joined by 'dot'."""
    return " " + " dot ".join(cardinal(g) for g in match.group(0).split("."))


def _money(match: re.Match[str]) -> str:
    symbol, amount, scale = match.group(1), match.group(2).replace(",", ""), match.group(3)
    if scale and len(scale) <= 2:
        scale = {"k": "thousand", "m": "million", "b": "billion"}[scale[0].lower()]
    one, many, sub_one, sub_many = _CURRENCY[symbol]
    if scale:
        return f"{cardinal(amount)} {scale.lower()} {many}"
    whole, _, frac = amount.partition(".")
    whole_n = int(whole or "0")
    words = []
    if whole_n or not frac:
        words.append(f"{cardinal(whole or '0')} {one if whole_n == 1 else many}")
    if frac:
        cents = int((frac + "0")[:2])
        if cents:
            words.append(f"{_n2w(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(words) if words else f"zero {many}"


def _percent(match: re.Match[str]) -> str:
    return f"{cardinal(match.group(1))} percent"


def _unit(match: re.Match[str]) -> str:
    number, unit = match.group(1), match.group(2)
    one, many = _UNITS[unit]
    return f"{cardinal(number)} {one if number.replace(',', '') in ('1', '-1') else many}"


def _ordinal(match: re.Match[str]) -> str:
    return ordinal(match.group(1).replace(",", ""))


def _decade(match: re.Match[str]) -> str:
    words = year(match.group(1)) if len(match.group(1)) == 4 else _n2w(match.group(1))
    if words.endswith("y"):
        return words[:-1] + "ies"
    return words + "s"


def _fraction(match: re.Match[str]) -> str:
    a, b = int(match.group(1)), int(match.group(2))
    if (a, b) in _FRACTIONS:
        return _FRACTIONS[(a, b)]
    if b == 0 or b > 100:
        return f"{cardinal(match.group(1))} slash {cardinal(match.group(2))}"
    denom = "half" if b == 2 else _n2w(b, "ordinal")
    return f"{_n2w(a)} {denom}{'s' if a != 1 else ''}"


def _range(match: re.Match[str]) -> str:
    return f"{match.group(1)} to {match.group(2)}"


def _local_phone(match: re.Match[str]) -> str:
    """555-0123 is a local phone number, read digit by digit; 100-1000 stays a range."""
    a, b = match.group(1), match.group(2)
    if int(a) < int(b) and int(b) % 100 == 0:
        return _range(match)
    return f" {digits_one_by_one(a)}, {digits_one_by_one(b)} "


# A year after these words ("in 1999"); a count before a plural noun ("1999 people").
_YEAR_BEFORE = re.compile(
    r"(?:\b(?:in|since|by|from|until|till|to|of|circa|year|before|after|during|around|early|late"
    r"|mid|summer|winter|spring|autumn|fall)|" + "|".join(_MONTHS) + r")\s*$",
    re.I,
)
_COUNT_AFTER = re.compile(r"\s+([a-z]+)")
_NOT_PLURAL = {"is", "was", "has", "as", "its", "this", "us", "yes", "bus", "plus", "thus"}
_COUNT_NOUNS = {"people", "men", "women", "children", "feet", "teeth", "mice", "geese", "sheep"}


def _counts_something(match: re.Match[str]) -> bool:
    """Whether a four-digit number counts the plural noun after it (1999 people)."""
    if _YEAR_BEFORE.search(match.string[: match.start()]):
        return False
    after = _COUNT_AFTER.match(match.string, match.end())
    if not after:
        return False
    word = after.group(1)
    if word in _COUNT_NOUNS:
        return True
    plural = word.endswith("s") and not word.endswith("ss")
    return len(word) > 3 and plural and word not in _NOT_PLURAL


def _number(match: re.Match[str]) -> str:
    value = match.group(0)
    plain = value.replace(",", "")
    if (
        re.fullmatch(r"1[1-9]\d\d|20\d\d", plain)
        and "," not in value
        and not _counts_something(match)
    ):
        return year(plain)
    return cardinal(value)


def _abbreviation(match: re.Match[str]) -> str:
    key = match.group(1).lower()
    rest = match.string[match.end() :].lstrip()
    stop = "." if not rest or rest[:1].isupper() else ""  # it also ended the sentence
    if key == "st":  # Saint before a name, Street after one (St. James St.)
        return "Saint" if _is_saint(match.string[: match.start()], rest) else "Street" + stop
    if key in ("no", "p", "pp") and not rest[:1].isdigit():
        return match.group(0)  # "no." closing a clause is the word "no"
    if key in _TITLES:
        return _TITLES[key]
    return _FINALS[key] + stop


def _is_saint(before: str, after: str) -> bool:
    """'St.' is Saint before a capitalised name unless a name or number precedes it (Main St.)."""
    if not after[:1].isupper():
        return False
    previous = re.search(r"([\w'’]+)\W*$", before)
    return not previous or not (previous.group(1)[:1].isupper() or previous.group(1)[:1].isdigit())


def _acronym(match: re.Match[str]) -> str:
    return " ".join(match.group(0).replace(".", "")) + " "


_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_MONTH_RE = (
    r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_RULES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), _email),
    (re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]", re.I), _url),
    (
        re.compile(
            r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|ai|dev|co|uk|de|fr|jp|info)"
            r"(?:/[^\s]*[^\s.,;:!?)])?\b",
            re.I,
        ),
        _url,
    ),
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), _iso_date),
    (re.compile(r"\b([A-G])#(?!\w)"), lambda m: f"{m.group(1)} sharp"),
    (
        re.compile(r"(?<![\w-])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"),
        _phone,
    ),
    (re.compile(r"\+\d{1,3}(?:[\s.-]?\d{2,4}){2,5}\b"), _phone),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"), _slash_date),
    (re.compile(r"\b(\d{1,2}):(\d{2})(?::\d{2})?\s*([ap]\.?m\.?)?(?![\w:])", re.I), _time),
    (re.compile(r"\b(\d{1,2})\.(\d{2})\s*([ap]\.?m\.?)(?!\w)", re.I), _time),
    (re.compile(r"\b(\d{1,4})\s*([ap]\.?m\.?)(?!\w)", re.I), _hour_suffix),
    (re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])"), _dotted),
    (
        re.compile(r"\b" + _MONTH_RE + r"\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?"),
        _month_day,
    ),
    (
        re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_RE + r"(?:,?\s+(\d{4})\b)?"),
        _day_month,
    ),
    (
        re.compile(
            r"([$£€¥])\s?(" + _NUM + r")(?:\s?(thousand|million|billion|trillion|[kKmMbB]n?)\b)?"
        ),
        _money,
    ),
    (re.compile(r"'(\d0)s\b"), _decade),
    (re.compile(r"\b(\d{4}|\d0)'?s\b"), _decade),
    (re.compile(r"(" + _NUM + r")\s?%"), _percent),
    (re.compile(r"(?<![\w.])(-?" + _NUM + r")\s?(" + _UNIT_RE + r")(?![\w/])"), _unit),
    (re.compile(r"\b(\d+(?:,\d{3})*)(?:st|nd|rd|th)\b", re.I), _ordinal),
    (re.compile(r"(?<![\w/])(\d{1,3})/(\d{1,3})(?![\w/])"), _fraction),
    (re.compile(r"(?<![\w$£€¥.,-])(\d{3})-(\d{4})(?![\w-])"), _local_phone),
    (re.compile(r"\b(\d+)\s?[-–—]\s?(\d+)\b"), _range),
    (re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"), lambda m: " "),
    (re.compile(r"(?<![\w.])[-−](?=\d)"), lambda m: " minus "),
    (re.compile(_NUM), _number),
]


def _expand_abbreviations(text: str) -> str:
    for written, spoken in _LATIN.items():
        text = re.sub(r"(?<!\w)" + re.escape(written), spoken, text, flags=re.I)
    names = "|".join(sorted(set(_TITLES) | set(_FINALS), key=len, reverse=True))
    return re.sub(r"\b(" + names + r")\.", _abbreviation, text, flags=re.I)


def normalize(text: str, lang: str = "en") -> str:
    """The words a voice should say for `text`; English gets numbers, symbols and the like spelled out."""
    text = clean(text)
    if lang != "en":
        return text
    text = _expand_abbreviations(text)
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)  # type: ignore[arg-type]
    text = re.sub(r"\b(?:[A-Za-z]\.){2,}", _acronym, text)  # U.S.A. -> U S A (after times)
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)  # hyphenated compounds read as words
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


_ZALGO = re.compile(r"[\u0300-\u036f\u0483-\u0489\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{3,}")


def clean(text: str) -> str:
    """Unicode-normalised text without control characters, odd spaces or runs of punctuation."""
    text = unicodedata.normalize("NFKD", text)
    text = _ZALGO.sub("", text)  # runs of 3+ stacked combining marks are noise, not language
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        " " if unicodedata.category(c) in ("Zs", "Zl", "Zp") or c in "\t\r\n" else c
        for c in text
        if unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs", "Cn") or c in "\t\r\n"
    )
    text = re.sub(r"([!?.,;:])\1{2,}", r"\1", text)
    text = re.sub(r"[\u2018\u2019\u02bc]", "'", text)
    text = re.sub(r"[\u201c\u201d\u00ab\u00bb]", '"', text)
    text = re.sub(r"\S{" + str(MAX_WORD_CHARS + 1) + ",}", _break_long_token, text)
    return re.sub(r"\s+", " ", text).strip()


def _break_long_token(match: re.Match[str]) -> str:
    token = match.group(0)
    if re.fullmatch(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w.-]+", token):
        return token[:200]  # an address: keep it readable, but bounded
    return " ".join(token[i : i + MAX_WORD_CHARS] for i in range(0, len(token), MAX_WORD_CHARS))


def has_words(text: str) -> bool:
    """Whether `text` has anything a voice can say (a letter or digit in any script)."""
    return any(c.isalnum() for c in text)


# ---------------------------------------------------------------- sentence splitting

_NEVER_FINAL = set(_TITLES) - {"no"}
_BOUNDARY = re.compile(r"([.!?…。！？]+)([\"'”’)\]]*)(\s+|$)")
_CJK_BOUNDARY = re.compile(r"(?<=[。！？!?])")
_LAST_WORD = re.compile(r"(\S+)$")


def split_sentences(text: str, lang: str = "en") -> list[str]:
    """Raw text cut into sentences: not after titles, initials or inside decimals, URLs and e-mails."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = clean(paragraph)
        if not paragraph:
            continue
        if lang in ("ja", "zh", "cmn", "yue"):
            pieces = [p.strip() for p in _CJK_BOUNDARY.split(paragraph) if p.strip()]
        else:
            pieces = _split_paragraph(paragraph)
        for piece in pieces:
            out.extend(_cap_length(piece))
    return out


def _split_paragraph(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(text):
        end = match.end(2)
        if not match.group(3) and match.end() != len(text):
            continue
        if _is_boundary(text, match):
            pieces.append(text[start:end].strip())
            start = match.end()
    if text[start:].strip():
        pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    if match.end() >= len(text):
        return True
    marks = match.group(1)
    # The word before the mark, looked for in a bounded window (words are capped at
    # MAX_WORD_CHARS, addresses at 200): searching the whole prefix made long paragraphs quadratic.
    before = _LAST_WORD.search(text, max(0, match.start() - 256), match.start())
    word = before.group(1) if before else ""
    following = text[match.end() :].lstrip("\"'“‘(")[:1]
    if marks in ("!", "?", "…", "。", "！", "？") or len(marks) > 1 and marks != "...":
        return True
    if marks == "..." or marks == "…":
        return following.isupper() or following.isdigit()
    key = word.lower().lstrip("(\"'")
    if key in ("a.m", "p.m"):
        return following.isupper()
    if key in _NEVER_FINAL or key in ("e.g", "i.e", "cf", "a.m", "p.m") and not following.isupper():
        return False
    if key == "no" and following.isdigit():
        return False
    if key in _MONTH_ABBR and following.isdigit():
        return False  # Jan. 5th
    if key == "st" and _is_saint(text[: match.start() - len(word)], text[match.end() :]):
        return False  # St. James
    if re.fullmatch(r"[A-Z]", word) or re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):
        return False  # an initial (J. Smith) or a dotted acronym (U.S.)
    return bool(following) and (
        following.isupper() or following.isdigit() or not following.isalpha()
    )


def _cap_length(sentence: str, limit: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Cut an overlong sentence at clause punctuation, then at spaces, into pieces under `limit`."""
    if len(sentence) <= limit:
        return [sentence]
    out, current = [], ""
    for piece in re.split(r"(?<=[,;:—、])\s*", sentence):
        words = piece.split(" ") if len(piece) > limit else [piece]
        for word in words:
            if current and len(current) + 1 + len(word) > limit:
                out.append(current.strip())
                current = word
            else:
                current = f"{current} {word}" if current else word
    if current.strip():
        out.append(current.strip())
    return out


def sentences(text: str, lang: str = "en") -> list[Sentence]:
    """Sentences of `text` with their spoken form; refuses empty, wordless or oversized text."""
    if not isinstance(text, str):
        raise InputError("text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"text is {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are read at once "
            "(stream longer text: `voicebox read -f FILE -o OUT`)"
        )
    out = list(_spoken(split_sentences(text, lang), lang))
    if not out:
        raise InputError("nothing to read: the text has no words (only spaces or symbols)")
    return out


def iter_sentences(chunks: Iterable[str], lang: str = "en") -> Iterator[Sentence]:
    """Sentences from a stream of text pieces (lines of a file), with bounded memory and time.

    Paragraphs (blank-line separated) are split as they complete; a paragraph longer than
    MAX_PARAGRAPH_CHARS (or one enormous line) is processed in pieces of about that size, so the
    first sentence comes as soon as its piece is read, whatever the length of the text.
    Raises InputError if the stream has no words at all.
    """
    found = False
    buffer: list[str] = []
    size = 0
    for chunk in chunks:
        for line, whole in _bounded_lines(chunk):
            if whole and not line.strip():
                if buffer:
                    for sentence in sentences_or_none("".join(buffer), lang):
                        found = True
                        yield sentence
                    buffer, size = [], 0
                continue
            buffer.append(line)
            size += len(line)
            if size >= MAX_PARAGRAPH_CHARS:
                held = split_sentences("".join(buffer), lang)
                keep = held.pop() if held else ""  # the last piece may continue in the next line
                for sentence in _spoken(held, lang):
                    found = True
                    yield sentence
                buffer, size = [keep + " "], len(keep) + 1
    if buffer:
        for sentence in sentences_or_none("".join(buffer), lang):
            found = True
            yield sentence
    if not found:
        raise InputError("nothing to read: the text has no words (only spaces or symbols)")


def _bounded_lines(chunk: str) -> Iterator[tuple[str, bool]]:
    """The lines of `chunk` as (text, whole line?): a line longer than MAX_PARAGRAPH_CHARS is cut
    (at a space where there is one) into pieces of about that size, which are not whole lines."""
    for line in chunk.splitlines(keepends=True) or [chunk]:
        whole = True
        while len(line) > MAX_PARAGRAPH_CHARS:
            cut = line.rfind(" ", MAX_PARAGRAPH_CHARS // 2, MAX_PARAGRAPH_CHARS)
            cut = cut + 1 if cut > 0 else MAX_PARAGRAPH_CHARS
            yield line[:cut], False
            line, whole = line[cut:], False
        if line:
            yield line, whole


def sentences_or_none(text: str, lang: str = "en") -> list[Sentence]:
    """Like `sentences` for one paragraph, but an empty list instead of an error."""
    return list(_spoken(split_sentences(text, lang), lang))


def _spoken(raw: Iterable[str], lang: str) -> Iterator[Sentence]:
    for sentence in raw:
        if not has_words(sentence):  # only symbols: nothing a reader would say
            continue
        spoken = normalize(sentence, lang)
        if not has_words(spoken):
            continue
        pieces = _cap_length(spoken)
        if len(pieces) == 1:
            yield Sentence(sentence, spoken)
        else:  # written-out numbers made it too long: subtitles show the spoken pieces
            yield from (Sentence(piece, piece) for piece in pieces)


def guess_language(text: str) -> str:
    """The language of `text` from its script (kana → ja, Han → zh, Hangul → ko, Cyrillic → ru or
    uk, ...), and for Latin script from common words (de, fr, es, it, pt, nl); English otherwise."""
    counts: dict[str, int] = {}
    for ch in text[:4000]:
        for lang, pattern in _SCRIPTS:
            if pattern.match(ch):
                counts[lang] = counts.get(lang, 0) + 1
                break
    latin = sum(1 for ch in text[:4000] if ch.isalpha() and ch.isascii())
    if counts:
        cjk = counts.get("ja", 0) + counts.get("zh", 0)
        if counts.get("ja") and cjk >= latin / 2:
            return "ja"  # kana among the Han characters: Japanese (kanji alone look Chinese)
        lang, n = max(counts.items(), key=lambda kv: kv[1])
        if n >= latin / 2:
            if lang == "ru" and re.search(r"[іїєґІЇЄҐ]", text):
                return "uk"
            if lang == "ar" and re.search(r"[پچژگ]", text):
                return "fa"
            return lang
    words = re.findall(r"[^\W\d_]+", text[:4000].lower())
    scores = {lang: sum(1 for w in words if w in common) for lang, common in _COMMON.items()}
    best = max(scores, key=lambda k: scores[k])
    if best != "en" and scores[best] >= 2 and scores[best] > 2 * scores["en"]:
        return best
    return "en"


_SCRIPTS = [
    ("ja", re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")),
    ("zh", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("bn", re.compile(r"[\u0980-\u09ff]")),
    ("ta", re.compile(r"[\u0b80-\u0bff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
    ("ka", re.compile(r"[\u10a0-\u10ff]")),
    ("hy", re.compile(r"[\u0530-\u058f]")),
]
_COMMON = {
    "en": set("the and of to is in that it was for with you this are not have be on at".split()),
    "de": set("der die das und ist nicht ich sie ein eine zu mit auf den dem für von sich".split()),
    "fr": set("le la les et est une des du pas pour que qui dans sur au avec je il nous".split()),
    "es": set("el los las y es una del que por para con como pero muy está se lo".split()),
    "it": set("il gli che è una per non sono della con del questo anche ma ci".split()),
    "pt": set("o os as e é uma não que do da com para em um isso mas você".split()),
    "nl": set("de het een en is niet van dat ik je op zijn met voor ook maar".split()),
}
