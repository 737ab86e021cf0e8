"""The public Python API: `import voicebox; voicebox.clean(...)`.

Every name below is a plain import, done on first use: `import voicebox` stays fast and never loads
a network it does not need, and a reader sees where each name comes from. The
CLI, the server and batch call the task layer (`voicebox.tasks.*`) directly; this module is for
library users.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


def _audio() -> ModuleType:
    from . import audio

    return audio


def _clean() -> ModuleType:
    from .tasks import clean

    return clean


def _read() -> ModuleType:
    from .tasks import read

    return read


def _transcribe() -> ModuleType:
    from .tasks import transcribe

    return transcribe


def _edit() -> ModuleType:
    from .tasks import edit

    return edit


def _regenerate() -> ModuleType:
    from .tasks import regenerate

    return regenerate


def _provenance() -> ModuleType:
    from . import provenance

    return provenance


def _batch() -> ModuleType:
    from .batch import runner

    return runner


def _errors() -> ModuleType:
    from . import errors

    return errors


SOURCES: dict[str, Callable[[], ModuleType]] = {
    "Audio": _audio,
    "load": _audio,
    "save": _audio,
    "loudness": _audio,
    "clean": _clean,
    "clean_file": _clean,
    "infill_span": _clean,
    "read": _read,
    "read_like": _read,
    "voices": _read,
    "transcribe": _transcribe,
    "edit": _edit,
    "detect": _provenance,
    "mark": _provenance,
    "Consent": _provenance,
    "infill": _regenerate,
    "run_batch": _batch,
    "VoiceboxError": _errors,
}
"""Each public name and the module that defines it under the same name."""
EXPORTS = SOURCES  # the old name, kept for code that lists the public names


def resolve(name: str) -> Any:  # noqa: ANN401 - returns whatever the export is
    """Import and return the public object `name` (AttributeError for an unknown one)."""
    try:
        source = SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'voicebox' has no attribute {name!r}") from None
    return getattr(source(), name)
