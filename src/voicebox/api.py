"""The public Python API: `import voicebox; voicebox.clean(...)`.

Names resolve lazily so `import voicebox` stays fast and never loads a network it does not need.
"""

from __future__ import annotations

import importlib
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
    "detect": "voicebox.tasks.provenance:detect",
    "mark": "voicebox.tasks.provenance:mark",
    "infill": "voicebox.model.sample:infill",
    "run_batch": "voicebox.batch.runner:run_batch",
    "VoiceboxError": "voicebox.errors:VoiceboxError",
}


def resolve(name: str) -> Any:  # noqa: ANN401 - returns whatever the export is
    """Import and return the object exported as `name`."""
    try:
        target = EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'voicebox' has no attribute {name!r}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
