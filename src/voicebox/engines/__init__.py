"""Pretrained networks that ship inside registry packages, each loaded lazily and once.

A long job may release what it no longer needs (each engine module's `release`, then `trim_memory`):
the next use loads it again. The server and short edits keep them loaded.
"""

from __future__ import annotations


def trim_memory() -> None:
    """Collect garbage and hand freed heap back to the system: glibc keeps freed arenas mapped, so
    an engine released without this still counts in the process's resident memory."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
