"""The server's view of the library: the task layer (voicebox.tasks), imported on first use so
the server starts fast; tests swap in their own Backend to exercise the HTTP layer alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..audio import Audio
from ..errors import NotReadyError
from ..progress import Progress
from ..tasks.options import CleanOptions, EditOptions


@contextlib.contextmanager
def available(task: str) -> Iterator[None]:
    """Around a plain import of `voicebox.tasks.<task>`: a build without that task answers
    NotReadyError (503), not a crash."""
    name = f"voicebox.tasks.{task}"
    try:
        yield
    except ImportError as exc:
        if exc.name != name:
            raise
        raise NotReadyError(
            f"the '{task}' task is not available in this build yet ({name} is missing)"
        ) from None


def _openai_voices() -> dict[str, str]:
    """OpenAI's voice names mapped to the best-measured voices of their gender (tasks/read.py)."""
    try:
        with available("read"):
            from ..tasks.read import openai_voices
    except NotReadyError:  # a build without the read task: no aliases, requests fail with 503
        return {}
    return openai_voices()


OPENAI_VOICES: dict[str, str] = _openai_voices()


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
        with available("read"):
            from ..tasks.read import voices

        found = voices()
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
        with available("read"):
            from ..tasks.read import read

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
        with available("read"):
            from ..tasks.read import read

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
        with available("read"):
            from ..tasks.read import read_stream

        for chunk in read_stream(text, **_reading(voice, blend, speed, pitch, lang, progress)):
            yield chunk[0] if isinstance(chunk, tuple) else chunk

    def clean(self, audio: Audio, options: CleanOptions, progress: Progress) -> Audio:
        """Remove noise (and hum) from speech, with the request's clean options."""
        with available("clean"):
            from ..tasks.clean import clean

        return clean(audio, **options.to_dict(), progress=progress)

    def transcribe(
        self,
        audio: Audio,
        progress: Progress,
        language: str | None = None,
        task: str = "transcribe",
    ) -> Any:  # noqa: ANN401 - a Transcript
        """Words and times (language None: detected; task "translate": English text); the
        returned object has to_dict() and render(fmt)."""
        with available("transcribe"):
            from ..tasks.transcribe import transcribe

        return transcribe(audio, progress=progress, language=language, task=task)

    def clone_language(self, text: str, lang: str | None) -> str:
        """The language `text` is read in with a recording's voice (InputError when none can
        read it), and NotReadyError when it is English and no model is trained: both cheap, so
        asked before a request is accepted."""
        with available("crosslingual"):
            from ..tasks.crosslingual import route_language

        target = route_language(text, lang)
        if target == "en":
            from ..model.checkpoint import find

            find(None, "audio")
        return target

    def clone(
        self,
        text: str,
        reference: Audio,
        options: dict[str, Any],
        progress: Progress,
        consent: Any,  # noqa: ANN401 - a provenance.Consent
    ) -> Any:  # noqa: ANN401 - a tasks.read.Speech
        """Read `text` in `reference`'s voice (read_like with a ReadLikeOptions' fields:
        reference_text, lang, seed, nfe, guidance); the Speech carries the consent record."""
        with available("read"):
            from ..tasks.read import read_like

        return read_like(text, reference, progress=progress, consent=consent, **options)

    def edit(
        self,
        audio: Audio,
        params: Any,  # noqa: ANN401
        progress: Progress,
        consent: Any = None,  # noqa: ANN401 - a provenance.Consent
    ) -> Any:  # noqa: ANN401
        """Change what was said (params: server.work.EditParams); returns an EditResult.
        `consent` is the speaker's, required by the task when engine is voicebox."""
        with available("edit"):
            from ..tasks.edit import edit
        with available("transcribe"):
            from ..tasks.transcribe import Transcript

        source = None
        if params.source is not None:
            source = Transcript.from_dict(params.source)
        options = EditOptions.from_mapping(params.model_dump(include=set(EditOptions.names())))
        voice = options.voice
        if isinstance(voice, str):
            voice = self.voice_id(voice)
        return edit(
            audio,
            options,
            voice=voice,
            plan_only=params.plan_only,
            source=source,
            progress=progress,
            consent=consent,
        )
