"""Subtitles people can read: timed words grouped into short cues, written as SubRip or WebVTT.

A cue holds at most `MAX_LINES` lines of `MAX_LINE_CHARS` characters and lasts at most
`MAX_CUE_SECONDS` (the usual broadcast limits: 42 characters, 2 lines, about 7 s). Cues break
at sentence or clause ends where they can, never inside a word, and every word keeps its order.
`read --subtitles` and `transcribe --format srt|vtt` both write through this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
MIN_CUE_SECONDS = 0.2
"""A cue shorter than this is held on screen a little longer (never into the next cue)."""
_CLAUSE_END = re.compile(r"[,;:—–)\]\"”]$")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")


class Timed(Protocol):
    """Anything with a text and start/end seconds (a recognised or a read word)."""

    text: str
    start: float
    end: float


@dataclass
class Piece:
    """One word on the subtitle timeline; `glue` joins it to the previous piece without a space."""

    text: str
    start: float
    end: float
    glue: bool = False


@dataclass
class Cue:
    """One subtitle: its lines and the seconds it is shown."""

    start: float
    end: float
    lines: list[str]

    @property
    def text(self) -> str:
        """The cue's lines as one line of text."""
        return " ".join(self.lines)


# ---------------------------------------------------------------- timed words


def pieces(words: Iterable[Timed], max_chars: int = MAX_LINE_CHARS) -> list[Piece]:
    """Timed words as pieces no longer than a line: a longer word is cut, its time shared out."""
    out: list[Piece] = []
    for word in words:
        text = word.text.strip()
        if text:
            out.extend(_cut(text, float(word.start), float(word.end), max_chars))
    return out


