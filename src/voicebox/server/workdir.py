"""The server's one private work folder: uploads, job inputs and results live here and nowhere else."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError

_ID = re.compile(r"^[0-9a-f]{32}$")
_EXT = re.compile(r"^\.[a-z0-9]{1,5}$")


class WorkDir:
    """A 0700 folder owned by this process; every path handed out is checked to stay inside it."""

    def __init__(self, parent: str | None = None) -> None:
        if parent:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="voicebox-serve-", dir=parent)).resolve()
        os.chmod(self.root, 0o700)

    def folder(self, job_id: str) -> Path:
        """The folder of one job, created on first use."""
        if not _ID.match(job_id):
            raise InputError("invalid job id")
        path = self.inside(self.root / job_id)
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def inside(self, path: Path) -> Path:
        """`path` resolved, or InputError when it would leave the work folder."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise InputError("path outside the server's work folder")
        return resolved

    def remove(self, job_id: str) -> None:
        """Delete a job's folder and everything in it."""
        if _ID.match(job_id):
            shutil.rmtree(self.root / job_id, ignore_errors=True)

    def close(self) -> None:
        """Delete the whole work folder."""
        shutil.rmtree(self.root, ignore_errors=True)


def safe_suffix(filename: str | None) -> str:
    """A short lowercase extension from a client's file name (only used as a decoding hint)."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if _EXT.match(suffix) else ".bin"
