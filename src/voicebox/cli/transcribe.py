"""`voicebox transcribe`: speech to text with word times, as txt, json, srt or vtt."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import InputError
from .app import app, progress_bar


@app.command()
def transcribe(
    path: Path = typer.Argument(..., help="Audio file to transcribe (English)."),
    out: Path | None = typer.Option(None, "-o", "--output", help="Write here (default: stdout)."),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="txt, json, srt or vtt (default: from -o's extension, else txt).",
    ),
) -> None:
    """Transcribe speech with word-level times."""
    from ..audio import load
    from ..tasks.transcribe import FORMATS
    from ..tasks.transcribe import transcribe as run

    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out else ""
        fmt = suffix if suffix in FORMATS else "txt"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    audio = load(path)
    with progress_bar("transcribing", unit="s") as progress:
        result = run(audio, progress=progress)
    if out is None:
        sys.stdout.write(result.render(fmt))
        sys.stdout.flush()
    else:
        result.write(out, fmt)
