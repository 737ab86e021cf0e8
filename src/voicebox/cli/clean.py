"""`voicebox clean`: remove noise and hum from speech files, one file or whole folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..audio import READ_EXTS
from ..errors import AudioError, InputError, VoiceboxError
from ..model.config import GUIDANCE
from ..tasks.options import CleanOptions
from .app import app, err, progress_bar, task_options

if TYPE_CHECKING:
    from ..provenance import Consent


def _collect(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(file, name relative to the output folder) for every input file and audio file in input
    folders (found as batch finds them: audio.READ_EXTS, hidden names skipped)."""
    from ..batch.manifest import scan

    found: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            files = sorted(scan(item, set(READ_EXTS)))
            if not files:
                raise InputError(f"{item}: folder holds no audio files")
            found += [(p, Path(item.name) / p.relative_to(item)) for p in files]
        else:
            found.append((item, Path(item.name)))
    return found


def _plan(inputs: list[Path], out: Path) -> list[tuple[Path, Path]]:
    """Pair each input with its output path: file → file, or many → mirrored names in a folder,
    named by batch's planner (batch.manifest.name_outputs; a second `a.wav` becomes `a-1.wav`)."""
    from ..batch.manifest import Item, name_outputs

    single_file = len(inputs) == 1 and not inputs[0].is_dir()
    if single_file and not out.is_dir() and out.suffix:
        return [(inputs[0], out)]
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; give a folder for several inputs")
    if out.suffix.lower() in READ_EXTS:
        if inputs[0].is_dir():
            raise InputError(f"{inputs[0]}: is a folder; -o must be an output folder, not a file")
        raise InputError(f"{out}: several inputs need -o to be an output folder, not a file")
    items = [Item(rel.as_posix(), str(src)) for src, rel in _collect(inputs)]
    return [(Path(i.source or ""), out / i.output) for i in name_outputs("clean", items, first=1)]


def _check_not_input(plan: list[tuple[Path, Path]]) -> None:
    """No output may be any input (same file by inode: symlinks and hard links count)."""
    from ..safety import refuse_overwrite

    refuse_overwrite([dst for _, dst in plan], [src for src, _ in plan])


def _summary(report: dict) -> str:
    line = (
        f"cleaned {report['src']} → {report['dst']}: {report['duration']:.1f} s "
        f"in {report['seconds']:.1f} s (RTF {report['rtf']:.3f})"
    )
    if report.get("hum_hz"):
        line += f", hum {report['hum_hz'][0]:.0f} Hz notched"
    if report.get("loudness") is not None and report.get("true_peak") is not None:
        line += (
            f", loudness {report['loudness']:.1f} LUFS, true peak {report['true_peak']:.1f} dBTP"
        )
        asked = report.get("loudness_target")
        if asked is not None and abs(report["loudness"] - asked) > 0.5:
            line += f" (short of the asked {asked:g} LUFS: the -1 dBTP ceiling held it back)"
    if report.get("dnsmos_before") and report.get("dnsmos_after"):
        line += (
            f", DNSMOS OVRL {report['dnsmos_before']['ovrl']:.2f}"
            f" → {report['dnsmos_after']['ovrl']:.2f}"
        )
    if report.get("guard") not in (None, "kept"):
        line += f"; guard: {report['guard']} (full strength scored below the input)"
    return line


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioError(f"{folder}: cannot create output folder ({exc.strerror})") from None


