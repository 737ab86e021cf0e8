"""`voicebox edit`: replace, delete or insert words in a recording, or apply an edited transcript."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click
import typer
from typer.core import TyperCommand

from ..errors import InputError
from ..tasks.options import EditOptions
from .app import app, err, progress_bar, task_options


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the edited transcript ({exc})") from None


def _subtype(src: Path, out: Path) -> str | None:
    """Keep the input's sample format when writing the same container, so untouched samples stay exact."""
    from ..audio import subtype

    if src.suffix.lower() != out.suffix.lower():
        return None
    return subtype(src)


class _PairsCommand(TyperCommand):
    """Typer has no repeatable two-value options; give --replace/--insert-after nargs=2 here."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name in PAIR_OPTIONS:
                param.nargs = 2
                param.process_value = _pairs  # type: ignore[method-assign]


def _pairs(ctx: click.Context, value: object) -> list[tuple[str, str]]:
    """The raw (OLD, NEW) tuples click collected for a repeatable two-value option."""
    return [(str(a), str(b)) for a, b in (value or ())]  # type: ignore[union-attr]


PAIR_OPTIONS = ("replace", "insert_after")
OWN_FLAGS = ("replace", "delete", "insert_after", "transcript", "exclude_voices")
"""EditOptions this command declares itself: repeatable pairs, a transcript file (the task takes
its text), and a library-only option; the rest (--occurrence, --engine, --voice) are built."""


@app.command(cls=_PairsCommand)
@task_options(EditOptions, exclude=OWN_FLAGS)
def edit(
    path: Path = typer.Argument(..., help="Recording to edit (English speech)."),
    out: Path | None = typer.Option(None, "-o", "--output", help="Edited audio file."),
    replace: list[str] = typer.Option(
        [], "--replace", help="Replace phrase OLD with NEW (repeatable).", metavar="OLD NEW"
    ),
    delete: list[str] = typer.Option([], "--delete", help="Delete a phrase (repeatable)."),
    insert_after: list[str] = typer.Option(
        [], "--insert-after", help="Insert NEW after PHRASE (repeatable).", metavar="PHRASE NEW"
    ),
    transcript: Path | None = typer.Option(
        None,
        "--transcript",
        help="Text file with the edited full transcript (e.g. `voicebox transcribe -o` output, edited);"
        " words left as the recogniser heard them, or as they were really said, stay untouched.",
    ),
    options: EditOptions = None,  # type: ignore[assignment] - the task's flags, see task_options
    plan: bool = typer.Option(False, "--plan", help="Print the plan; write no audio."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    consent: str | None = typer.Option(
        None,
        "--consent",
        help="The speaker's statement that they agree: the model then speaks in their voice.",
    ),
    consent_file: Path | None = typer.Option(
        None, "--consent-file", help="A text file holding the speaker's consent statement."
    ),
    consent_audio: Path | None = typer.Option(
        None,
        "--consent-audio",
        help="A clip of the speaker reading the consent statement (checked).",
    ),
) -> None:
    """Edit what is said in a recording; untouched audio stays sample-exact."""
    from .. import provenance
    from ..audio import check_audio_output
    from ..safety import refuse_overwrite
    from ..tasks.edit import chosen_engine, edit_file

    if not plan and out is None:
        raise InputError("give -o OUT for the edited audio (or --plan to only see the plan)")
    refuse_overwrite([None if plan else out], [path, transcript, consent_file, consent_audio])
    if not plan and out is not None:
        check_audio_output(out)  # an unusable output is refused before any work, not after it
    edited = _read_text(transcript) if transcript is not None else None
    options = dataclasses.replace(
        options,
        replace=tuple(tuple(p) for p in replace),
        delete=tuple(delete),
        insert_after=tuple(tuple(p) for p in insert_after),
        transcript=edited,
    ).require_ops()  # refused before any work, in the words the server and batch use
    given = (consent or consent_file or consent_audio) is not None
    if options.engine == "stock" and given:
        raise InputError(
            "--consent, --consent-file and --consent-audio go with our model (--engine auto or "
            "voicebox); --engine stock speaks in a bundled voice"
        )
    engine = chosen_engine(options.engine, given)
    options = dataclasses.replace(options, engine=engine)
    granted = None
    if engine == "voicebox" and not plan:  # the model speaks in the recorded voice: a clone
        from ..model.checkpoint import find

        find(None, "audio")  # say "not ready" before asking for consent
        granted = provenance.Consent(consent, consent_file, consent_audio)
        provenance.check_consent(granted)  # the library records it once the edit is planned
    with progress_bar("editing", unit="steps") as progress:  # streamed: any length, bounded memory
        result = edit_file(
            path,
            None if plan else out,
            options,
            plan_only=plan,
            progress=progress,
            consent=granted,
            subtype=None if plan or out is None else _subtype(path, out),
        )
    if as_json:
        sys.stdout.write(json.dumps(result.plan.to_dict(), indent=2) + "\n")
    elif plan:
        sys.stdout.write(result.plan.describe() + "\n")
    else:  # the audio (and its consent sidecar when cloning) is written by now
        err.print(result.plan.describe(), highlight=False, soft_wrap=True)
