"""The typer application shared by every sub-command, and the helpers they all use."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..progress import Progress as ProgressFn
from ..progress import known_total, silent

app = typer.Typer(
    name="voicebox",
    help="Offline speech studio: clean, read, transcribe, edit and clone speech.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


class _AmountColumn(ProgressColumn):
    """'12/40 s' (or '12 s' while the total is unknown); never formats a missing total."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = "" if unit == "items" else f" {unit}"

    def render(self, task: Task) -> Text:
        """The amount done, and of how much when that is known."""
        done = f"{task.completed:.0f}"
        if task.total is None:
            return Text(f"{done}{self.unit}", style="progress.download")
        total = f"{task.total:.0f}"
        return Text(f"{done:>{len(total)}}/{total}{self.unit}", style="progress.download")


class _EtaColumn(TimeRemainingColumn):
    """'ETA 0:00:12' once the total is known; nothing while it is not."""

    def render(self, task: Task) -> Text:
        """The estimated time left, labelled."""
        if task.total is None:
            return Text("")
        return Text.assemble("ETA ", super().render(task))


@contextlib.contextmanager
def progress_bar(
    description: str, unit: str = "s", enabled: bool = True, total: float | None = None
) -> Iterator[ProgressFn]:
    """A rich progress bar with ETA on stderr when it is a terminal; yields the callback that
    advances it. A total of 0 or None means "not known yet": the bar pulses and shows the count."""
    if not enabled or not sys.stderr.isatty() and not _force_progress():
        yield silent
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _AmountColumn(unit),
        TimeElapsedColumn(),
        _EtaColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=known_total(total))
        shown = -1

        def update(done: float, total: float) -> None:
            nonlocal shown
            size = known_total(total)
            done = max(0.0, float(done)) if done == done else 0.0
            if size is not None:
                done = min(done, size)
            # Redraw at once on every new whole percent (or count), so short jobs still show motion.
            step = int(100 * done / size) if size else int(done)
            bar.update(task, completed=done, total=size, refresh=step != shown)
            shown = step

        yield update


def _force_progress() -> bool:
    from ..config import env

    return env("progress", "") == "1"
