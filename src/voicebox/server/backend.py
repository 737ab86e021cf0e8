"""The server's view of the library: tasks imported lazily, so a missing one answers 503, not a crash."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from ..audio import Audio
from ..errors import NotReadyError
from ..progress import Progress


def _openai_voices() -> dict[str, str]:
    """OpenAI's voice names mapped to the best-measured voices of their gender (tasks/read.py)."""
    try:
        from ..tasks.read import openai_voices
    except ImportError:  # a build without the read task: no aliases, requests fail with 503
        return {}
    return openai_voices()


OPENAI_VOICES: dict[str, str] = _openai_voices()


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


_library = task  # for methods whose `task` argument shadows the function


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

    def captioned(
        self,
        text: str,
        voice: str | None,
        blend: dict[str, float] | None,
        speed: float,
        pitch: float,
        lang: str | None,
        progress: Progress,
    ) -> tuple[Audio, list[dict]]:
        """Read `text` aloud in one piece with each word's times: (audio, [{word, start, end}])."""
        read = task("read", "read")
        speech = read(text, **_reading(voice, blend, speed, pitch, lang, progress))
        words = [{"word": w.text, "start": w.start, "end": w.end} for w in speech.words]
        return speech.audio, words

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

    def transcribe(
        self,
        audio: Audio,
        progress: Progress,
        language: str | None = None,
        task: str = "transcribe",
    ) -> Any:  # noqa: ANN401 - a Transcript
        """Words and times (language None: detected; task "translate": English text); the
        returned object has to_dict() and render(fmt)."""
        run = _library("transcribe", "transcribe")
        return run(audio, progress=progress, language=language, task=task)

    def edit(
        self,
        audio: Audio,
        params: Any,  # noqa: ANN401
        progress: Progress,
        consent: Any = None,  # noqa: ANN401 - a provenance.Consent
    ) -> Any:  # noqa: ANN401
        """Change what was said (params: server.work.EditParams); returns an EditResult.
        `consent` is the speaker's, required by the task when engine is voicebox."""
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
            consent=consent,
        )
