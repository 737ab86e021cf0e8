"""`voicebox transcribe`: speech to text with word times, as txt, json, srt or vtt."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import AudioError, InputError
from ..tasks.options import TranscribeOptions
from .app import app, err, progress_bar, task_options

if TYPE_CHECKING:
    from ..audio import Audio


@app.command()
@task_options(TranscribeOptions)
def transcribe(
    path: str = typer.Argument(
        ...,
        metavar="PATH",
        help="Audio file to transcribe (any language); '-' reads standard input.",
    ),
    out: Path | None = typer.Option(None, "-o", "--output", help="Write here (default: stdout)."),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="txt, json, srt or vtt (default: from -o's extension, else txt).",
    ),
    options: TranscribeOptions = None,  # type: ignore[assignment] - see task_options
) -> None:
    """Transcribe speech with word-level times."""
    from ..audio import check_output
    from ..safety import refuse_overwrite
    from ..tasks.transcribe import FORMATS, check_language, transcribe_file
    from ..tasks.transcribe import transcribe as run

    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out else ""
        fmt = suffix if suffix in FORMATS else "txt"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    language = check_language(options.language)  # an unknown one is refused before any work
    task = options.task
    refuse_overwrite([out], [path])  # the audio would be replaced by its own transcript
    if out is not None:
        check_output(out)  # before the work, not after it
    with progress_bar("transcribing", unit="s") as progress:
        if path == "-":
            result = run(_load_stdin(), progress=progress, language=language, task=task)
        else:  # streamed: memory stays bounded however long the recording
            result = transcribe_file(path, progress=progress, language=language, task=task)
    err.print(_language_line(result), highlight=False)
    if out is None:
        sys.stdout.write(result.render(fmt))
        sys.stdout.flush()
    else:
        result.write(out, fmt)


def _language_line(result: object) -> str:
    """One stderr line naming the language heard, with the detector's probability when detected."""
    from ..engines.asr import LANGUAGE_NAMES

    code = getattr(result, "language", "en")
    name = LANGUAGE_NAMES.get(code, code).capitalize()
    prob = getattr(result, "language_probability", None)
    how = f"detected, probability {prob:.2f}" if prob is not None else "as asked"
    into = "; translated to English" if getattr(result, "task", "") == "translate" else ""
    return f"language: {name} ({code}, {how}){into}"


def _load_stdin() -> Audio:
    """Audio piped to standard input (any format `load` reads), spooled to a private temp file
    because decoders need to seek; errors name standard input, not the temp file."""
    from ..audio import load

    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "'-' reads audio from standard input: pipe a file in (voicebox ... < x.wav)"
        )
    with tempfile.TemporaryDirectory(prefix="voicebox-stdin-") as folder:
        spool = Path(folder) / "stdin"
        with open(spool, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        if spool.stat().st_size == 0:
            raise InputError("standard input is empty: pipe an audio file in")
        try:
            return load(spool)
        except AudioError as exc:
            raise AudioError(str(exc).replace(str(spool), "standard input")) from None
