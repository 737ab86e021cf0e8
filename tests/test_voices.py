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
