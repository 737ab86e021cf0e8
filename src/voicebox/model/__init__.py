"""The Voicebox model: text-guided flow-matching speech infilling (ours, torch).

Heavy imports stay inside the submodules so `import voicebox.model` is cheap.
"""

from typing import Any

_LAZY = {
    "infill": "voicebox.model.sample:infill",
    "zero_shot": "voicebox.model.sample:zero_shot",
    "variations": "voicebox.model.sample:variations",
    "respeak": "voicebox.model.sample:respeak",
    "train": "voicebox.model.train:train",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - returns whatever the export is
    import importlib

    try:
        target = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'voicebox.model' has no attribute {name!r}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
