"""`voicebox batch clean|read|transcribe|edit INPUT -o OUT`: many files, resumable, in parallel.

Exit codes: 0 every item succeeded (or was already done), 1 some failed, 2 none succeeded.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import InputError
from .app import app, err

batch_app = typer.Typer(
    help="Run a task over a folder, glob, archive or CSV/JSONL manifest; rerun to resume.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")

INPUT_HELP = "Folder (recursive), glob, .zip/.tar archive, or .csv/.jsonl manifest."
MANIFEST_NOTE = (
    "A manifest has a 'path' column (relative to the manifest), an optional 'output' column "
    "(relative to OUT) and per-item option columns named like the flags."
)
SHOW_FAILURES = 20


def _out_option() -> Any:  # noqa: ANN401 - a typer OptionInfo
    return typer.Option(..., "--out", "-o", help="Output folder; mirrors the input tree.")


def _workers_option() -> Any:  # noqa: ANN401
    return typer.Option(None, "--workers", "-j", help="Parallel workers (default: CPU cores).")


def _engine_option() -> Any:  # noqa: ANN401
    return typer.Option("local", "--engine", help="Where to run: local (process pool) or ray.")


def _address_option() -> Any:  # noqa: ANN401
    return typer.Option(
        None, "--address", help="Ray cluster: auto or ray://host:port (default: start one here)."
    )


@contextlib.contextmanager
def _batch_progress(enabled: bool) -> Iterator[Callable[[Any], None]]:
    """A rich bar: files done of total, failures so far, audio hours, elapsed and ETA."""
    from ..config import env

    if not enabled or not (sys.stderr.isatty() or env("progress", "") == "1"):
        yield lambda status: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("{task.fields[hours]:.2f} h audio"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = None

        def update(status: Any) -> None:  # noqa: ANN401 - a BatchStatus
            nonlocal task
            fields = {"failed": status.failed, "hours": status.audio_seconds / 3600}
            if task is None:  # start at the skipped count so ETA measures only this run's work
                task = bar.add_task(
                    "batch", total=status.total, completed=status.finished, **fields
                )
            else:
                bar.update(task, completed=status.finished, **fields)

        yield update


def _run(
    task: str,
    source: str,
    out: Path,
    options: dict[str, Any],
    workers: int | None,
    engine: str,
    address: str | None,
    quiet: bool,
) -> None:
    from ..batch.runner import run_batch

    if engine not in ("local", "ray"):
        hint = f"; pick the denoiser with --denoiser {engine}" if task == "clean" else ""
        raise InputError(f"--engine chooses where the batch runs (local or ray){hint}")
    options = {k: v for k, v in options.items() if v is not None and v != [] and v is not False}
    with _batch_progress(not quiet) as progress:
        summary = run_batch(task, source, out, options, workers, engine, address, progress)
    if not quiet:
        _print_summary(summary)
    raise typer.Exit(summary.exit_code)


def _print_summary(summary: Any) -> None:  # noqa: ANN401 - a BatchSummary
    s = summary.status
    table = Table(title="batch summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("done now", str(s.done))
    table.add_row("already done (skipped)", str(s.skipped))
    table.add_row("failed", f"[red]{s.failed}[/red]" if s.failed else "0")
    table.add_row("audio processed", f"{s.audio_seconds / 3600:.3f} h")
    table.add_row("wall time", f"{summary.seconds:.1f} s")
    if s.done and summary.seconds > 0:
        table.add_row("files/s", f"{s.done / summary.seconds:.2f}")
        table.add_row("audio h per h", f"{s.audio_seconds / summary.seconds:.1f}")
    err.print(table)
    failures = summary.failures
    if failures:
        fail = Table(title="failed items", title_justify="left")
        fail.add_column("input")
        fail.add_column("reason", style="red")
        for row in failures[:SHOW_FAILURES]:
            fail.add_row(str(row["input"] or row["output"]), str(row["reason"]))
        err.print(fail)
        if len(failures) > SHOW_FAILURES:
            err.print(f"... and {len(failures) - SHOW_FAILURES} more")
    err.print(f"report: {summary.report}  (exit code {summary.exit_code})", highlight=False)


def _pairs(values: list[str] | None, flag: str) -> list[list[str]]:
    pairs = []
    for value in values or []:
        if "=>" not in value:
            raise InputError(f"{flag} '{value}': write it as 'old=>new'")
        a, b = value.split("=>", 1)
        pairs.append([a.strip(), b])
    return pairs


@batch_app.command("clean", epilog=MANIFEST_NOTE)
def batch_clean(
    source: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    out: Path = _out_option(),
    denoiser: str | None = typer.Option(
        None, "--denoiser", "-d", help="dfn3 (best, default), rnnoise or gate."
    ),
    strength: float | None = typer.Option(None, "--strength", help="Denoise strength 0-100."),
    dehum: bool = typer.Option(False, "--dehum", help="Detect and notch 50/60 Hz mains hum."),
    loudness: float | None = typer.Option(None, "--loudness", help="Target loudness in LUFS."),
    fmt: str | None = typer.Option(
        None, "--format", help="wav, flac, ogg or mp3 (default: as input)."
    ),
    workers: int | None = _workers_option(),
    engine: str = _engine_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Denoise every audio file."""
    options = {"engine": denoiser, "strength": strength, "dehum": dehum, "loudness": loudness}
    _run("clean", source, out, {**options, "format": fmt}, workers, engine, address, quiet)


