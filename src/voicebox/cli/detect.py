"""`voicebox detect`: does a file carry voicebox's provenance mark, where, and with what consent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import VoiceboxError
from .app import app, err


def _line(path: Path, found: dict[str, object]) -> str:
    """One human-readable line per file."""
    parts = [
        f"{path}: {found['verdict']} (confidence {found['confidence']:.2f}, z {found['score']})"
    ]
    payload = found.get("payload")
    if isinstance(payload, dict):
        mine = ", this install" if payload.get("this_install") else ""
        parts.append(
            f"payload v{payload['version']} generator {payload['generator']}{mine} "
            f"date {payload['date']}"
        )
    elif found["marked"]:
        parts.append("payload unreadable")
    if found.get("note"):
        parts.append(str(found["note"]))
    ranges = found.get("ranges") or []
    if ranges:
        parts.append("ranges " + " ".join(f"{a:.2f}-{b:.2f}s" for a, b in ranges))  # type: ignore[misc]
    consent = found.get("consent")
    if isinstance(consent, dict):
        where = "in this install's ledger" if consent.get("in_ledger") else "not in this ledger"
        parts.append(f"consent {consent.get('id')} {consent.get('time')} ({where})")
    return "; ".join(parts)


@app.command()
def detect(
    files: list[Path] = typer.Argument(..., help="Audio files (any format voicebox can read)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
) -> None:
    """Check files for voicebox's inaudible provenance mark: verdict, payload, time ranges, consent."""
    from ..provenance import detect as run

    results: list[dict[str, object]] = []
    failed = 0
    for path in files:
        try:
            found = run(path).to_dict()
        except VoiceboxError as exc:
            failed += 1
            found = {"source": str(path), "error": str(exc)}
            if not as_json:
                err.print(f"{path}: error: {exc}", highlight=False, soft_wrap=True)
        else:
            if not as_json:
                sys.stdout.write(_line(path, found) + "\n")
        results.append(found)
    if as_json:
        single = len(results) == 1
        sys.stdout.write(json.dumps(results[0] if single else results, indent=2) + "\n")
    sys.stdout.flush()
    if failed:
        raise typer.Exit(2)
