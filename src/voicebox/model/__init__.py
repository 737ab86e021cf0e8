"""The Voicebox model: text-guided flow-matching speech infilling (ours, torch).

Heavy imports stay inside the submodules so `import voicebox.model` is cheap.
"""

from ..api import lazy_getattr

__getattr__ = lazy_getattr(
    "voicebox.model",
    {
        "infill": "voicebox.model.sample:infill",
        "zero_shot": "voicebox.model.sample:zero_shot",
        "variations": "voicebox.model.sample:variations",
        "respeak": "voicebox.model.sample:respeak",
        "train": "voicebox.model.train:train",
    },
)
