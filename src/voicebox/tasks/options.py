"""Each task's options, declared once: the CLI flags, the server's request fields and batch's
manifest columns are all built from these dataclasses (see voicebox.options).

They live in one light module beside the tasks, not inside each task's module, so the CLI can
build its flags at start-up without importing the tasks' signal and model code; each task module
re-exports its own (`tasks.clean.CleanOptions`) and takes the same names as keyword arguments.
Adding an option is a field here and its use in the task: two files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..engines import denoise
from ..errors import InputError
from ..model.config import GUIDANCE
from ..options import TaskOptions, option

MIN_SPEED, MAX_SPEED = 0.25, 4.0
"""What engines.tts can be made to do (tests check the two agree)."""
MAX_PITCH = 12.0
"""Semitones either way (tasks.read.MAX_PITCH)."""


@dataclass(frozen=True)
class CleanOptions(TaskOptions):
    """How to clean. Strength is in dB everywhere: the most noise removed (CLI, server, batch)."""

    engine: str = option("dfn3", "dfn3 (best), rnnoise or gate.", flags=("-e",))
    strength: float | None = option(
        None,
        "Most noise to remove, in dB (default: 24 for dfn3, 12 for rnnoise and gate).",
        unit="dB",
        ge=0.0,
    )
    dehum: bool = option(False, "Detect and notch 50/60 Hz mains hum.")
    loudness: float | None = option(
        None,
        "Normalise to this EBU R128 loudness in LUFS (e.g. -16).",
        what="loudness target",
        unit="LUFS",
        ge=-70.0,
        le=0.0,
    )
    guard: bool = option(
        True, "Never worse than the input: redo softer, or keep the input, if DNSMOS drops."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        denoise.check_engine(self.engine)

    @property
    def strength_db(self) -> float:
        """The strength to use: as asked, else the engine's default."""
        return denoise.DEFAULT_STRENGTH[self.engine] if self.strength is None else self.strength


@dataclass(frozen=True)
class ReadOptions(TaskOptions):
    """How to read text aloud with the bundled voices (`read`, `read_stream`)."""

    voice: str | None = option(
        None,
        "Voice id from `voicebox voices`, an OpenAI name (alloy, echo, ...) or a blend "
        "'a(2)+b(1)' (default: the best measured voice for the text's language).",
        flags=("-v",),
    )
    blend: str | dict[str, float] | None = option(
        None,
        "Mix Kokoro voices: 'jf_alpha:0.6,jm_kumo:0.4' or 'jf_alpha(3)+jm_kumo(2)'.",
        cli_type=str,
        server_type=dict[str, float] | None,
    )
    speed: float = option(1.0, "Speaking rate (0.25-4).", ge=MIN_SPEED, le=MAX_SPEED)
    pitch: float = option(
        0.0, "Pitch shift in semitones (-12..12).", unit="semitones", ge=-MAX_PITCH, le=MAX_PITCH
    )
    lang: str | None = option(
        None, "Text language: en, ja, or any espeak-ng code (default: detected from the text)."
    )


@dataclass(frozen=True)
class ReadLikeOptions(TaskOptions):
    """How to read text in the voice of a reference recording (`read_like`): English by our
    model, another language by its nearest native voice re-voiced. The reference and the
    speaker's consent are the task's inputs, not options: each front end takes them itself."""

    reference_text: str | None = option(
        None, "Transcript of the reference recording (default: whisper's).", flags=("--ref-text",)
    )
    lang: str | None = option(
        None,
        "Text language: en (our model) or one a recording's voice can be re-voiced into, such "
        "as ja (default: detected from the text).",
    )
    seed: int | None = option(None, "Fix the result: the same seed reads the same way.", ge=0)
    speed: float = option(1.0, "Speaking rate (0.25-4).", ge=MIN_SPEED, le=MAX_SPEED)
    pitch: float = option(
        0.0, "Pitch shift in semitones (-12..12).", unit="semitones", ge=-MAX_PITCH, le=MAX_PITCH
    )
    nfe: int = option(16, "Model steps: fewer is faster, more is cleaner (8-32).", ge=1, le=64)
    guidance: float = option(GUIDANCE, "Classifier-free guidance strength.", ge=0.0, le=10.0)


