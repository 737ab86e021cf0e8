"""The typer application shared by every sub-command, and the helpers they all use."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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

from ..options import Spec, TaskOptions, specs
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
F = TypeVar("F", bound=Callable[..., Any])


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


def task_options(
    cls: type[TaskOptions],
    *,
    batch: bool = False,
    exclude: tuple[str, ...] = (),
    into: str = "options",
) -> Callable[[F], F]:
    """Give a command one flag per field of the task's options dataclass, and hand the command
    the parsed, checked options as its `options` argument (like whisper's CLI passing its
    arguments into DecodingOptions). The flags, their defaults, help and bounds are the task's
    own declaration, so a new option shows up here with no edit.

    With `batch`, every flag defaults to "not given" (None): a manifest row's own value then
    decides, and the job state records only what was asked. `into` names the command's argument
    that takes them (a command can take two tasks' options, e.g. `read` and `read --like`)."""

    def decorate(command: F) -> F:
        own = inspect.signature(command)
        hints = typing.get_type_hints(command)
        declared = [s for s in specs(cls) if s.name not in exclude]
        names = list(own.parameters)
        at = names.index(into)  # the flags go where the command put its options argument
        params = [
            p.replace(annotation=hints.get(p.name, p.annotation)) for p in own.parameters.values()
        ]
        flags = [_flag(spec, batch) for spec in declared]
        params = params[:at] + flags + params[at + 1 :]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:  # noqa: ANN401 - whatever the command returns
            given = {s.name: kwargs.pop(s.name) for s in declared}
            if batch:
                return command(
                    **{into: {k: v for k, v in given.items() if v is not None}}, **kwargs
                )
            return command(**{into: cls(**given)}, **kwargs)

        run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        del run.__wrapped__  # typer reads the signature above, not the command's own
        return run  # type: ignore[return-value]

    return decorate


def _flag(spec: Spec, batch: bool) -> inspect.Parameter:
    """One typer option for a declared task option."""
    kind = spec.cli_type if spec.cli_type is not None else spec.base
    default = None if batch else spec.default
    names: list[str] = [spec.flag, *spec.flags]
    if kind is bool and (spec.default or batch):
        names[0] = f"{spec.flag}/--no-{spec.flag[2:]}"
    annotation: Any = kind | None if default is None else kind
    info = typer.Option(default, *names, help=spec.help, show_default=default is not None)
    return inspect.Parameter(
        spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=annotation
    )
