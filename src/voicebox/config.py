"""One place that reads settings: CLI flags → environment (VOICEBOX_*) → defaults."""

from __future__ import annotations

import os
from pathlib import Path

# onnxruntime >= 1.29 resolves a telemetry host shortly after the first session; we are offline.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def env(name: str, default: str | None = None) -> str | None:
    """Return VOICEBOX_<NAME> from the environment, or the default."""
    return os.environ.get(f"VOICEBOX_{name.upper()}", default)


def threads() -> int:
    """Threads one engine may use (VOICEBOX_THREADS, default 1: parallelise across files)."""
    return max(1, int(env("threads", "1") or 1))


def cache_dir() -> Path:
    """Writable cache folder for assembled model files (VOICEBOX_CACHE)."""
    path = Path(env("cache", str(Path.home() / ".cache" / "voicebox")) or ".")
    path.mkdir(parents=True, exist_ok=True)
    return path
