"""The official `openai` package against a real `voicebox serve` on loopback (real engines)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import soundfile as sf

from helpers import serving

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.slow  # a real `voicebox serve` subprocess with real engines

TOKEN = "sk-voicebox-test"
# Plain words whisper tiny.en hears reliably (Harvard sentences such as "birch canoe" it splits into other words).
SENTENCES = "The weather is warm and sunny today. We will walk to the park after lunch."


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """`voicebox serve` in a subprocess on a free loopback port, with a token; yields its URL."""
    with serving(tmp_path_factory.mktemp("serve"), "--workers", "1", token=TOKEN) as url:
        yield url


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_speech_then_transcription_round_trip(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=TOKEN, max_retries=0, timeout=120)
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCES, response_format="wav"
    )
    audio = speech.content
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate > 8000 and 3.0 < samples.size / rate < 12.0
    assert abs(samples).max() > 0.05

    transcript = client.audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", audio, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    heard = words(transcript.text)
    said = words(SENTENCES)
    assert len(set(heard) & set(said)) >= 0.8 * len(set(said)), transcript.text
    stamps = [(w.start, w.end) for w in transcript.words]
    assert len(stamps) >= 0.8 * len(said)
    assert all(a <= b for a, b in stamps) and stamps == sorted(stamps)

    text = client.audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", audio, "audio/wav"), response_format="text"
    )
    assert "park" in str(text).lower()


def test_streamed_speech_and_wrong_token(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=TOKEN, max_retries=0, timeout=120)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="echo", input="One. Two. Three.", response_format="pcm"
    ) as response:
        chunks = list(response.iter_bytes())
    pcm = b"".join(chunks)
    assert len(pcm) % 2 == 0 and len(pcm) / 2 / 24_000 > 0.5

    stranger = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.audio.speech.create(model="tts-1", voice="alloy", input="hi")


def test_models_list_names_the_speech_and_whisper_models(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=TOKEN, max_retries=0, timeout=30)
    models = list(client.models.list())
    assert {"tts-1", "whisper-1"} <= {m.id for m in models}
    assert all(m.object == "model" and m.owned_by == "voicebox" for m in models)
    assert client.models.retrieve("whisper-1").id == "whisper-1"
