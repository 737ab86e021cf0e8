"""`voicebox data synth|prepare`: build training corpora for the Voicebox model."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from .app import app, err, progress_bar

data_app = typer.Typer(help="Build training corpora (synthetic or from LJSpeech/LibriTTS folders).")
app.add_typer(data_app, name="data")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


@data_app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Corpus folder (created; resumed if it exists)."),
    hours: float = typer.Option(1.0, "--hours", help="Hours of audio to synthesise."),
    seed: int = typer.Option(0, "--seed", help="Seed for speakers, texts and augmentation."),
    workers: int = typer.Option(1, "--workers", help="Parallel synthesis processes."),
    augment: float = typer.Option(0.25, "--augment", help="Fraction with room/noise added."),
    speakers: int = typer.Option(40, "--speakers", help="Virtual training speakers."),
    held_out: int = typer.Option(4, "--held-out", help="Extra speakers kept out of training."),
) -> None:
    """Synthesise a multi-speaker aligned corpus from blends of the bundled voices."""
    from ..model.training.synth import synth

    _logging()
    with progress_bar("synthesising", unit="s") as progress:
        folder = synth(out, hours, seed, workers, augment, speakers, held_out, progress=progress)
    err.print(f"corpus ready: {folder}")


@data_app.command("build")
def build_cmd(
    out: Path = typer.Option(..., "--out", help="Corpus folder (created; resumed if it exists)."),
    speech: Path = typer.Option(
        None, "--speech", help="Speech data folder (../shared/data/speech)."
    ),
    workers: int = typer.Option(2, "--workers", help="Parallel processes."),
    bundled: int = typer.Option(24, "--bundled", help="Sentences per bundled voice (0 = none)."),
    pseudo: bool = typer.Option(
        True, "--pseudo/--no-pseudo", help="Add frequency-warped speakers."
    ),
    limit: int = typer.Option(0, "--limit", help="At most this many real utterances (0 = all)."),
) -> None:
    """Build the real-speech corpus from the shared train_* sets, bundled voices and warped copies."""
    from ..model.training.recipe import build

    _logging()
    with progress_bar("building", unit="items") as progress:
        folder = build(
            out, speech, workers, bundled, pseudo, limit=limit or None, progress=progress
        )
    err.print(f"corpus ready: {folder}")


@data_app.command("prepare")
def prepare_cmd(
    source: Path = typer.Argument(..., help="LJSpeech (metadata.csv + wavs/) or LibriTTS folder."),
    out: Path = typer.Option(..., "--out", help="Corpus folder to write."),
    limit: int = typer.Option(0, "--limit", help="At most this many utterances (0 = all)."),
) -> None:
    """Convert a real speech corpus to the training format: 16 kHz copies, alignments, mels."""
    from ..model.training.prepare import prepare

    _logging()
    with progress_bar("preparing", unit="items") as progress:
        folder = prepare(source, out, limit=limit or None, progress=progress)
    err.print(f"corpus ready: {folder}")
