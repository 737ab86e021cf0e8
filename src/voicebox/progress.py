"""Progress reporting: long operations call `progress(done, total)`; callers decide how to show it."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, float], None]
"""Called with (done, total) in the operation's own units (seconds of audio, sentences, files)."""


def silent(done: float, total: float) -> None:
    """A progress callback that shows nothing."""