@batch_app.command("read", epilog=MANIFEST_NOTE + " For read, a 'text' column gives the words.")
def batch_read(
    source: str = typer.Argument(
        ..., metavar="INPUT", help="Folder or glob of .txt files, or a manifest with a text column."
    ),
    out: Path = _out_option(),
    voice: str | None = typer.Option(None, "--voice", help="Voice name (see voicebox voices)."),
    blend: str | None = typer.Option(None, "--blend", help="Voice blend, e.g. 'a:0.5,b:0.5'."),
    speed: float | None = typer.Option(None, "--speed", help="Speaking rate, 1.0 is normal."),
    pitch: float | None = typer.Option(None, "--pitch", help="Pitch shift in semitones."),
    lang: str | None = typer.Option(None, "--lang", help="Language code (default en)."),
    fmt: str | None = typer.Option(None, "--format", help="Output format (default wav)."),
    workers: int | None = _workers_option(),
    engine: str = _engine_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Read every text aloud."""
    options = {"voice": voice, "blend": blend, "speed": speed, "pitch": pitch, "lang": lang}
    _run("read", source, out, {**options, "format": fmt}, workers, engine, address, quiet)


@batch_app.command("transcribe", epilog=MANIFEST_NOTE)
def batch_transcribe(
    source: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    out: Path = _out_option(),
    fmt: str | None = typer.Option(None, "--format", help="json (default), txt, srt or vtt."),
    workers: int | None = _workers_option(),
    engine: str = _engine_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Transcribe every audio file (English) with word times."""
    _run("transcribe", source, out, {"format": fmt}, workers, engine, address, quiet)


@batch_app.command("edit", epilog=MANIFEST_NOTE + " Edit columns: replace, delete, insert_after.")
def batch_edit(
    source: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    out: Path = _out_option(),
    replace: list[str] | None = typer.Option(
        None, "--replace", help="'old=>new' (repeatable), applied to every file."
    ),
    delete: list[str] | None = typer.Option(None, "--delete", help="Words to cut (repeatable)."),
    insert_after: list[str] | None = typer.Option(
        None, "--insert-after", help="'anchor=>new words' (repeatable)."
    ),
    occurrence: int | None = typer.Option(
        None, "--occurrence", help="Which match to edit (1-based)."
    ),
    fmt: str | None = typer.Option(None, "--format", help="Output format (default: as input)."),
    workers: int | None = _workers_option(),
    engine: str = _engine_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Apply the same (or per-item manifest) word edits to every recording."""
    options = {
        "replace": _pairs(replace, "--replace"),
        "delete": list(delete or []),
        "insert_after": _pairs(insert_after, "--insert-after"),
        "occurrence": occurrence,
        "format": fmt,
    }
    _run("edit", source, out, options, workers, engine, address, quiet)
