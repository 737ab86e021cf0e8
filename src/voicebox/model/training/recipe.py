"""The real-speech training corpus: ../shared/data's `train_*` sets, the bundled voices and warped copies.

`voicebox data build --out data/real-v1` makes it in one resumable command:

1. every utterance of the training sets (never the `eval_*` sets or the prompt folders), resampled to
   16 kHz; the untranscribed LibriSpeech readers are transcribed by the bundled recogniser first (the
   paper trained on ASR transcripts too), their transcripts cached in `transcripts.tsv`;
2. phone alignments by pocketsphinx; an utterance whose words the aligner cannot find is skipped;
3. a few sentences in each bundled voice (Kokoro packs, Piper joe), so the stock voices are in-domain;
4. pseudo-speakers: each real speaker's mels warped along the frequency axis by a fixed factor
   (vocal-tract-length perturbation, ±8–15 %), stored as mel-only utterances of a new speaker.

Work happens in a process pool; every finished utterance is on disk before the next manifest line, so
a killed build resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import multiprocessing
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...audio import Audio, atomic_path, load
from ...errors import InputError
from ...progress import Progress
from ..features import MEL, warp_mel
from .augment import SHARED
from .corpus_io import ManifestWriter, Utterance, read_manifest, write_json

log = logging.getLogger(__name__)

TRAIN_SETS = (
    "train_librispeech_clean100_untranscribed",
    "train_commonvoice_en100",
    "train_speechocean762",
)
BUNDLED_VOICES = ("jm_kumo", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "piper_joe")
MAX_SECONDS = 20.0
TRANSCRIPTS = "transcripts.tsv"


@dataclass(frozen=True)
class Item:
    """One source utterance to turn into a corpus line."""

    id: str
    path: str
    text: str
    speaker: str
    source: str


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def source_items(speech: Path, sets: tuple[str, ...] = TRAIN_SETS) -> list[Item]:
    """Every utterance listed in the training sets' transcripts.tsv (text may be empty)."""
    items: list[Item] = []
    for name in sets:
        if name.startswith("eval_") or not name.startswith("train_"):
            raise InputError(f"{name}: only train_* sets may be trained on")
        table = speech / name / TRANSCRIPTS
        if not table.is_file():
            log.warning("training set %s is missing; skipped", table)
            continue
        with open(table, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                path = speech / name / row["file"]
                uid = _safe(f"{name.removeprefix('train_')[:8]}_{Path(row['file']).stem}")
                items.append(
                    Item(uid, str(path), (row.get("text") or "").strip(), row["speaker"], name)
                )
    return items


def _read_transcripts(out: Path) -> dict[str, str]:
    path = out / TRANSCRIPTS
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)


def _spoken_text(text: str) -> str:
    """Text as the aligner needs it: numbers and symbols written out, case kept."""
    from ...text import normalize

    return normalize(text)


def _job(item: Item) -> tuple[Item, Utterance | None, np.ndarray | None, str, str]:
    """Load, transcribe if needed, align: (item, utterance, 16 kHz samples, transcript, note)."""
    from ..align import align

    try:
        audio = load(item.path, rate=MEL.rate, mono=True)
        x = audio.samples[0]
        if len(x) > MAX_SECONDS * MEL.rate:
            return item, None, None, "", f"skip {item.id}: longer than {MAX_SECONDS:.0f} s"
        text = item.text
        if not text:
            from ...engines.asr import transcribe_text

            text = transcribe_text(audio)
            if not text:
                return item, None, None, "", f"skip {item.id}: the recogniser heard nothing"
        spoken = _spoken_text(text)
        phones, durations = align(audio, spoken)
    except Exception as exc:  # one bad file must not stop the corpus
        return item, None, None, "", f"skip {item.id}: {type(exc).__name__}: {exc}"
    utt = Utterance(
        id=item.id,
        wav=f"wavs/{item.id}.wav",
        text=spoken,
        speaker=item.speaker,
        phones=phones,
        durations=durations,
        frames=int(sum(durations)),
        seconds=round(len(x) / MEL.rate, 3),
        extra={"source": item.source},
    )
    return item, utt, x.astype(np.float32), text, ""


