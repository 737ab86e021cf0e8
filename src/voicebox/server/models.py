"""`GET /v1/models`: the model ids the audio routes accept, in OpenAI's list shape.

OpenAI clients (and tools built on them) list models before they call; every id here is one a
request may name: the speech ids all read with the bundled voices, the transcription id is the
bundled whisper recogniser.
"""

from __future__ import annotations

import os

from .. import __file__ as _package_file

SPEECH_MODELS = ("voicebox", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""Ids /v1/audio/speech accepts; all read with the bundled voices."""
TRANSCRIPTION_MODELS = ("whisper-1",)
"""Ids /v1/audio/transcriptions accepts; the bundled whisper recogniser."""
OWNER = "voicebox"


def _created() -> int:
    """When this installation was made (Unix seconds): the models ship inside it."""
    try:
        return int(os.stat(_package_file).st_mtime)
    except OSError:
        return 0


def model_card(model_id: str) -> dict | None:
    """One model in OpenAI's shape, or None when no route accepts that id."""
    if model_id not in SPEECH_MODELS + TRANSCRIPTION_MODELS:
        return None
    return {"id": model_id, "object": "model", "created": _created(), "owned_by": OWNER}


def model_list() -> dict:
    """Every model id, as OpenAI's GET /v1/models answers."""
    cards = [model_card(m) for m in SPEECH_MODELS + TRANSCRIPTION_MODELS]
    return {"object": "list", "data": [c for c in cards if c is not None]}
