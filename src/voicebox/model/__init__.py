"""The Voicebox model: text-guided flow-matching speech infilling (ours, torch).

Inference lives in this package's modules (sample, flow, network, duration, checkpoint, ...); what only
training needs lives in `voicebox.model.training`, which inference never imports. The entry points
below are imported on first use, so `import voicebox.model` stays cheap (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sample import infill, respeak, variations, zero_shot

__all__ = ["infill", "respeak", "variations", "zero_shot"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from . import sample

        return getattr(sample, name)
    raise AttributeError(f"module 'voicebox.model' has no attribute {name!r}")
