"""`voicebox` command line: a thin layer over the task layer (voicebox.tasks), whose options
declarations (voicebox.tasks.options) its flags are built from."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from typing import TextIO

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from ..errors import VoiceboxError  # noqa: E402
from .app import app, err  # noqa: E402

# One module per command registers its sub-commands on `app` as it is imported (in help order).
# isort: off
from . import clean, read, transcribe, edit  # noqa: E402, F401
from . import demo, model, data, serve, batch, detect  # noqa: E402, F401
# isort: on


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so atomic writers remove their temporary files."""
    raise KeyboardInterrupt


_shown: set[str] = set()


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Our VoiceboxWarnings as one `warning:` line each (once); other warnings as Python shows them."""
    from ..errors import VoiceboxWarning

    if not issubclass(category, VoiceboxWarning):
        _python_showwarning(message, category, filename, lineno, file, line)
        return
    text = str(message)
    if text not in _shown:
        _shown.add(text)
        err.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


_python_showwarning = warnings.showwarning


def main() -> None:
    """Entry point: run the app, turning our errors into one line on stderr and an exit code."""
    signal.signal(signal.SIGTERM, _terminate)
    warnings.showwarning = _show_warning
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except VoiceboxError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:  # a file operation outside our checks: one line, as an input error
        from ..audio import os_error_message

        where = exc.filename if exc.filename is not None else "."
        err.print(
            f"[red]error:[/red] {os_error_message(exc, where)}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except SystemExit:
        raise
    except Exception as exc:  # last resort: never a traceback for the user, but say what broke
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        if os.environ.get("VOICEBOX_DEBUG"):
            raise
        sys.exit(1)