@app.command()
@task_options(CleanOptions)
def clean(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders to clean."),
    out: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Output file (one input) or folder (several inputs or a folder).",
    ),
    options: CleanOptions = None,  # type: ignore[assignment] - the task's flags, see task_options
    score: bool = typer.Option(False, "--score", help="Rate input and output with DNSMOS."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    infill: str | None = typer.Option(
        None,
        "--infill",
        help="Regenerate START-END seconds (e.g. 1.2-2.5) ruined by a transient noise with the "
        "Voicebox model instead of denoising; samples outside the span stay as they are.",
    ),
    text: str | None = typer.Option(
        None, "--text", help="With --infill: the words said in the span (default: whisper's guess)."
    ),
    nfe: int = typer.Option(16, "--nfe", help="With --infill: model steps (more = slower, finer)."),
    guidance: float = typer.Option(
        GUIDANCE, "--guidance", help="With --infill: guidance strength."
    ),
    seed: int | None = typer.Option(None, "--seed", help="With --infill: fix the random seed."),
    consent: str | None = typer.Option(
        None, "--consent", help="With --infill: the speaker's statement that they agree."
    ),
    consent_file: Path | None = typer.Option(
        None, "--consent-file", help="With --infill: a text file holding that statement."
    ),
    consent_audio: Path | None = typer.Option(
        None, "--consent-audio", help="With --infill: a clip of the speaker reading it (checked)."
    ),
) -> None:
    """Remove background noise (and optionally hum) from speech; keeps rate, channels and length."""
    from ..audio import missing

    for item in inputs:
        if not item.exists():
            raise InputError(missing(item))  # names a symlink loop or a broken link as such
    if infill is not None:
        from ..provenance import Consent

        consent_of = Consent(consent, consent_file, consent_audio)
        _infill(inputs, out, infill, text, nfe, guidance, seed, as_json, consent_of)
        return
    if consent is not None or consent_file is not None or consent_audio is not None:
        raise InputError("--consent, --consent-file and --consent-audio go with --infill")
    if text is not None:
        raise InputError("--text goes with --infill START-END")
    single = len(inputs) == 1 and not inputs[0].is_dir()
    plan = _plan(inputs, out)
    _check_not_input(plan)
    reports, failures = _clean_all(plan, out, options, score, as_json)
    if as_json:
        sys.stdout.write(json.dumps(reports[0] if single else reports, indent=2) + "\n")
        sys.stdout.flush()
    if failures:
        raise typer.Exit(code=1)


def _clean_all(
    plan: list[tuple[Path, Path]], out: Path, options: CleanOptions, score: bool, as_json: bool
) -> tuple[list[dict], int]:
    """Clean every (input, output) pair with a progress bar each; one failure among several is
    reported and the rest go on. Returns the reports and the number of failures."""
    from ..tasks.clean import clean_file

    folder_mode = len(plan) > 1 or plan[0][1] != out
    reports, failures = [], 0
    for src, dst in plan:
        try:
            if folder_mode:
                _make_folder(dst.parent)
            with progress_bar(f"cleaning {src.name}", unit="s") as progress:
                report = clean_file(
                    src, dst, **options.to_dict(), score=score, progress=progress
                ).to_dict()
        except VoiceboxError as exc:
            if len(plan) == 1:
                raise
            failures += 1
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            continue
        reports.append(report)
        if not as_json:
            err.print(_summary(report), highlight=False, soft_wrap=True)
            if dst.suffix.lower() != src.suffix.lower() and dst != out:  # a name we derived
                kind = src.suffix.lower().lstrip(".")
                err.print(f"note: clean cannot write {kind}; wrote WAV to {dst}", highlight=False)
    return reports, failures


def _infill(
    inputs: list[Path],
    out: Path,
    span: str,
    text: str | None,
    nfe: int,
    guidance: float,
    seed: int | None,
    as_json: bool,
    consent: Consent | None = None,
) -> None:
    """`clean IN --infill START-END`: one file, one span regenerated by the Voicebox model."""
    from ..tasks.clean import infill_file, parse_span

    if len(inputs) != 1 or inputs[0].is_dir():
        raise InputError("--infill works on one audio file at a time")
    start, end = parse_span(span)
    with progress_bar(f"regenerating {start:g}-{end:g} s of {inputs[0].name}", unit="s"):
        report = infill_file(inputs[0], out, start, end, text, nfe, guidance, seed, consent=consent)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        sys.stdout.flush()
    else:
        err.print(
            f"{report['src']} -> {report['dst']}: regenerated {start:g}-{end:g} s with the "
            f"voicebox model in {report['seconds']:.1f} s",
            highlight=False,
            soft_wrap=True,
        )
