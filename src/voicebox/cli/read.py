"""`voicebox read` (text to speech, streamed sentence by sentence) and `voicebox voices`."""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import typer

from ..errors import InputError
from ..model.config import GUIDANCE
from .app import app, err, progress_bar

SUBTITLE_FORMATS = (".srt", ".vtt")
STREAM_FORMATS = (".wav", ".flac", ".ogg")
PREVIEW_TEXT = {
    "en": "Hello! This is how I sound when I read your text aloud.",
    "ja": "こんにちは。この声で文章を読み上げます。",
}


@app.command()
def read(
    text: str | None = typer.Argument(None, help="Text to read; '-' reads standard input."),
    file: Path | None = typer.Option(None, "-f", "--file", help="Read the text of this file."),
    out: str = typer.Option(..., "-o", "--output", help="Audio file to write; '-' streams WAV."),
    voice: str | None = typer.Option(
        None,
        "--voice",
        "-v",
        help="Voice id from `voicebox voices` (default: piper_joe for English, jf_alpha for "
        "Japanese, espeak:<lang> otherwise).",
    ),
    blend: str | None = typer.Option(
        None, "--blend", help="Mix Kokoro voices, e.g. 'jf_alpha:0.6,jm_kumo:0.4'."
    ),
    speed: float = typer.Option(1.0, "--speed", help="Speaking rate (0.25-4)."),
    pitch: float = typer.Option(0.0, "--pitch", help="Pitch shift in semitones (-12..12)."),
    lang: str | None = typer.Option(
        None, "--lang", help="Text language: en, ja, or any espeak-ng code (default: en)."
    ),
    subtitles: Path | None = typer.Option(None, "--subtitles", help="Write .srt or .vtt here."),
    timings: Path | None = typer.Option(None, "--timings", help="Write word timings JSON here."),
    engine: str = typer.Option(
        "stock", "--engine", help="stock (bundled voices) or voicebox (our model, with --like)."
    ),
    like: Path | None = typer.Option(
        None, "--like", help="With --engine voicebox: speak in the voice of this 3-10 s recording."
    ),
    ref_text: str | None = typer.Option(
        None, "--ref-text", help="Transcript of the --like recording (default: whisper's)."
    ),
    variations: int = typer.Option(
        1, "--variations", help="With --engine voicebox: write N renditions as OUT-1 ... OUT-N."
    ),
    seed: int | None = typer.Option(None, "--seed", help="With --engine voicebox: fix the result."),
    nfe: int = typer.Option(16, "--nfe", help="With --engine voicebox: model steps (8-32)."),
    guidance: float = typer.Option(
        GUIDANCE, "--guidance", help="With --engine voicebox: guidance."
    ),
    consent: str | None = typer.Option(
        None, "--consent", help="With --like: the speaker's own statement that they agree."
    ),
    consent_file: Path | None = typer.Option(
        None, "--consent-file", help="With --like: a text file holding that statement."
    ),
) -> None:
    """Read text aloud; audio is written sentence by sentence as it is made."""
    from ..audio import atomic_path
    from ..tasks.read import ENGINES, choose_voice, read_stream, timings_json, to_srt, to_vtt

    source = _source(text, file)
    _check_outputs(out, subtitles, timings)
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'; use one of {', '.join(ENGINES)}")
    if engine == "voicebox":
        _read_like(
            source,
            out,
            subtitles,
            timings,
            like,
            ref_text,
            variations,
            seed,
            nfe,
            guidance,
            (consent, consent_file),
        )
        return
    if consent is not None or consent_file is not None:
        raise InputError("--consent and --consent-file go with --engine voicebox --like REF")
    if like is not None or ref_text is not None or variations != 1:
        raise InputError("--like, --ref-text and --variations need --engine voicebox")
    _, name, _ = choose_voice(voice, blend, lang)
    collected: list = []
    with progress_bar("reading", unit="items") as bar:

        def tick(done: float, total: float) -> None:
            bar(done, total if total > 0 else done)

        stream = read_stream(
            source, voice=voice, blend=blend, speed=speed, pitch=pitch, lang=lang, progress=tick
        )
        rate, duration = _write(stream, out, collected)
    if subtitles is not None:
        render = to_srt if subtitles.suffix.lower() == ".srt" else to_vtt
        with atomic_path(subtitles) as tmp:
            tmp.write_text(render(collected), encoding="utf-8")
    if timings is not None:
        with atomic_path(timings) as tmp:
            tmp.write_text(timings_json(collected, name, rate, duration), encoding="utf-8")


