"""`voicebox batch clean|read|read-like|transcribe|edit INPUT -o OUT`: many files, resumable,
in parallel.

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
from ..tasks.options import (
    EDIT_ENGINES,
    CleanOptions,
    EditOptions,
    ReadLikeOptions,
    ReadOptions,
    TranscribeOptions,
)
from .app import app, err, task_options

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
RUNNERS = ("local", "ray")


def _out_option() -> Any:  # noqa: ANN401 - a typer OptionInfo
    return typer.Option(..., "--out", "-o", help="Output folder; mirrors the input tree.")


def _workers_option() -> Any:  # noqa: ANN401
    return typer.Option(None, "--workers", "-j", help="Parallel workers (default: CPU cores).")


def _runner_option() -> Any:  # noqa: ANN401
    return typer.Option("local", "--runner", help="Where to run: local (process pool) or ray.")


def _old_runner_option() -> Any:  # noqa: ANN401
    """`--engine local|ray`: the runner's old spelling, kept hidden so old scripts still work."""
    return typer.Option(None, "--engine", hidden=True)


def _address_option() -> Any:  # noqa: ANN401
    return typer.Option(
        None, "--address", help="Ray cluster: auto or ray://host:port (default: start one here)."
    )


def _consent_options(statement: str, file: str, clip: str) -> tuple[Any, Any, Any]:
    """--consent, --consent-file and --consent-audio (typer options; manifest columns of those
    names) for the tasks that have our model speak in a recorded person's voice, each help text
    led by when it applies."""
    return (
        typer.Option(
            None, "--consent", help=f"{statement}the speaker's statement that they agree."
        ),
        typer.Option(None, "--consent-file", help=f"{file}a text file holding that statement."),
        typer.Option(None, "--consent-audio", help=f"{clip}a clip of them reading it (checked)."),
    )


EDIT_CONSENT = _consent_options(*["Our model then speaks in the voice (--engine auto): "] * 3)
LIKE_CONSENT = _consent_options(
    "Required (or --consent-file): ", "Required (or --consent): ", "Optional: "
)


def _consent_values(
    statement: str | None, file: Path | None, audio: Path | None
) -> dict[str, str | None]:
    """The consent flags as batch options (files as absolute paths, as a manifest's are)."""
    return {
        "consent": statement,
        "consent_file": str(file.resolve()) if file else None,
        "consent_audio": str(audio.resolve()) if audio else None,
    }


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


def _runner(runner: str, old: str | None) -> str:
    """The runner, from --runner or (deprecated) --engine local|ray."""
    if old is None:
        return runner
    if old not in RUNNERS:
        raise InputError(f"--engine '{old}': use --runner local or --runner ray")
    err.print(f"note: --engine {old} is now --runner {old}", highlight=False)
    return old


