"""`voicebox demo`: build a page that shows cleaning and reading, measured on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app, err, progress_bar


@app.command()
def demo(
    out: Path = typer.Option(
        Path("demo-out"), "--out", "-o", help="Folder to write the demo into."
    ),
) -> None:
    """Clean a noisy example and read a paragraph in several voices; write OUT/index.html."""
    from ..demo import run_demo

    with progress_bar("demo", unit="items") as progress:
        index = run_demo(out, progress=progress)
    err.print(f"wrote {index}")