def _read_like(
    source: str | Iterator[str],
    out: str,
    subtitles: Path | None,
    timings: Path | None,
    like: Path | None,
    ref_text: str | None,
    variations: int,
    seed: int | None,
    nfe: int,
    guidance: float,
    consent: tuple[str | None, Path | None] = (None, None),
) -> None:
    """`read --engine voicebox --like REF`: zero-shot reading in REF's voice, N variations."""
    from .. import provenance
    from ..audio import atomic_path, load, save
    from ..model.checkpoint import find
    from ..tasks.read import read_like, variation_paths

    if like is None:
        raise InputError("--engine voicebox reads in the voice of a recording: add --like REF.wav")
    if out == "-":
        raise InputError("--engine voicebox writes files; give -o OUT.wav")
    if not 1 <= variations <= 16:
        raise InputError("--variations must be between 1 and 16")
    find(None, "audio")  # NotReadyError (one line) when no model is trained, before any work
    reference = load(like)
    # Cloning needs the speaker's consent: refused here, before any speech is generated.
    record = provenance.require_consent(consent[0], consent[1], reference)
    text = source if isinstance(source, str) else "".join(source)
    base = seed
    if base is None and variations > 1:
        import random

        base = random.randrange(2**30)
    paths = variation_paths(out, variations)
    subs = variation_paths(str(subtitles), variations) if subtitles is not None else None
    times = variation_paths(str(timings), variations) if timings is not None else None
    for i, path in enumerate(paths):
        with progress_bar(f"reading like {like.name} ({i + 1}/{len(paths)})", "items") as bar:
            speech = read_like(
                text,
                reference,
                ref_text,
                seed=None if base is None else base + 1000 * i,
                nfe=nfe,
                guidance=guidance,
                progress=bar,
            )
        save(speech.audio, path)
        provenance.write_sidecar(path, record)
        if subs is not None:
            render = speech.to_srt if subs[i].lower().endswith(".srt") else speech.to_vtt
            with atomic_path(subs[i]) as tmp:
                tmp.write_text(render(), encoding="utf-8")
        if times is not None:
            with atomic_path(times[i]) as tmp:
                tmp.write_text(speech.to_json(), encoding="utf-8")
        err.print(f"wrote {path}", highlight=False)


def _source(text: str | None, file: Path | None) -> str | Iterator[str]:
    """The text to read: the argument, a file's lines or standard input's lines."""
    if text is not None and file is not None:
        raise InputError("give the text or -f FILE, not both")
    if file is not None:
        return _file_lines(file)
    if text == "-":
        return iter(sys.stdin)
    if text is None:
        raise InputError("nothing to read: give TEXT, -f FILE, or '-' for standard input")
    return text


def _file_lines(path: Path) -> Iterator[str]:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a text file")
    with open(path, "rb") as f:
        if b"\x00" in f.read(8192):
            raise InputError(f"{path}: looks like a binary file, not text")

    def lines() -> Iterator[str]:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            yield from f

    return lines()


