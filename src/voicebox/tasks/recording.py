"""Random access to a recording without holding it: an `Audio` in memory, or a file on disk read
region by region, so an edit of a 3-hour file reads only the seconds around its spans.

Both give the same samples for the same range, so one edit plan and one renderer serve both and
their outputs are identical.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import Audio, AudioError, check_samples, info, stream, temp_file

BLOCK_S = 10.0
"""Seconds per block when a file is copied or decoded."""


class Recording(ABC):
    """Samples of a recording by range: `read(a, b)` gives [channels, b - a] float32 (clamped)."""

    rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.rate

    @abstractmethod
    def read(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) (clamped to the recording), [channels, n] float32; do not modify them."""

    def excerpt(self, a: int, b: int) -> Audio:
        """Samples [a, b) as Audio (clamped to the recording)."""
        return Audio(self.read(a, b), self.rate)

    @abstractmethod
    def reference(self, sample: tuple[int, int]) -> Audio:
        """What a consent record fingerprints as the voice used: all of it when it is in memory."""

    def _clamp(self, a: int, b: int) -> tuple[int, int]:
        a = min(max(int(a), 0), self.frames)
        return a, min(max(int(b), a), self.frames)


class InMemory(Recording):
    """A recording held as Audio."""

    def __init__(self, audio: Audio) -> None:
        self.audio = audio
        self.rate, self.channels, self.frames = audio.rate, audio.channels, audio.frames

    def read(self, a: int, b: int) -> np.ndarray:
        a, b = self._clamp(a, b)
        return self.audio.samples[:, a:b]

    def reference(self, sample: tuple[int, int]) -> Audio:
        return self.audio


class OnDisk(Recording):
    """A recording file read by seeking, never loaded whole.

    Formats soundfile reads are read in place. What it cannot read (MP3, M4A, Opus, or a FLAC that
    loses sync part-way) is first decoded once, block by block, to a float WAV in `scratch` (the
    output's folder), so its length is what really decodes, as `audio.load` would return.
    """

    def __init__(self, path: str | os.PathLike[str], scratch: Path | None = None) -> None:
        self.path = Path(path)
        self.scratch = scratch if scratch is not None else self.path.parent
        self._decoded: Path | None = None
        self._file: sf.SoundFile | None = None
        try:
            info(self.path)  # a missing, unreadable or odd-rate file is refused here
            self._open(self.path)
        except AudioError as exc:
            if "not a readable audio file" not in str(exc):
                raise
            self._decode()
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            self._decode()

    def _open(self, path: Path) -> None:
        self._file = sf.SoundFile(path)
        self.rate, self.channels = self._file.samplerate, self._file.channels
        self.frames = self._file.frames

    def _decode(self) -> None:
        """Decode the whole file (ffmpeg where needed) to a scratch float WAV, and read that."""
        self.close()
        rate, channels, _, blocks = stream(self.path, BLOCK_S)
        self._decoded = temp_file(self.scratch, self.path.name, ".decoded.wav")
        try:
            with sf.SoundFile(self._decoded, "w", rate, channels, "FLOAT", format="WAV") as out:
                for block in blocks:
                    out.write(block.T)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self.close()
            from ..audio import write_error

            raise write_error(self.scratch / self._decoded.name, exc) from None
        self._open(self._decoded)

    @property
    def source(self) -> Path:
        """The file the samples come from: the input, or its scratch decode."""
        return self._decoded or self.path

    def read(self, a: int, b: int) -> np.ndarray:
        a, b = self._clamp(a, b)
        assert self._file is not None
        try:
            self._file.seek(a)
            data = self._file.read(b - a, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            if self._decoded is not None:
                raise AudioError(f"{self.path}: cannot read samples {a}-{b} ({exc})") from None
            self._decode()  # lost sync (a cut FLAC): read what really decodes instead
            return self.read(a, b)
        block = np.ascontiguousarray(data.T)
        if block.shape[1] != b - a and self._decoded is None:
            self._decode()  # the header promised more than the file holds
            return self.read(a, b)
        check_samples(block, self.rate, str(self.path))
        return block

    def reference(self, sample: tuple[int, int]) -> Audio:
        return self.excerpt(*sample)

    def close(self) -> None:
        """Close the file and remove any scratch decode (safe to call twice)."""
        if self._file is not None:
            with contextlib.suppress(sf.LibsndfileError, RuntimeError, OSError):
                self._file.close()
            self._file = None
        if self._decoded is not None:
            with contextlib.suppress(OSError):
                self._decoded.unlink()
            self._decoded = None

    def __enter__(self) -> OnDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