def _bundled_items(sentences: int, seed: int) -> list[Item]:
    from .synth import lj_sentences

    rng = np.random.default_rng([seed, 7])
    texts = lj_sentences()
    out = []
    for voice in BUNDLED_VOICES:
        for k in rng.choice(len(texts), size=sentences, replace=False):
            out.append(
                Item(f"bundled_{voice}_{int(k):05d}", "", texts[int(k)], f"bundled_{voice}", voice)
            )
    return out


def _bundled_job(item: Item) -> tuple[Item, Utterance | None, np.ndarray | None, str, str]:
    """Speak one LJ sentence in a bundled voice and align it."""
    from ...audio import resample
    from ...engines.tts import synthesize
    from ..align import align
    from .synth import pad_silence

    try:
        audio = synthesize(item.text, item.source, lang="en")
        x = resample(audio.samples[:1], audio.rate, MEL.rate)[0]
        x = pad_silence(x.astype(np.float32), np.random.default_rng(len(item.id)))
        phones, durations = align(Audio(x, MEL.rate), item.text)
    except Exception as exc:
        return item, None, None, "", f"skip {item.id}: {type(exc).__name__}: {exc}"
    utt = Utterance(
        id=item.id,
        wav=f"wavs/{item.id}.wav",
        text=item.text,
        speaker=item.speaker,
        phones=phones,
        durations=durations,
        frames=int(sum(durations)),
        seconds=round(len(x) / MEL.rate, 3),
        extra={"source": "bundled"},
    )
    return item, utt, x, item.text, ""


def _dispatch(item: Item) -> tuple[Item, Utterance | None, np.ndarray | None, str, str]:
    return _bundled_job(item) if item.source in BUNDLED_VOICES else _job(item)


# --- pseudo-speakers -------------------------------------------------------------------------------


def warp_factor(speaker: str, seed: int = 0) -> float:
    """A fixed VTLP factor per speaker: 1 ± 0.08–0.15, the sign and size drawn from its name."""
    h = int(hashlib.sha256(f"{seed}:{speaker}".encode()).hexdigest()[:8], 16)
    size = 0.08 + 0.07 * ((h >> 1) % 1000) / 999.0
    return round(1.0 + size if h & 1 else 1.0 - size, 3)


def _add_pseudo(out: Path, utts: list[Utterance], seed: int, done: set[str]) -> int:
    """Mel-only copies of every real utterance, warped per speaker; returns how many were added."""
    made = 0
    with open(out / "manifest.jsonl", "a", encoding="utf-8") as manifest:
        for utt in utts:
            if utt.extra.get("source") in (None, "bundled", "warp"):
                continue
            alpha = warp_factor(utt.speaker, seed)
            uid = f"{utt.id}~w{alpha:.3f}"
            if uid in done:
                continue
            mel = np.load(out / "mels" / f"{utt.id}.npy")
            with atomic_path(out / "mels" / f"{uid}.npy") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, warp_mel(mel, alpha))
            line = Utterance(**{**asdict(utt), "id": uid, "speaker": f"{utt.speaker}~w{alpha:.3f}"})
            line.extra = {"source": "warp", "warp": alpha, "of": utt.id}
            manifest.write(line.to_json() + "\n")
            manifest.flush()
            made += 1
    return made


# --- the whole recipe -------------------------------------------------------------------------------


def _pending(items: list[Item], done: set[str], known: dict[str, str]) -> Iterator[Item]:
    for item in items:
        if item.id in done:
            continue
        if not item.text and item.id in known:
            item = Item(item.id, item.path, known[item.id], item.speaker, item.source)
        yield item


