"""Reading and writing the corpus format: wavs/, mels/, manifest.jsonl and corpus.json.

One writer used by both `data synth` and `data prepare`, so every corpus has the same shape.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...audio import Audio, atomic_path, save
from ...errors import InputError
from ..features import MEL, frames_for, log_mel

MANIFEST = "manifest.jsonl"


@dataclass
class Utterance:
    """One manifest line: audio path, text, speaker and its frame-aligned phones."""

    id: str
    wav: str
    text: str
    speaker: str
    phones: list[str]
    durations: list[int]
    frames: int
    seconds: float
    condition: str = "clean"
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        extra = d.pop("extra")
        return json.dumps({**d, **extra}, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> Utterance:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "extra"}
        missing = {
            "id",
            "wav",
            "text",
            "speaker",
            "phones",
            "durations",
            "frames",
            "seconds",
        } - set(known)
        if missing:
            raise InputError(f"manifest line for {d.get('id', '?')} lacks {sorted(missing)}")
        extra = {k: v for k, v in d.items() if k not in cls.__dataclass_fields__}
        return cls(**known, extra=extra)


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (indent 1)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_manifest(root: str | os.PathLike[str], repair: bool = False) -> list[Utterance]:
    """All utterances of a corpus; with repair, a cut-off last line (crash mid-write) is removed."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return []
    raw = path.read_bytes()
    out: list[Utterance] = []
    offset = 0
    for line in raw.split(b"\n"):
        end = offset + len(line) + 1
        if line.strip():
            try:
                out.append(Utterance.from_dict(json.loads(line)))
            except (json.JSONDecodeError, UnicodeDecodeError):
                if repair and end >= len(raw):
                    with open(path, "r+b") as f:
                        f.truncate(offset)
                    break
                raise InputError(f"{path}: a line near byte {offset} is not valid JSON") from None
        offset = end
    return out


class ManifestWriter:
    """Adds utterances: wav + cached mel written atomically first, then one manifest line appended."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        (self.root / "wavs").mkdir(parents=True, exist_ok=True)
        (self.root / "mels").mkdir(parents=True, exist_ok=True)
        self._file = open(self.root / MANIFEST, "a", encoding="utf-8")  # noqa: SIM115

    def add(self, utt: Utterance, wave: np.ndarray) -> None:
        """Write `wave` (16 kHz mono float) and its mel, then record `utt`."""
        if frames_for(len(wave)) != utt.frames or sum(utt.durations) != utt.frames:
            raise InputError(f"{utt.id}: durations do not match the audio length")
        save(Audio(wave, MEL.rate), self.root / utt.wav, subtype="PCM_16")
        mel = log_mel(np.asarray(wave, dtype=np.float32)).numpy().astype(np.float16)
        with atomic_path(self.root / "mels" / f"{utt.id}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, mel)
        self._file.write(utt.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush and close the manifest."""
        self._file.close()