def _run(
    task: str,
    source: str,
    out: Path,
    options: dict[str, Any],
    workers: int | None,
    runner: str,
    address: str | None,
    quiet: bool,
) -> None:
    from ..batch.runner import run_batch

    if runner not in RUNNERS:
        raise InputError(f"--runner '{runner}': use local or ray")
    options = {k: v for k, v in options.items() if v is not None and v != []}
    try:
        with _batch_progress(not quiet) as progress:
            summary = run_batch(task, source, out, options, workers, runner, address, progress)
    except KeyboardInterrupt:
        # What finished is recorded; a rerun skips it and sweeps this run's temporary files.
        err.print("interrupted: rerun the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    if not quiet:
        _print_summary(summary)
        _note_converted(task, summary.rows)
    raise typer.Exit(summary.exit_code)


def _note_converted(task: str, rows: list[dict[str, Any]]) -> None:
    """Say which inputs came out as WAV because the task cannot write their format (m4a, opus)."""
    from ..audio import STREAM_EXTS, WRITE_EXTS

    writable = {"clean": STREAM_EXTS, "edit": WRITE_EXTS}.get(task)
    if writable is None:
        return
    kinds: dict[str, list[str]] = {}
    for row in rows:
        src, dst = Path(row["input"] or ""), Path(row["output"])
        if row["input"] and src.suffix.lower() not in writable and dst.suffix.lower() == ".wav":
            kinds.setdefault(src.suffix.lower().lstrip(".") or "?", []).append(str(dst))
    for kind, outputs in kinds.items():
        example = f" ({outputs[0]}, ...)" if len(outputs) > 1 else f" ({outputs[0]})"
        err.print(
            f"note: {task} cannot write {kind}; wrote {len(outputs)} file(s) as WAV{example}",
            highlight=False,
        )


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
    if summary.stale_removed:
        err.print(
            f"removed {summary.stale_removed} temporary file(s) a stopped run left behind",
            highlight=False,
        )
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
@task_options(CleanOptions, batch=True)
def batch_clean(
    source: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    out: Path = _out_option(),
    options: dict = None,  # type: ignore[assignment] - clean's own flags, see task_options
    denoiser: str | None = typer.Option(None, "--denoiser", "-d", hidden=True),
    fmt: str | None = typer.Option(
        None, "--format", help="wav, flac, ogg or mp3 (default: as input)."
    ),
    workers: int | None = _workers_option(),
    runner: str = _runner_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Denoise every audio file (the options are `voicebox clean`'s, strength in dB)."""
    engine = options.get("engine")
    if denoiser is not None:
        if engine is not None and engine != denoiser:
            raise InputError("give the denoiser once: --engine (--denoiser is its old name)")
        err.print(f"note: --denoiser {denoiser} is now --engine {denoiser}", highlight=False)
        options["engine"] = denoiser
    if engine in RUNNERS:  # the old `batch clean --engine ray` meant the runner
        runner = _runner(runner, options.pop("engine"))
    CleanOptions.from_mapping(options)  # refused before any work, not once per file
    _run("clean", source, out, {**options, "format": fmt}, workers, runner, address, quiet)


@batch_app.command("read", epilog=MANIFEST_NOTE + " For read, a 'text' column gives the words.")
@task_options(ReadOptions, batch=True)
def batch_read(
    source: str = typer.Argument(
        ..., metavar="INPUT", help="Folder or glob of .txt files, or a manifest with a text column."
    ),
    out: Path = _out_option(),
    options: dict = None,  # type: ignore[assignment] - read's own flags, see task_options
    fmt: str | None = typer.Option(None, "--format", help="Output format (default wav)."),
    workers: int | None = _workers_option(),
    runner: str = _runner_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    old_runner: str | None = _old_runner_option(),
) -> None:
    """Read every text aloud."""
    runner = _runner(runner, old_runner)
    ReadOptions.from_mapping(options)
    _run("read", source, out, {**options, "format": fmt}, workers, runner, address, quiet)


@batch_app.command("transcribe", epilog=MANIFEST_NOTE)
@task_options(TranscribeOptions, batch=True)
def batch_transcribe(
    source: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    out: Path = _out_option(),
    options: dict = None,  # type: ignore[assignment] - transcribe's own flags, see task_options
    fmt: str | None = typer.Option(None, "--format", help="json (default), txt, srt or vtt."),
    workers: int | None = _workers_option(),
    runner: str = _runner_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    old_runner: str | None = _old_runner_option(),
) -> None:
    """Transcribe every audio file with word times (language detected unless given)."""
    runner = _runner(runner, old_runner)
    _run("transcribe", source, out, {**options, "format": fmt}, workers, runner, address, quiet)


EDIT_OWN = ("replace", "delete", "insert_after", "transcript", "engine", "exclude_voices")
"""EditOptions batch edit declares itself: 'old=>new' pairs, the per-item transcript (a manifest
column), --engine (shared with the runner's old spelling) and the library-only exclude_voices."""


@batch_app.command("edit", epilog=MANIFEST_NOTE + " Edit columns: replace, delete, insert_after.")
@task_options(EditOptions, batch=True, exclude=EDIT_OWN)
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
    options: dict = None,  # type: ignore[assignment] - edit's own flags, see task_options
    fmt: str | None = typer.Option(None, "--format", help="Output format (default: as input)."),
    consent: str | None = EDIT_CONSENT[0],
    consent_file: Path | None = EDIT_CONSENT[1],
    consent_audio: Path | None = EDIT_CONSENT[2],
    workers: int | None = _workers_option(),
    runner: str = _runner_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    old_runner: str | None = _old_runner_option(),
) -> None:
    """Apply the same (or per-item manifest) word edits to every recording.

    Our model speaks the new words in each recorded voice when the speaker's consent is given
    (--consent, --consent-file, or manifest columns of those names; recorded in the ledger and
    beside each output) or `--engine voicebox` asks for it; else the nearest bundled voice.
    """
    edit_engine = old_runner if old_runner in EDIT_ENGINES else None
    runner = _runner(runner, None if edit_engine else old_runner)
    options.update(
        replace=_pairs(replace, "--replace"),
        delete=list(delete or []),
        insert_after=_pairs(insert_after, "--insert-after"),
    )
    if edit_engine is not None:
        options["engine"] = edit_engine
    EditOptions.from_mapping(options)  # refused before any work; a manifest may add the edits
    options = {**options, "format": fmt, **_consent_values(consent, consent_file, consent_audio)}
    _run("edit", source, out, options, workers, runner, address, quiet)


@batch_app.command(
    "read-like",
    epilog=MANIFEST_NOTE + " For read-like, a 'text' column gives the words and a 'reference' "
    "column the voice (relative to the manifest).",
)
@task_options(ReadLikeOptions, batch=True)
def batch_read_like(
    source: str = typer.Argument(
        ..., metavar="INPUT", help="Folder or glob of .txt files, or a manifest with a text column."
    ),
    out: Path = _out_option(),
    reference: Path | None = typer.Option(
        None,
        "--like",
        "--reference",
        help="Read in the voice of this 3-10 s recording (a manifest's 'reference' column "
        "overrides it per item).",
    ),
    options: dict = None,  # type: ignore[assignment] - read_like's own flags, see task_options
    fmt: str | None = typer.Option(None, "--format", help="Output format (default wav)."),
    consent: str | None = LIKE_CONSENT[0],
    consent_file: Path | None = LIKE_CONSENT[1],
    consent_audio: Path | None = LIKE_CONSENT[2],
    workers: int | None = _workers_option(),
    runner: str = _runner_option(),
    address: str | None = _address_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Read every text in the voice of a recording (English: our Voicebox model; other languages:
    their nearest native voice re-voiced), as `voicebox read --like` does for one.

    Speaking in a person's voice needs their consent (--consent, --consent-file, or manifest
    columns of those names): the batch is refused before any work without it, and each output
    gets `<output>.provenance.json` with the ledger's record.
    """
    ReadLikeOptions.from_mapping(options)  # refused before any work, not once per file
    options = {
        **options,
        "format": fmt,
        "reference": str(reference.resolve()) if reference else None,
        **_consent_values(consent, consent_file, consent_audio),
    }
    _run("read_like", source, out, options, workers, runner, address, quiet)
