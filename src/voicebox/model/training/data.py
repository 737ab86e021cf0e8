"""Corpora and datasets the model and vocoder train on (corpus format: see model/corpus_io.py).

`MelPhoneDataset` gives mels with frame-aligned phones for the audio and duration models;
`WaveMelDataset` gives (mel, waveform) segments for the vocoder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ...errors import InputError
from ..features import MEL, log_mel
from ..phones import PHONE_ID
from .corpus_io import Utterance, read_manifest

LOG_FLOOR = float(np.log(1e-5))


class Corpus:
    """A corpus folder: its utterances (manifest.jsonl) and recipe (corpus.json)."""

    def __init__(
        self, root: str | os.PathLike[str], utterances: list[Utterance] | None = None
    ) -> None:
        self.root = Path(root)
        if utterances is None:
            if not (self.root / "manifest.jsonl").exists():
                raise InputError(f"{self.root}: not a corpus (no manifest.jsonl)")
            utterances = read_manifest(self.root)
        self.utterances = utterances
        recipe = self.root / "corpus.json"
        self.recipe: dict = json.loads(recipe.read_text()) if recipe.exists() else {}
        unknown = {p for u in utterances for p in u.phones if p not in PHONE_ID}
        if unknown:
            raise InputError(f"{self.root}: unknown phones {sorted(unknown)[:5]}")

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def speakers(self) -> list[str]:
        """Speaker names, sorted."""
        return sorted({u.speaker for u in self.utterances})

    @property
    def hours(self) -> float:
        """Total audio in hours."""
        return sum(u.seconds for u in self.utterances) / 3600.0

    def split(self, held_out_speakers: list[str] | None = None) -> tuple[Corpus, Corpus]:
        """(training, held-out) corpora; by default the speakers corpus.json lists as held out."""
        held = set(
            held_out_speakers
            if held_out_speakers is not None
            else self.recipe.get("held_out_speakers", [])
        )
        train = [u for u in self.utterances if u.speaker not in held]
        test = [u for u in self.utterances if u.speaker in held]
        return Corpus(self.root, train), Corpus(self.root, test)

    def source_of(self, utt: Utterance) -> str:
        """The corpus source an utterance came from; a warped pseudo-speaker's is its original's."""
        source = str(utt.extra.get("source", ""))
        if source == "warp" and "of" in utt.extra:
            original = self._by_id().get(str(utt.extra["of"]))
            if original is not None:
                return str(original.extra.get("source", ""))
        return source

    def _by_id(self) -> dict[str, Utterance]:
        if not hasattr(self, "_ids"):
            self._ids = {u.id: u for u in self.utterances}
        return self._ids

    def sampling_weights(self, weights: dict[str, float]) -> list[float]:
        """Per-utterance draw weights from per-source weights (1 for a source not named)."""
        unknown = set(weights) - {self.source_of(u) for u in self.utterances}
        if unknown:
            raise InputError(f"source_weights names sources not in the corpus: {sorted(unknown)}")
        return [float(weights.get(self.source_of(u), 1.0)) for u in self.utterances]

    def mel(self, utt: Utterance) -> np.ndarray:
        """Cached log-mel [frames, 80] float32 (computed from the wav if the cache is missing)."""
        path = self.root / "mels" / f"{utt.id}.npy"
        if path.exists():
            mel = np.load(path).astype(np.float32)
        else:
            mel = log_mel(self.wave(utt)).numpy()
        if mel.shape[0] != utt.frames:
            raise InputError(f"{utt.id}: mel has {mel.shape[0]} frames, manifest says {utt.frames}")
        return mel

    def wave(self, utt: Utterance, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples [start, stop) of an utterance as float32 mono at 16 kHz."""
        x, rate = sf.read(self.root / utt.wav, start=start, stop=stop, dtype="float32")
        if rate != MEL.rate:
            raise InputError(f"{utt.wav}: {rate} Hz, corpus audio must be {MEL.rate} Hz")
        return x if x.ndim == 1 else x.mean(axis=1)


