"""Progress reporting: long operations call `progress(done, total)`; callers decide how to show it."""

from __future__ import annotations

import math
from collections.abc import Callable

Progress = Callable[[float, float], None]
"""Called with (done, total) in the operation's own units (seconds of audio, sentences, files).

A total of 0 (or anything not a positive finite number) means "not known yet": a stream whose
length is only found at its end. Displays then show the count without a percentage.
"""


def silent(done: float, total: float) -> None:
    """A progress callback that shows nothing."""


def known_total(total: float | None) -> float | None:
    """`total` when it is a usable length, else None (unknown), so displays never divide by it."""
    if total is None:
        return None
    try:
        value = float(total)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None
