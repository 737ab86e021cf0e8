"""The server's view of the library: tasks imported lazily, so a missing one answers 503, not a crash."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from ..audio import Audio
from ..errors import NotReadyError
from ..progress import Progress

# OpenAI's voice names, mapped to the bundled voice that fits each best (see ENGINES.md).
OPENAI_VOICES: dict[str, str] = {
    "alloy": "piper_joe",
    "ash": "jm_kumo",
    "ballad": "jf_gongitsune",
    "coral": "jf_alpha",
    "echo": "jm_kumo",
    "fable": "jf_gongitsune",
    "nova": "jf_nezumi",
    "onyx": "piper_joe",
    "sage": "jf_tebukuro",
    "shimmer": "jf_tebukuro",
    "verse": "jm_kumo",
}


def task(module: str, attr: str) -> Callable[..., Any]:
    """`voicebox.tasks.<module>.<attr>`, or NotReadyError when that task is not in this build yet."""
    name = f"voicebox.tasks.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise NotReadyError(
                f"the '{module}' task is not available in this build yet ({name} is missing)"
            ) from None
        raise
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise NotReadyError(f"the '{module}' task has no {attr}() yet") from None


def _reading(
    voice: str | None,
    blend: dict[str, float] | None,
    speed: float,
    pitch: float,
    lang: str | None,
    progress: Progress,
) -> dict[str, object]:
    """Keyword arguments for the read task; a blend replaces the voice."""
    return {
        "voice": None if blend else voice,
        "blend": blend,
        "speed": speed,
        "pitch": pitch,
        "lang": lang,
        "progress": progress,
    }


class Backend:
    """Calls the library's tasks; tests swap in their own to exercise the HTTP layer alone."""

    def voice_id(self, name: str | None) -> str | None:
        """Our voice id for an OpenAI voice name or one of ours (None keeps the task's default)."""
        if name is None or name == "":
            return None
        return OPENAI_VOICES.get(name.lower(), name)

    def voices(self) -> list[dict]:
        """Every voice a request may name, as JSON-ready dicts."""
        found = task("read", "voices")()
        out = []
        for v in found:
            if isinstance(v, str):
                out.append({"id": v})
            elif isinstance(v, dict):
                out.append(v)
            else:
                out.append(
                    {
                        k: getattr(v, k)
                        for k in ("id", "lang", "gender", "engine", "description", "languages")
                        if hasattr(v, k)
                    }
                )
        return out

    def speech(
        self,
        text: str,
        voice: str | None,
        blend: dict[str, float] | None,
        speed: float,
        pitch: float,
        lang: str | None,
        progress: Progress,
    ) -> Audio:
        """Read `text` aloud in one piece."""
        read = task("read", "read")
        return read(text, **_reading(voice, blend, speed, pitch, lang, progress)).audio

    def speech_stream(
        self,
        text: str,
        voice: str | None,
        blend: dict[str, float] | None,
        speed: float,
        pitch: float,
        lang: str | None,
        progress: Progress,
    ) -> Iterator[Audio]:
        """Read `text` aloud sentence by sentence, yielding each sentence's audio as it finishes."""
        read_stream = task("read", "read_stream")
        for chunk in read_stream(text, **_reading(voice, blend, speed, pitch, lang, progress)):
            yield chunk[0] if isinstance(chunk, tuple) else chunk

    def clean(
        self,
        audio: Audio,
        engine: str,
        strength: float | None,
        dehum: bool,
        loudness: float | None,
        progress: Progress,
    ) -> Audio:
        """Remove noise (and hum) from speech."""
        clean = task("clean", "clean")
        return clean(
            audio,
            engine=engine,
            strength=strength,
            dehum=dehum,
            loudness=loudness,
            progress=progress,
        )

    def transcribe(self, audio: Audio, progress: Progress) -> Any:  # noqa: ANN401 - a Transcript
        """Words and times; the returned object has to_dict() and render(fmt)."""
        return task("transcribe", "transcribe")(audio, progress=progress)

    def edit(self, audio: Audio, params: Any, progress: Progress) -> Any:  # noqa: ANN401
        """Change what was said (params: server.work.EditParams); returns an EditResult."""
        edit = task("edit", "edit")
        source = None
        if params.source is not None:
            source = task("transcribe", "Transcript").from_dict(params.source)
        voice = params.voice
        if isinstance(voice, str):
            voice = self.voice_id(voice)
        return edit(
            audio,
            replace=[tuple(p) for p in params.replace],
            delete=list(params.delete),
            insert_after=[tuple(p) for p in params.insert_after],
            transcript=params.transcript,
            occurrence=params.occurrence,
            plan_only=params.plan_only,
            engine=params.engine,
            voice=voice,
            source=source,
            progress=progress,
        )
