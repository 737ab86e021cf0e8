"""`voicebox` command line: a thin layer over the library API in voicebox.api."""

from __future__ import annotations

import importlib
import os
import signal
import sys

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from ..errors import VoiceboxError  # noqa: E402
from .app import app, err  # noqa: E402

# One module per task registers its sub-commands on `app`; a missing one is simply not offered.
COMMAND_MODULES = [
    "clean",
    "read",
    "transcribe",
    "edit",
    "demo",
    "model",
    "data",
    "serve",
    "batch",
    "detect",
]
for _name in COMMAND_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_name}":
            raise


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so atomic writers remove their temporary files."""
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: run the app, turning our errors into one line on stderr and an exit code."""
    signal.signal(signal.SIGTERM, _terminate)
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
