"""voicebox: an offline, open speech studio and an open re-implementation of Meta's Voicebox."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

from .api import SOURCES  # noqa: E402

__all__ = sorted(SOURCES)


def __getattr__(name: str) -> Any:  # noqa: ANN401
    from .api import resolve

    return resolve(name)