def _check_outputs(out: str, subtitles: Path | None, timings: Path | None) -> None:
    """Refuse unusable output paths before any synthesis starts."""
    from ..audio import FFMPEG_WRITE, WRITE_FORMATS

    if out != "-":
        ext = Path(out).suffix.lower()
        if ext not in WRITE_FORMATS and ext not in FFMPEG_WRITE:
            raise InputError(f"{out}: cannot write '{ext}' audio; use .wav .flac .ogg .mp3 .opus")
        _check_folder(Path(out))
    if subtitles is not None:
        if subtitles.suffix.lower() not in SUBTITLE_FORMATS:
            raise InputError(f"{subtitles}: subtitles must be .srt or .vtt")
        _check_folder(subtitles)
    if timings is not None:
        if timings.suffix.lower() != ".json":
            raise InputError(f"{timings}: timings are written as .json")
        _check_folder(timings)


def _check_folder(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")


def _write(stream: Iterator, out: str, collected: list) -> tuple[int, float]:
    """Write chunks to a file, or a WAV stream on stdout; returns (rate, seconds written)."""
    from ..audio import Audio, StreamWriter, save

    rate, frames = 0, 0
    if out == "-":
        sink = sys.stdout.buffer
        for chunk, timing in stream:
            if not rate:
                rate = chunk.rate
                sink.write(wav_stream_header(rate))
            sink.write(pcm16(chunk.samples[0]))
            sink.flush()
            frames += chunk.frames
            collected.append(timing)
        return rate, frames / max(rate, 1)
    path = Path(out)
    if path.suffix.lower() in STREAM_FORMATS:
        writer = None
        try:
            for chunk, timing in stream:
                if writer is None:
                    rate = chunk.rate
                    writer = StreamWriter(path, rate, 1)
                writer.write(chunk.samples)
                frames += chunk.frames
                collected.append(timing)
        except BaseException:
            if writer is not None:
                writer.close(ok=False)
            raise
        if writer is not None:
            writer.close()
        return rate, frames / max(rate, 1)
    parts = []
    for chunk, timing in stream:
        rate = chunk.rate
        parts.append(chunk.samples[0])
        collected.append(timing)
    audio = Audio(np.concatenate(parts), rate)
    save(audio, path)
    return rate, audio.duration


def wav_stream_header(rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A WAV header for a stream of unknown length (sizes set to the maximum, as ffmpeg does)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


def pcm16(x: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as little-endian 16-bit PCM bytes."""
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


@app.command()
def voices(
    lang: str | None = typer.Option(None, "--lang", help="Only voices that read this language."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    preview: Path | None = typer.Option(
        None, "--preview", help="Speak a sample with each listed voice into this folder."
    ),
) -> None:
    """List the voices available offline."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from ..tasks.read import voices as list_voices

    found = list_voices(lang)
    if not found:
        raise InputError(f"no voice reads '{lang}'; `voicebox voices` lists every language")
    if preview is not None:
        _preview(found, preview, lang)
    if as_json:
        sys.stdout.write(json.dumps([asdict(v) for v in found], ensure_ascii=False, indent=1))
        sys.stdout.write("\n")
        return
    table = Table("id", "lang", "gender", "engine", "description", box=None)
    for v in found:
        table.add_row(v.id, ",".join(v.languages) or v.lang, v.gender, v.engine, v.description)
    Console().print(table)


def _preview(found: list, folder: Path, lang: str | None) -> None:
    from ..audio import save
    from ..tasks.read import read as run

    folder.mkdir(parents=True, exist_ok=True)
    with progress_bar("previewing", unit="items") as bar:
        for i, v in enumerate(found):
            code = lang or v.lang
            base = code.split("-")[0]
            sample = PREVIEW_TEXT.get(base, "1, 2, 3, 4, 5.")
            speech_lang = base if base in PREVIEW_TEXT else code
            speech = run(sample, voice=v.id, lang=speech_lang)
            save(speech.audio, folder / f"{v.id.replace(':', '_')}.wav")
            bar(i + 1, len(found))
    err.print(f"wrote {len(found)} previews to {folder}")
