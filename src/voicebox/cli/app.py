"""The typer application shared by every sub-command, and the helpers they all use."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..progress import Progress as ProgressFn

app = typer.Typer(
    name="voicebox",
    help="Offline speech studio: clean, read, transcribe, edit and clone speech.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "s", enabled: bool = True) -> Iterator[ProgressFn]:
    """A rich progress bar with ETA on stderr; yields the callback that advances it."""
    if not enabled or not sys.stderr.isatty() and not _force_progress():
        yield lambda done, total: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn()
        if unit == "items"
        else TextColumn(f"{{task.completed:.0f}}/{{task.total:.0f}} {unit}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _force_progress() -> bool:
    from ..config import env

    return env("progress", "") == "1"
