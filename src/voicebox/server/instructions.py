"""OpenAI's speech `instructions` ("speak slowly", "a lower pitch") mapped onto our controls.

Only what maps onto a control we have is honoured (speaking rate and pitch); everything else, a
style or an emotion, is ignored and said so in the response's `X-Voicebox-Instructions` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADER = "X-Voicebox-Instructions"
_STRONG = r"(?:much|a lot|very|really|way|extremely)\s+"
_MILD = r"(?:a (?:little|bit)|slightly|somewhat)\s+"
_SLOW = r"slow(?:ly|er)?"
_FAST = r"fast(?:er)?|quick(?:ly|er)?|rapid(?:ly)?"
_RULES: list[tuple[str, str, float]] = [
    # (pattern, control, amount): speed multiplies, pitch adds semitones
    (rf"\b{_STRONG}(?:{_SLOW})\b", "speed", 0.7),
    (rf"\b{_MILD}(?:{_SLOW})\b", "speed", 0.9),
    (rf"\b(?:{_SLOW}|unhurried|leisurely)\b", "speed", 0.8),
    (rf"\b{_STRONG}(?:{_FAST})\b", "speed", 1.4),
    (rf"\b{_MILD}(?:{_FAST})\b", "speed", 1.1),
    (rf"\b(?:{_FAST}|brisk(?:ly)?|hurried(?:ly)?)\b", "speed", 1.25),
    (
        r"\b(?:lower|deeper)(?:\s+(?:your|the))?\s+(?:pitch|voice|tone)\b"
        r"|\b(?:low|deep)[- ]pitched\b|\bdeep(?:er)? voice\b",
        "pitch",
        -2.0,
    ),
    (
        r"\b(?:higher|raised?)(?:\s+(?:your|the))?\s+(?:pitch|voice|tone)\b|\bhigh[- ]pitched\b",
        "pitch",
        2.0,
    ),
]
_FILLER = r"please|speak|talk|read|say|use|make|it|in|a|an|the|and|with|your|voice|tone|more|bit"


@dataclass
class Instructions:
    """What a request's instructions change: a speed factor, a pitch shift, and what was left."""

    speed: float = 1.0
    pitch: float = 0.0
    applied: list[str] = field(default_factory=list)
    ignored: str = ""

    def note(self) -> str:
        """The header text: what was honoured and what was not (ASCII, one line)."""
        parts = []
        if self.applied:
            parts.append("applied " + ", ".join(self.applied))
        if self.ignored:
            parts.append(f'ignored "{self.ignored}" (no control for it)')
        return "; ".join(parts).encode("ascii", "replace").decode()[:400]


def interpret(text: str | None) -> Instructions:
    """Map free-text instructions onto speed and pitch; each control is set once, by its first
    matching phrase. What is left (minus filler words) is reported as ignored."""
    out = Instructions()
    if not text or not text.strip():
        return out
    rest = " " + " ".join(text.lower().split()) + " "
    done: set[str] = set()
    for pattern, control, amount in _RULES:
        found = re.search(pattern, rest)
        if not found:
            continue
        rest = rest[: found.start()] + " " + rest[found.end() :]
        if control in done:
            continue
        done.add(control)
        if control == "speed":
            out.speed = amount
            out.applied.append(f"speed x{amount:g}")
        else:
            out.pitch = amount
            out.applied.append(f"pitch {amount:+g} semitones")
    leftover = re.sub(rf"\b(?:{_FILLER})\b", " ", rest)
    leftover = " ".join(re.sub(r"[^\w'-]+", " ", leftover).split())
    if leftover:
        out.ignored = " ".join(text.split())[:120] if not out.applied else leftover[:120]
    return out
