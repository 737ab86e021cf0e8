"""Turn a real speech corpus (LJSpeech or LibriTTS layout) into the training corpus format.

Each utterance is resampled to 16 kHz mono, force-aligned at phone level and its mel cached;
utterances that fail to load or align are logged and skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ...audio import load
from ...errors import InputError
from ...progress import Progress
from ..align import align
from ..features import MEL
from .corpus_io import ManifestWriter, Utterance, read_manifest, write_json

log = logging.getLogger(__name__)


def _ljspeech(root: Path) -> Iterator[tuple[str, Path, str, str]]:
    """(id, wav, text, speaker) from metadata.csv (id|raw|normalised) and wavs/."""
    with open(root / "metadata.csv", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 2 or not parts[0]:
                continue
            text = parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]
            yield parts[0], root / "wavs" / f"{parts[0]}.wav", text.strip(), root.name or "lj"


def _libritts(root: Path) -> Iterator[tuple[str, Path, str, str]]:
    """(id, wav, text, speaker) from speaker/chapter/<id>.wav + <id>.normalized.txt."""
    for txt in sorted(root.rglob("*.normalized.txt")):
        wav = txt.with_name(txt.name.replace(".normalized.txt", ".wav"))
        if wav.exists():
            speaker = (
                txt.relative_to(root).parts[0] if len(txt.relative_to(root).parts) > 1 else "spk"
            )
            uid = wav.stem
            yield uid, wav, txt.read_text(encoding="utf-8").strip(), speaker


def detect_layout(root: Path) -> str:
    """'ljspeech' or 'libritts', from the files present; InputError otherwise."""
    if (root / "metadata.csv").is_file() and (root / "wavs").is_dir():
        return "ljspeech"
    if next(root.rglob("*.normalized.txt"), None) is not None:
        return "libritts"
    raise InputError(
        f"{root}: not a known corpus layout (want LJSpeech metadata.csv + wavs/, "
        "or LibriTTS speaker/chapter/*.wav + *.normalized.txt)"
    )


def prepare(
    source: str | Path,
    out: str | Path,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Convert `source` into a corpus at `out` (resumable); returns the output folder."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise InputError(f"{source}: no such folder")
    if out.resolve() == source.resolve():
        raise InputError("the output folder must differ from the source folder")
    layout = detect_layout(source)
    items = list(_ljspeech(source) if layout == "ljspeech" else _libritts(source))
    if limit:
        items = items[:limit]
    if not items:
        raise InputError(f"{source}: no utterances found")
    out.mkdir(parents=True, exist_ok=True)
    done = {u.id for u in read_manifest(out, repair=True)}
    writer = ManifestWriter(out)
    made, skipped = len(done), 0
    try:
        for n, (uid, wav, text, speaker) in enumerate(items):
            uid = re.sub(r"[^A-Za-z0-9_.-]", "_", uid)
            if uid in done:
                continue
            try:
                audio = load(wav, rate=MEL.rate, mono=True)
                phones, durations = align(audio, text)
            except Exception as exc:  # one bad file must not stop the corpus
                log.warning("skip %s: %s", uid, exc)
                skipped += 1
                continue
            x = audio.samples[0]
            writer.add(
                Utterance(
                    id=uid,
                    wav=f"wavs/{uid}.wav",
                    text=text,
                    speaker=speaker,
                    phones=phones,
                    durations=durations,
                    frames=int(sum(durations)),
                    seconds=round(len(x) / MEL.rate, 3),
                ),
                x,
            )
            made += 1
            if progress:
                progress(n + 1, len(items))
    finally:
        writer.close()
        utts = read_manifest(out)
        write_json(
            out / "corpus.json",
            {
                "command": f"voicebox data prepare {source} --out {out}",
                "source": str(source),
                "layout": layout,
                "hours": round(sum(u.seconds for u in utts) / 3600, 3),
                "utterances": len(utts),
                "skipped": skipped,
                "speakers": sorted({u.speaker for u in utts}),
                "held_out_speakers": [],
                "mel": asdict(MEL),
            },
        )
    return out
