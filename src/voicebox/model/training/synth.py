"""Synthesise a multi-speaker training corpus from the bundled voices, aligned and ready to train on.

Virtual speakers are convex blends of 2–3 Kokoro voice packs (or Piper), each with its own speed and
pitch; a few speakers are held out for benchmarks. Written in the corpus format of `model/data.py`,
resumable: ids already in the manifest are skipped.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...audio import Audio, resample
from ...errors import InputError
from ...progress import Progress
from ..features import MEL
from .augment import SHARED, augment
from .corpus_io import ManifestWriter, Utterance, read_manifest, write_json

log = logging.getLogger(__name__)

KOKORO_PACKS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
PIPER = "piper_joe"
LJ_METADATA = SHARED / "text" / "ljspeech_metadata.csv"


@dataclass
class Speaker:
    """A virtual speaker: a voice (Kokoro blend or Piper), a speaking rate and a pitch shift."""

    name: str
    voice: str | dict[str, float]
    speed: float
    pitch: float
    held_out: bool = False


def make_speakers(
    seed: int, n_train: int = 40, n_held_out: int = 4, packs: tuple[str, ...] = KOKORO_PACKS
) -> list[Speaker]:
    """Random speakers: Dirichlet blends of 2–3 Kokoro packs, about one in six on Piper.

    With no packs every speaker is Piper at its own speed and pitch (cheap: used by tests).
    """
    rng = np.random.default_rng([seed, 7])
    speakers = []
    for i in range(n_train + n_held_out):
        held_out = i >= n_train
        if len(packs) < 2 or not held_out and rng.random() < 1 / 6:
            voice: str | dict[str, float] = PIPER
        else:
            k = int(rng.integers(2, 4))
            chosen = rng.choice(packs, size=min(k, len(packs)), replace=False)
            weights = rng.dirichlet(np.ones(len(chosen)))
            voice = {str(p): round(float(w), 3) for p, w in zip(chosen, weights, strict=True)}
        speakers.append(
            Speaker(
                name=f"{'held' if held_out else 'spk'}{i:03d}",
                voice=voice,
                speed=round(float(rng.uniform(0.85, 1.15)), 3),
                pitch=round(float(rng.uniform(-3.0, 3.0)), 2),
                held_out=held_out,
            )
        )
    return speakers


def lj_sentences(path: Path = LJ_METADATA) -> list[str]:
    """The normalised LJ Speech sentences (third column), 20–220 characters, when the file exists."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            text = parts[2] if len(parts) > 2 else parts[-1]
            if 20 <= len(text) <= 220 and text.isascii():
                out.append(text.strip())
    return out


_SUBJECTS = "the old farmer|my sister|a tired doctor|the young pilot|our neighbour|the teacher|a quiet student|the captain|his uncle|the baker".split(
    "|"
)
_VERBS = "carried|painted|found|repaired|described|forgot|watched|opened|counted|borrowed".split(
    "|"
)
_OBJECTS = "a wooden box|the broken clock|seven green apples|an empty bottle|the heavy door|a letter from home|the yellow kite|a map of the valley|the silver key|twelve small stones".split(
    "|"
)
_PLACES = "near the river|before dinner|in the morning|after the storm|under the bridge|at the station|behind the school|during the summer|on the hill|in the garden".split(
    "|"
)
_TAILS = "and then went home.|while everyone was asleep.|but nobody noticed.|because it was raining.|so the children laughed.|and said nothing at all.|as the bells rang.|with great care.".split(
    "|"
)


def generated_sentence(rng: np.random.Generator) -> str:
    """A varied English sentence from templates, for when no text corpus is available."""
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    s = f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)} {pick(_PLACES)}"
    if rng.random() < 0.6:
        s += f", {pick(_TAILS)}"
    else:
        s += "."
    if rng.random() < 0.2:
        s = f"Did {s[:-1].split(' ', 1)[0].lower()} {s[:-1].split(' ', 1)[1]}?"
    return s[0].upper() + s[1:]


def pitch_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Shift pitch and formants together by resampling (duration scales by the inverse factor)."""
    if abs(semitones) < 1e-3:
        return x
    factor = 2.0 ** (semitones / 12.0)
    return resample(x[None], int(round(rate * factor)), rate)[0]


def _synthesize(speaker: Speaker, text: str) -> np.ndarray:
    """16 kHz mono speech of `text` in `speaker`'s voice, speed and pitch."""
    from ...engines.tts import synthesize

    factor = 2.0 ** (speaker.pitch / 12.0)
    audio = synthesize(text, speaker.voice, speed=speaker.speed / factor, lang="en")
    x = audio.mono()
    x = pitch_shift(x, audio.rate, speaker.pitch)
    x = resample(x[None], audio.rate, MEL.rate)[0]
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0.95:
        x = x * (0.95 / peak)
    return x.astype(np.float32)


def pad_silence(x: np.ndarray, rng: np.random.Generator, rate: int = MEL.rate) -> np.ndarray:
    """Add 0.1–0.3 s of silence at each edge, as a reader leaves (and g2p's edge SIL expects)."""
    head, tail = (int(rate * rng.uniform(0.1, 0.3)) for _ in range(2))
    return np.concatenate([np.zeros(head, np.float32), x, np.zeros(tail, np.float32)])