def _write_summary(
    out: Path,
    speech: Path,
    utts: list[Utterance],
    skipped: int,
    pseudo_made: int,
    held_out: int,
    seed: int,
) -> None:
    """corpus.json: what the corpus holds, and which speakers the training's held-out loss uses
    (native readers and their warped twins, like the eval sets)."""
    real = sorted({u.speaker for u in utts if u.extra.get("source") in TRAIN_SETS})
    rng = np.random.default_rng(seed)
    native = TRAIN_SETS[0]  # held-out loss on native readers, like the eval sets
    libri = sorted({u.speaker for u in utts if u.extra.get("source") == native}) or real
    held = sorted(rng.choice(libri, size=min(held_out, len(libri)), replace=False).tolist())
    held += [s for s in {u.speaker for u in utts} if s.split("~")[0] in held and s not in held]
    speakers = sorted({u.speaker for u in utts})
    write_json(
        out / "corpus.json",
        {
            "command": f"voicebox data build --out {out}",
            "sources": [s for s in TRAIN_SETS if (speech / s).is_dir()],
            "hours": round(sum(u.seconds for u in utts) / 3600, 3),
            "hours_real": round(
                sum(u.seconds for u in utts if u.extra.get("source") in TRAIN_SETS) / 3600, 3
            ),
            "utterances": len(utts),
            "skipped_this_run": skipped,
            "pseudo_added_this_run": pseudo_made,
            "speakers": len(speakers),
            "real_speakers": len(real),
            "bundled_speakers": len({u.speaker for u in utts if u.speaker.startswith("bundled_")}),
            "pseudo_speakers": len({u.speaker for u in utts if "~w" in u.speaker}),
            "held_out_speakers": sorted(held),
            "mel": asdict(MEL),
        },
    )


def build(
    out: str | Path,
    speech: str | Path | None = None,
    workers: int = 2,
    bundled_sentences: int = 24,
    pseudo: bool = True,
    held_out: int = 4,
    limit: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Path:
    """Build (or resume) the real-speech corpus at `out`; returns the folder."""
    out = Path(out)
    speech = Path(speech) if speech else SHARED / "speech"
    if not speech.is_dir():
        raise InputError(f"{speech}: no speech data folder (see ../shared/data/README.md)")
    items = source_items(speech)
    if limit:
        items = items[:limit]
    items += _bundled_items(bundled_sentences, seed) if bundled_sentences else []
    if not items:
        raise InputError(f"{speech}: no training utterances found")
    out.mkdir(parents=True, exist_ok=True)
    utts = read_manifest(out, repair=True)
    done = {u.id for u in utts}
    known = _read_transcripts(out)
    todo = list(_pending(items, done, known))
    writer = ManifestWriter(out)
    skipped = 0
    ctx = multiprocessing.get_context("spawn")
    try:
        with (
            ctx.Pool(max(1, workers), initializer=_init_worker) as pool,
            open(out / TRANSCRIPTS, "a", encoding="utf-8") as transcripts,
        ):
            for n, (item, utt, wave, text, note) in enumerate(
                pool.imap_unordered(_dispatch, todo, chunksize=4), 1
            ):
                if not item.text and text and item.id not in known:
                    transcripts.write(f"{item.id}\t{text}\n")
                    transcripts.flush()
                if utt is None or wave is None:
                    log.info("%s", note)
                    skipped += 1
                else:
                    writer.add(utt, wave)
                if progress:
                    progress(len(items) - len(todo) + n, len(items))
    finally:
        writer.close()
    utts = read_manifest(out)
    pseudo_made = _add_pseudo(out, utts, seed, {u.id for u in utts}) if pseudo else 0
    utts = read_manifest(out)
    _write_summary(out, speech, utts, skipped, pseudo_made, held_out, seed)
    return out


def _init_worker() -> None:
    import os

    import torch

    os.environ.setdefault("VOICEBOX_THREADS", "1")
    torch.set_num_threads(1)
