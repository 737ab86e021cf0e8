"""`voicebox train` and `voicebox infill`: train the Voicebox model parts and fill speech from text."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import InputError
from ..model.config import DURATION_SCALE, GUIDANCE
from .app import app, err, progress_bar


@app.command()
def train(
    config: Path = typer.Option(
        ..., "--config", help="Model config YAML (configs/small.yaml ...)."
    ),
    data: Path = typer.Option(..., "--data", help="Corpus folder (manifest.jsonl, wavs/, mels/)."),
    part: str = typer.Option("audio", "--part", help="Which network: audio, duration or vocoder."),
    out: Path = typer.Option(..., "--out", help="Checkpoint folder (resumed when it has a state)."),
    steps: int = typer.Option(0, "--steps", help="Stop after this many steps (0 = config total)."),
    total_steps: int = typer.Option(
        0, "--total-steps", help="Length of the LR schedule (0 = the config's total_steps)."
    ),
    threads: int = typer.Option(
        0, "--threads", help="Torch threads (0 = config / VOICEBOX_THREADS)."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming."),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Start a new run from these exported weights (e.g. checkpoints/small/audio.pt).",
    ),
    settings: list[str] = typer.Option(
        [],
        "--set",
        help="Change one config setting, e.g. --set train.vocoder.adversarial=true (repeatable).",
    ),
) -> None:
    """Train one model part; runs data-parallel unchanged under `torchrun --nproc_per_node N`."""
    from ..model.training.train import train as run_train

    summary = run_train(
        config,
        data,
        part,
        out,
        resume=not fresh,
        max_steps=steps or None,
        threads=threads or None,
        total_steps=total_steps or None,
        init=init,
        overrides=settings,
        echo=lambda line: err.print(line, highlight=False, soft_wrap=True),
    )
    if (
        os.environ.get("RANK", "0") == "0"
    ):  # under torchrun, one summary line rather than one per rank
        err.print(f"{summary['part']}: step {summary['step']}, checkpoints in {summary['out']}")


@app.command("train-adapter")
def train_adapter(
    out: Path = typer.Option(
        Path("checkpoints/small/hifigan_adapter.pt"), "--out", help="Adapter file to write."
    ),
    run: Path = typer.Option(
        Path("runs/hifigan-adapter"), "--run", help="Work folder (cached pairs, resumable state)."
    ),
    speech: Path | None = typer.Option(
        None, "--speech", help="Speech data folder (../shared/data/speech)."
    ),
    steps: int = typer.Option(16000, "--steps", help="Optimiser steps."),
    threads: int = typer.Option(2, "--threads", help="Torch threads."),
    workers: int = typer.Option(2, "--workers", help="Processes computing the feature pairs."),
) -> None:
    """Fit the HiFi-GAN mel adapter on the shared train_* speech (resumes an interrupted run)."""
    from ..model.training.adapter import fit_adapter, load_pairs, shuffled_files
    from ..model.training.augment import SHARED

    folder = speech or SHARED / "speech"
    if not folder.is_dir():
        raise InputError(f"{folder}: no speech data folder (see ../shared/data/README.md)")

    def echo(line: str) -> None:
        err.print(line, highlight=False, soft_wrap=True)

    with progress_bar("feature pairs", unit="clips") as bar:  # cached in RUN for a rerun
        pairs = load_pairs(shuffled_files(folder), run / "pairs.npz", workers, echo, bar)
    with progress_bar("fitting the adapter", unit="steps") as bar:
        meta = fit_adapter(pairs, run, out, steps=steps, threads=threads, echo=echo, progress=bar)
    echo(
        f"wrote {out}: held-out log-mel L1 {meta['held_out_l1']} "
        f"(fixed adapter {meta['held_out_l1_fixed_adapter']})"
    )


def _parse_mask(spec: list[str]) -> list[tuple[float, float]]:
    ranges = []
    for item in spec:
        try:
            start, end = (float(x) for x in item.split("-", 1))
        except ValueError:
            raise InputError(
                f"--mask wants START-END in seconds (e.g. 1.2-2.5), got {item!r}"
            ) from None
        ranges.append((start, end))
    return ranges


@app.command()
def infill(
    text: str = typer.Argument(..., help="Transcript of the whole output."),
    out: Path = typer.Option(..., "--out", "-o", help="Output audio file (.wav, .flac, ...)."),
    context: Path | None = typer.Option(None, "--context", help="Audio to keep and continue from."),
    context_text: str | None = typer.Option(None, "--context-text", help="Its transcript."),
    mask: list[str] = typer.Option([], "--mask", help="START-END seconds of the context to redo."),
    nfe: int = typer.Option(16, "--nfe", help="ODE function evaluations."),
    guidance: float = typer.Option(
        GUIDANCE, "--guidance", help="Classifier-free guidance strength."
    ),
    solver: str = typer.Option("midpoint", "--solver", help="euler or midpoint."),
    seed: int | None = typer.Option(None, "--seed", help="Fix the noise for repeatable output."),
    speed: float = typer.Option(1.0, "--speed", help="Speaking rate of generated phones."),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="Checkpoint name or folder."),
    consent: str | None = typer.Option(
        None, "--consent", help="With --context: the speaker's statement that they agree."
    ),
    consent_file: Path | None = typer.Option(
        None, "--consent-file", help="With --context: a text file holding that statement."
    ),
    consent_audio: Path | None = typer.Option(
        None, "--consent-audio", help="With --context: a clip of the speaker reading it (checked)."
    ),
) -> None:
    """Speak TEXT with the Voicebox model, keeping what it shares with --context outside --mask."""
    from .. import provenance
    from ..audio import load, save
    from ..model.sample import load_models
    from ..safety import refuse_overwrite
    from ..tasks.regenerate import infill as run_infill

    refuse_overwrite([out], [context, consent_file, consent_audio])
    record = None
    ctx = None
    if context is not None:  # speaking in the context's voice: the speaker's consent is needed
        granted = provenance.Consent(consent, consent_file, consent_audio)
        load_models(checkpoint)  # "not ready" before asking for consent
        provenance.check_consent(granted)
        ctx = load(context)
        record = provenance.grant(granted, ctx)
    elif (consent or consent_file or consent_audio) is not None:
        raise InputError("--consent, --consent-file and --consent-audio go with --context")
    audio = run_infill(
        text,
        ctx,
        _parse_mask(mask) or None,
        nfe=nfe,
        guidance=guidance,
        solver=solver,
        seed=seed,
        context_text=context_text,
        duration_scale=DURATION_SCALE / speed if speed > 0 else 0.0,
        checkpoint_name=checkpoint,
        consent=record,
    )
    path = save(audio, out)
    if record is not None:
        provenance.write_sidecar(path, record)
    err.print(f"wrote {path} ({audio.duration:.2f} s)")