def _job(
    args: tuple[int, Speaker, str, int, float],
) -> tuple[int, Utterance | None, np.ndarray | None, str]:
    """Make one utterance: synthesise, align on the clean audio, augment. Returns (index, utt, wave, note)."""
    from ..align import align

    index, speaker, text, seed, p_augment = args
    rng = np.random.default_rng([seed, index, 11])
    uid = f"{speaker.name}_{index:06d}"
    try:
        x = pad_silence(_synthesize(speaker, text), rng)
        phones, durations = align(Audio(x, MEL.rate), text)
    except Exception as exc:  # skip, never stop the corpus build
        return index, None, None, f"skip {uid}: {type(exc).__name__}: {exc}"
    y, condition = augment(x, rng, MEL.rate, p_augment)
    utt = Utterance(
        id=uid,
        wav=f"wavs/{uid}.wav",
        text=text,
        speaker=speaker.name,
        phones=phones,
        durations=durations,
        frames=int(sum(durations)),
        seconds=round(len(y) / MEL.rate, 3),
        condition=condition,
    )
    return index, utt, y, ""


def _plan(
    seed: int, speakers: list[Speaker], sentences: list[str]
) -> Iterator[tuple[int, Speaker, str]]:
    """Endless deterministic (index, speaker, text) sequence; held-out speakers get a small share."""
    weights = np.array([0.25 if s.held_out else 1.0 for s in speakers])
    weights /= weights.sum()
    index = 0
    while True:
        rng = np.random.default_rng([seed, index, 3])
        speaker = speakers[int(rng.choice(len(speakers), p=weights))]
        text = (
            sentences[int(rng.integers(len(sentences)))] if sentences else generated_sentence(rng)
        )
        yield index, speaker, text
        index += 1


def _recipe(
    out: Path,
    hours: float,
    seed: int,
    workers: int,
    p_augment: float,
    speakers: list[Speaker],
    lj: bool,
) -> dict:
    """What corpus.json records of how the corpus was made."""
    return {
        "command": f"voicebox data synth --hours {hours} --out {out} --seed {seed} --workers {workers}",
        "source": "synth",
        "hours_target": hours,
        "seed": seed,
        "text_source": str(LJ_METADATA) if lj else "built-in sentence generator",
        "augmentation": {
            "p": p_augment,
            "kinds": "generated/real RIR, generated/real noise 5-30 dB",
        },
        "speakers": [asdict(s) for s in speakers],
        "held_out_speakers": [s.name for s in speakers if s.held_out],
        "mel": asdict(MEL),
    }


def synth(
    out: str | Path,
    hours: float,
    seed: int = 0,
    workers: int = 1,
    p_augment: float = 0.25,
    n_speakers: int = 40,
    n_held_out: int = 4,
    max_utterances: int | None = None,
    progress: Progress | None = None,
    packs: tuple[str, ...] = KOKORO_PACKS,
) -> Path:
    """Build (or resume) a synthetic corpus of about `hours` hours in `out`; returns the folder."""
    if hours <= 0 and not max_utterances:
        raise InputError("--hours must be positive")
    out = Path(out)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    (out / "mels").mkdir(parents=True, exist_ok=True)
    speakers = make_speakers(seed, n_speakers, n_held_out, packs)
    sentences = lj_sentences()
    recipe = _recipe(out, hours, seed, workers, p_augment, speakers, bool(sentences))
    done = {u.id: u for u in read_manifest(out, repair=True)}
    seconds = sum(u.seconds for u in done.values())
    target = hours * 3600.0
    count = len(done)
    write_json(
        out / "corpus.json", {**recipe, "hours": round(seconds / 3600, 3), "utterances": count}
    )
    log.info("resuming with %d utterances (%.2f h)", count, seconds / 3600)

    def pending() -> Iterator[tuple[int, Speaker, str, int, float]]:
        for index, speaker, text in _plan(seed, speakers, sentences):
            if f"{speaker.name}_{index:06d}" not in done:
                yield index, speaker, text, seed, p_augment

    start = time.monotonic()
    made = 0.0
    writer = ManifestWriter(out)
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    results = pool.imap(_job, pending(), chunksize=1) if pool else map(_job, pending())
    try:
        for _, utt, wave, note in results:
            if seconds >= target or (max_utterances is not None and count >= max_utterances):
                break
            if utt is None or wave is None:
                log.warning(note)
                continue
            writer.add(utt, wave)
            seconds += utt.seconds
            made += utt.seconds
            count += 1
            if progress:
                progress(min(seconds, target), target)
            if count % 25 == 0:
                wall = time.monotonic() - start
                log.info(
                    "%d utterances, %.1f min audio, rate %.2f audio min / wall min",
                    count,
                    seconds / 60,
                    made / max(wall, 1e-9),
                )
                write_json(
                    out / "corpus.json",
                    {**recipe, "hours": round(seconds / 3600, 3), "utterances": count},
                )
    finally:
        if pool:
            pool.terminate()
        writer.close()
        write_json(
            out / "corpus.json", {**recipe, "hours": round(seconds / 3600, 3), "utterances": count}
        )
    return out