@dataclass(frozen=True)
class TranscribeOptions(TaskOptions):
    """How to transcribe: the language spoken, and whether to translate it into English."""

    language: str | None = option(
        None,
        "What is spoken: a code (en, de, ja, ...) or name; default: detected, and refused "
        "when the detector is unsure.",
        flags=("-l",),
    )
    translate: bool = option(False, "Write an English translation instead of the words spoken.")

    @property
    def task(self) -> str:
        """whisper's task name: "translate" or "transcribe"."""
        return "translate" if self.translate else "transcribe"


EDIT_ENGINES = ("auto", "stock", "voicebox")
"""What speaks an edit's new words: our model in the recorded voice (voicebox), the bundled voice
nearest the speaker (stock), or auto: the model when the speaker's consent is given, else stock."""
MAX_NEW_CHARS = 1000
"""The most characters of new text one edit speaks."""


def check_speakable(text: str, what: str = "new text") -> str:
    """Refuse text with nothing to say (empty, only symbols) or absurdly long; returns it tidied."""
    text = " ".join(str(text).split())
    if not re.search(r"[^\W_]", text):
        raise InputError(f"{what} {text!r} has no words to speak")
    if len(text) > MAX_NEW_CHARS:
        raise InputError(f"{what} is {len(text)} characters; at most {MAX_NEW_CHARS} per edit")
    return text


@dataclass(frozen=True)
class EditOptions(TaskOptions):
    """What to change in a recording and what speaks the new words (`edit`, `edit_file`).

    The operations are phrases to replace, delete or insert after, or a whole edited transcript;
    each value is checked when made (speakable text, a known engine), and `require_ops` refuses
    an edit with nothing to do or both kinds at once. The phrase lists are repeatable two-value
    CLI flags, so the CLI declares those four itself; every other option comes from here."""

    replace: tuple[tuple[str, str], ...] = option(
        (), "Replace phrase OLD with NEW (repeatable).", server_type=list[tuple[str, str]]
    )
    delete: tuple[str, ...] = option((), "Delete a phrase (repeatable).", server_type=list[str])
    insert_after: tuple[tuple[str, str], ...] = option(
        (), "Insert NEW after PHRASE (repeatable).", server_type=list[tuple[str, str]]
    )
    transcript: str | None = option(
        None, "The full edited text; diffed word by word against the recording."
    )
    occurrence: int | None = option(
        None, "Which occurrence (1, 2, ...) when a phrase repeats.", ge=1
    )
    engine: str = option(
        "auto",
        "auto (our model in the speaker's own voice when their consent is given, else the nearest "
        "bundled voice), stock or voicebox.",
    )
    voice: str | dict[str, float] | None = option(
        None,
        "Speak new words with this voice (or blend) instead of the nearest match.",
        cli_type=str,
        server_type=str | dict[str, float] | None,
    )
    exclude_voices: tuple[str, ...] = option(
        (), "Bundled voices never matched to the speaker (the library's; no flag or field)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.engine not in EDIT_ENGINES:
            raise InputError(
                f"unknown engine '{self.engine}'; use one of {', '.join(EDIT_ENGINES)}"
            )
        # frozen: the lists (or None) a caller, request or manifest gives are kept as tuples
        tidy = object.__setattr__
        tidy(self, "replace", tuple((str(o), check_speakable(n)) for o, n in self.replace or ()))
        tidy(self, "delete", tuple(str(d) for d in self.delete or ()))
        tidy(
            self,
            "insert_after",
            tuple((str(p), check_speakable(n)) for p, n in self.insert_after or ()),
        )
        tidy(self, "exclude_voices", tuple(self.exclude_voices or ()))
        if self.transcript is not None:
            tidy(self, "transcript", check_speakable(self.transcript, "edited transcript"))

    @property
    def phrases(self) -> bool:
        """True when phrase operations (replace, delete, insert after) are given."""
        return bool(self.replace or self.delete or self.insert_after)

    def require_ops(self) -> EditOptions:
        """Refuse an edit with nothing to do, or with both phrases and a transcript; returns it.
        Kept apart from the per-value checks so that job-wide defaults (batch) may hold none."""
        if not (self.phrases or self.transcript is not None):
            raise InputError(
                "nothing to edit: give a phrase to replace, delete or insert after, "
                "or an edited transcript"
            )
        if self.transcript is not None and self.phrases:
            raise InputError(
                "use either an edited transcript or phrases to replace, delete or insert after"
            )
        return self
