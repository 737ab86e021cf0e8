"""The public Python API: `import voicebox; voicebox.clean(...)`.

Names resolve lazily so `import voicebox` stays fast and never loads a network it does not need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

EXPORTS: dict[str, str] = {
    "Audio": "voicebox.audio:Audio",
    "load": "voicebox.audio:load",
    "save": "voicebox.audio:save",
    "loudness": "voicebox.audio:loudness",
    "clean": "voicebox.tasks.clean:clean",
    "clean_file": "voicebox.tasks.clean:clean_file",
    "read": "voicebox.tasks.read:read",
    "read_like": "voicebox.tasks.read:read_like",
    "infill_span": "voicebox.tasks.clean:infill_span",
    "voices": "voicebox.tasks.read:voices",
    "transcribe": "voicebox.tasks.transcribe:transcribe",
    "edit": "voicebox.tasks.edit:edit",
    "detect": "voicebox.provenance:detect",
    "mark": "voicebox.provenance:mark",
    "infill": "voicebox.tasks.regenerate:infill",
    "Consent": "voicebox.provenance:Consent",
    "run_batch": "voicebox.batch.runner:run_batch",
    "VoiceboxError": "voicebox.errors:VoiceboxError",
}


def lazy_getattr(owner: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `exports[name]` ("module:attr") on first use: packages
    keep their import cheap and load a network only when one of its names is touched."""

    def getattr_(name: str) -> Any:  # noqa: ANN401 - returns whatever the export is
        try:
            target = exports[name]
        except KeyError:
            raise AttributeError(f"module {owner!r} has no attribute {name!r}") from None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    return getattr_


resolve = lazy_getattr("voicebox", EXPORTS)
"""Import and return the object exported as `name`."""