def _crop_phones(
    phones: np.ndarray, durations: np.ndarray, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Phones overlapping frames [start, stop) and their durations clipped to the window."""
    ends = np.cumsum(durations)
    begins = ends - durations
    keep = (ends > start) & (begins < stop)
    clipped = np.minimum(ends[keep], stop) - np.maximum(begins[keep], start)
    return phones[keep], clipped


class MelPhoneDataset(Dataset):
    """Mels with frame-aligned phones; random crops of at most max_frames frames."""

    def __init__(self, corpus: Corpus, max_frames: int = 400, random_crop: bool = True) -> None:
        if len(corpus) == 0:
            raise InputError(f"{corpus.root}: corpus has no utterances")
        self.corpus = corpus
        self.max_frames = max_frames
        self.random_crop = random_crop
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.corpus)

    def _mel(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache[i] = self.corpus.mel(self.corpus.utterances[i])
        return self._cache[i]

    def __getitem__(self, i: int) -> dict:
        utt = self.corpus.utterances[i]
        mel = self._mel(i)
        phones = np.array([PHONE_ID[p] for p in utt.phones], dtype=np.int64)
        durations = np.array(utt.durations, dtype=np.int64)
        start, stop = 0, utt.frames
        if utt.frames > self.max_frames:
            room = utt.frames - self.max_frames
            start = int(torch.randint(0, room + 1, ()).item()) if self.random_crop else 0
            stop = start + self.max_frames
            phones, durations = _crop_phones(phones, durations, start, stop)
        return {
            "mel": torch.from_numpy(mel[start:stop].copy()),
            "phones": torch.from_numpy(phones),
            "durations": torch.from_numpy(durations),
            "frame_phones": torch.from_numpy(np.repeat(phones, durations)),
            "speaker": utt.speaker,
        }


def _pad(tensors: list[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=value)


def collate_mel_phone(items: list[dict]) -> dict:
    """Pad a list of MelPhoneDataset items into a batch with frame_mask and phone_mask (True = real)."""
    frames = torch.tensor([len(it["mel"]) for it in items])
    n_phones = torch.tensor([len(it["phones"]) for it in items])
    return {
        "mel": _pad([it["mel"] for it in items]),
        "phones": _pad([it["phones"] for it in items], PHONE_ID["<pad>"]),
        "durations": _pad([it["durations"] for it in items]),
        "frame_phones": _pad([it["frame_phones"] for it in items], PHONE_ID["<pad>"]),
        "frame_mask": torch.arange(int(frames.max()))[None] < frames[:, None],
        "phone_mask": torch.arange(int(n_phones.max()))[None] < n_phones[:, None],
        "speaker": [it["speaker"] for it in items],
    }


class WaveMelDataset(Dataset):
    """Random (mel, waveform) segments of segment_frames frames for vocoder training."""

    def __init__(self, corpus: Corpus, segment_frames: int = 32, random_crop: bool = True) -> None:
        if len(corpus) == 0:
            raise InputError(f"{corpus.root}: corpus has no utterances")
        self.corpus = corpus
        self.segment_frames = segment_frames
        self.random_crop = random_crop
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.corpus)

    def __getitem__(self, i: int) -> dict:
        utt = self.corpus.utterances[i]
        if i not in self._cache:
            self._cache[i] = self.corpus.mel(utt)
        mel = self._cache[i]
        seg, hop = self.segment_frames, MEL.hop
        room = max(0, utt.frames - 1 - seg)  # the last frame is centred past the final sample
        start = int(torch.randint(0, room + 1, ()).item()) if self.random_crop else 0
        wave = self.corpus.wave(utt, start * hop, (start + seg) * hop)
        mel = mel[start : start + seg]
        if len(wave) < seg * hop:
            wave = np.pad(wave, (0, seg * hop - len(wave)))
        if len(mel) < seg:
            mel = np.pad(mel, ((0, seg - len(mel)), (0, 0)), constant_values=LOG_FLOOR)
        return {"mel": torch.from_numpy(np.ascontiguousarray(mel)), "wave": torch.from_numpy(wave)}


def collate_wave_mel(items: list[dict]) -> dict:
    """Stack WaveMelDataset items: mel [B, T, 80], wave [B, T*hop]."""
    return {
        "mel": torch.stack([it["mel"] for it in items]),
        "wave": torch.stack([it["wave"] for it in items]),
    }