def _cut(text: str, start: float, end: float, max_chars: int, glue: bool = False) -> list[Piece]:
    if len(text) <= max_chars:
        return [Piece(text, start, end, glue)]
    parts = [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    step = (end - start) / len(parts)
    return [
        Piece(p, start + i * step, start + (i + 1) * step, glue or i > 0)
        for i, p in enumerate(parts)
    ]


def spread(text: str, start: float, end: float) -> list[Piece]:
    """Words of `text` spread over [start, end) in proportion to their length, for text that has
    no word times (a segment recognised without them)."""
    tokens = text.split()
    if not tokens:
        return []
    return project(tokens, [len(t) for t in tokens], [Piece(text, start, end)])


def project(
    tokens: Sequence[str], weights: Sequence[float], spoken: Sequence[Timed]
) -> list[Piece]:
    """Written `tokens` timed by the `spoken` words they became: token i stands for `weights[i]`
    spoken words (the words "$12.50" becomes, say), scaled so all the tokens cover all the words.

    Read-aloud subtitles show the text as written ("5 pm") on the times of what was said
    ("five p m"); the counts need not match exactly, the times stay in order and inside the words'.
    """
    if not tokens:
        return []
    if not spoken:
        raise ValueError("project needs at least one spoken word to take times from")
    total = float(sum(max(0.0, w) for w in weights))
    if total <= 0:
        weights, total = [1.0] * len(tokens), float(len(tokens))
    scale = len(spoken) / total

    def at(position: float) -> float:
        index = min(int(position), len(spoken) - 1)
        word = spoken[index]
        frac = min(1.0, max(0.0, position - index))
        return float(word.start) + frac * (float(word.end) - float(word.start))

    out, position = [], 0.0
    for token, weight in zip(tokens, weights, strict=True):
        after = position + max(0.0, weight) * scale
        out.append(Piece(token, at(position), at(after)))
        position = after
    return out


# ---------------------------------------------------------------- cues


def cues(
    groups: Iterable[Sequence[Piece]],
    max_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_seconds: float = MAX_CUE_SECONDS,
) -> list[Cue]:
    """Cues for groups of timed pieces (a group is a sentence or a recognised segment; a cue never
    spans two groups): as full as the limits allow, broken after punctuation where possible."""
    out: list[Cue] = []
    for group in groups:
        items = _attach_marks([p for p in group if p.text], max_chars)
        if items and not _has_word(items[0].text) and out:  # a lone "." closing the last cue
            last = out[-1]
            if len(last.lines[-1]) + len(items[0].text) <= max_chars:
                last.lines[-1] += items[0].text
                items = items[1:]
        start = 0
        while start < len(items):
            stop = _cue_end(items, start, max_chars, max_lines, max_seconds)
            out.append(_make_cue(items[start:stop], max_chars, max_lines, max_seconds))
            start = stop
    _no_overlap(out)
    return out


def _has_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _attach_marks(items: list[Piece], max_chars: int) -> list[Piece]:
    """Punctuation a recogniser gave as a word of its own ("." after "end") joins the word before."""
    out: list[Piece] = []
    for p in items:
        if out and not _has_word(p.text) and len(out[-1].text) + len(p.text) <= max_chars:
            prev = out[-1]
            out[-1] = Piece(prev.text + p.text, prev.start, max(prev.end, p.end), prev.glue)
        else:
            out.append(p)
    return out


def _join(items: Sequence[Piece]) -> str:
    text = ""
    for p in items:
        text += p.text if p.glue or not text else " " + p.text
    return text


def _fits(items: Sequence[Piece], max_chars: int, max_lines: int, max_seconds: float) -> bool:
    if len(items) > 1 and items[-1].end - items[0].start > max_seconds:
        return False
    return _wrap(items, max_chars, max_lines) is not None


def _cue_end(
    items: Sequence[Piece], start: int, max_chars: int, max_lines: int, max_seconds: float
) -> int:
    """Index one past the last piece of the cue that begins at `start`."""
    stop = start + 1  # a cue holds at least one piece (each fits a line on its own)
    while stop < len(items) and _fits(items[start : stop + 1], max_chars, max_lines, max_seconds):
        stop += 1
    if stop == len(items):
        return stop
    # The next piece does not fit: end at a sentence, then a clause end in the cue's second half,
    # rather than leave a dangling word or two of a new clause at the bottom of the screen.
    for pattern in (_SENTENCE_END, _CLAUSE_END):
        for end in range(stop, start + max(1, (stop - start) // 2), -1):
            if pattern.search(items[end - 1].text) and not items[end].glue:
                return end
    while stop > start + 1 and items[stop].glue:  # never cut between the halves of a long word
        stop -= 1
    return stop


def _wrap(items: Sequence[Piece], max_chars: int, max_lines: int) -> list[str] | None:
    """The pieces as at most `max_lines` lines of `max_chars`, lines as even as possible (a break
    after punctuation preferred); None when they do not fit."""
    text = _join(items)
    if len(text) <= max_chars:
        return [text]  # one line whenever it fits, as subtitle style guides ask
    if max_lines == 1:
        return None
    best: tuple[float, list[str]] | None = None
    for cut in range(1, len(items)):
        if items[cut].glue:
            continue
        head = _wrap(items[:cut], max_chars, 1)
        tail = _wrap(items[cut:], max_chars, max_lines - 1)
        if head is None or tail is None:
            continue
        cost = max(len(line) for line in head + tail)
        if _CLAUSE_END.search(head[0]) or _SENTENCE_END.search(head[0]):
            cost -= 4  # a line that ends a clause reads better, even if a little longer
        if best is None or cost < best[0]:
            best = (cost, head + tail)
    return best[1] if best is not None else None


def _make_cue(items: Sequence[Piece], max_chars: int, max_lines: int, max_seconds: float) -> Cue:
    lines = _wrap(items, max_chars, max_lines) or [_join(items)]
    start = items[0].start
    end = min(max(items[-1].end, start + MIN_CUE_SECONDS), start + max_seconds)
    return Cue(start, end, lines)


def _no_overlap(out: list[Cue]) -> None:
    """Cues in order never overlap: a cue ends where the next begins at the latest."""
    for a, b in zip(out, out[1:], strict=False):
        b.start = max(b.start, a.start)
        if a.end > b.start:
            a.end = max(b.start, a.start + 0.001)
        b.end = max(b.end, b.start + 0.001)


# ---------------------------------------------------------------- writing


def stamp(seconds: float, sep: str) -> str:
    """HH:MM:SS<sep>mmm, the clock both formats use (',' for SubRip, '.' for WebVTT)."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(items: Iterable[Cue]) -> str:
    """SubRip subtitles."""
    blocks = [
        f"{i}\n{stamp(c.start, ',')} --> {stamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n"
        for i, c in enumerate(items, 1)
    ]
    return "\n".join(blocks)


def to_vtt(items: Iterable[Cue]) -> str:
    """WebVTT subtitles."""
    blocks = [
        f"{stamp(c.start, '.')} --> {stamp(c.end, '.')}\n" + "\n".join(c.lines) + "\n"
        for c in items
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render(items: Iterable[Cue], fmt: str) -> str:
    """Cues as 'srt' or 'vtt'."""
    writers: dict[str, Callable[[Iterable[Cue]], str]] = {"srt": to_srt, "vtt": to_vtt}
    return writers[fmt.lower().lstrip(".")](items)
