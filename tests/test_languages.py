"""Voices and languages (issue 14): OpenAI and Kokoro-FastAPI voice names, blends, multilingual
transcription with language detection, reading text in its own language, and the OpenAI speech
extras (sse, instructions) and captioned speech. Speech is made here with the bundled voices."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from voicebox.audio import Audio, encode, save
from voicebox.engines import asr, tts
from voicebox.errors import InputError
from voicebox.server.app import create_app
from voicebox.server.backend import Backend
from voicebox.server.instructions import interpret
from voicebox.server.settings import Settings
from voicebox.tasks import read as reading
from voicebox.tasks.transcribe import transcribe
from voicebox.text import guess_language

GERMAN = "Guten Morgen, wie geht es dir heute? Das Wetter ist schön."
JAPANESE = "おはようございます。今日はとても良い天気です。"


def gender(spec: str) -> str:
    """A voice's gender, or a blend's by weight."""
    weights = reading._blend_weights(spec) if reading.is_combination(spec) else {spec: 1.0}
    votes: dict[str, float] = {}
    for name, weight in weights.items():
        found = next(v.gender for v in tts.list_voices() if v.id == name)
        votes[found] = votes.get(found, 0.0) + weight
    return max(votes, key=lambda g: votes[g])


@pytest.fixture(scope="module")
def german() -> Audio:
    return tts.synthesize(GERMAN, "espeak:de", lang="de")


@pytest.fixture(scope="module")
def japanese() -> Audio:
    return reading.read(JAPANESE, lang="ja").audio


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    settings = Settings(workers=1, work_dir=str(work / "work"))
    with TestClient(create_app(settings, Backend())) as c:
        yield c


# ---------------------------------------------------------------- 1. voices


def test_openai_names_map_to_a_voice_of_their_gender():
    mapping = reading.openai_voices()
    assert set(mapping) == set(reading.OPENAI_GENDERS)
    for name, target in mapping.items():
        engine_voice, _, lang = reading.choose_voice(name, None, None)
        assert lang == "en"
        assert gender(target) == reading.OPENAI_GENDERS[name], (name, target)
    assert len(set(mapping.values())) >= 2  # not everything in one voice


def test_the_ranking_follows_the_measured_figures(monkeypatch):
    rows = [
        {"voice": "piper_joe", "gender": "male", "wer": 0.01, "dnsmos": 3.3, "rtf": 0.04},
        {"voice": "jm_kumo", "gender": "male", "wer": 0.30, "dnsmos": 3.3, "rtf": 0.1},  # errors
        {"voice": "heart", "gender": "female", "wer": 0.02, "dnsmos": 3.4, "rtf": 0.01},
        {"voice": "jf_nezumi", "gender": "female", "wer": 0.03, "dnsmos": 3.3, "rtf": 0.2},
        {"voice": "jf_alpha", "gender": "female", "wer": 0.0, "dnsmos": 3.5, "rtf": 0.9},  # slow
    ]
    monkeypatch.setattr(reading, "_MEASURED", {"english_voices": rows})
    assert reading.default_voice("en") == "piper_joe"
    assert reading.english_ranking("male") == ["piper_joe"]
    assert reading.english_ranking("female") == ["heart", "jf_nezumi"]
    mapping = reading.openai_voices()
    assert mapping["alloy"] == "heart" and mapping["nova"] == "jf_nezumi"  # best first, in turn
    assert {mapping[n] for n in ("echo", "onyx", "fable", "ash")} == {"piper_joe"}


def test_shipped_figures_measure_every_candidate_with_its_gender():
    rows = reading._measured().get("english_voices", [])
    assert rows, "src/voicebox/data/languages.json has no English voice figures"
    for row in rows:
        assert gender(row["voice"]) == row["gender"]
        assert 0 <= row["wer"] <= 1 and 1 <= row["dnsmos"] <= 5
    fast = [r for r in rows if r["rtf"] <= reading.READ_RTF_TARGET]
    best = min(fast, key=lambda r: (r["wer"], -r["dnsmos"]))
    assert reading.default_voice("en") == best["voice"]
    assert best["voice"] in (tts.HIBARI_VOICE, tts.PIPER_VOICE)  # native English by default


def test_kokoro_fastapi_combinations_are_accepted_wherever_a_voice_is():
    assert reading.parse_blend("jf_alpha(2)+jm_kumo(1)") == {"jf_alpha": 2.0, "jm_kumo": 1.0}
    assert reading.parse_blend("jf_alpha+jm_kumo") == {"jf_alpha": 1.0, "jm_kumo": 1.0}
    voice, name, _ = reading.choose_voice("jf_alpha(3)+jm_kumo(1)", None, None)
    assert voice == {"jf_alpha": 3.0, "jm_kumo": 1.0} and name == "jf_alpha:0.75,jm_kumo:0.25"
    assert reading.choose_voice(None, "jm_kumo(1)+jf_nezumi(1)", None)[0] == {
        "jm_kumo": 1.0,
        "jf_nezumi": 1.0,
    }
    assert reading.choose_voice("heart(1)", None, None)[0] == "heart"  # one name: that voice
    assert reading.choose_voice("af_heart", None, None)[0] == "heart"  # Kokoro-FastAPI's id
    speech = reading.read("Hello.", voice="jm_kumo(1)+jf_nezumi(1)")
    assert speech.audio.duration > 0.2 and speech.voice == "jm_kumo:0.50,jf_nezumi:0.50"


def test_blends_across_engines_and_subtraction_are_refused_clearly():
    with pytest.raises(InputError, match=r"'heart' is a hibari voice and cannot be blended"):
        reading.choose_voice("heart+piper_joe", None, None)
    with pytest.raises(InputError, match=r"only Kokoro voices mix"):
        reading.choose_voice(None, {"jf_alpha": 1.0, "piper_joe": 1.0}, None)
    with pytest.raises(InputError, match="not subtracted"):
        reading.parse_blend("jf_alpha(2)-jm_kumo(1)")


def test_unknown_voices_name_the_nearest():
    with pytest.raises(InputError, match=r"unknown voice 'af_bella'; nearest: .*heart"):
        reading.choose_voice("af_bella", None, None)
    with pytest.raises(InputError, match=r"nearest: jm_kumo"):
        reading.choose_voice("jm_kumu", None, None)
    with pytest.raises(InputError, match=r"'jf_alfa' cannot be blended: unknown voice.*jf_alpha"):
        reading.parse_blend("jf_alfa(1)+jm_kumo(1)")


def test_server_accepts_openai_names_and_combinations(client):
    ok = client.post(
        "/v1/audio/speech",
        json={"input": "Hi.", "voice": "jm_kumo(2)+jf_nezumi(1)", "response_format": "wav"},
    )
    assert ok.status_code == 200 and ok.content[:4] == b"RIFF"
    bad = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "af_bella"})
    assert bad.status_code == 400 and "nearest" in bad.json()["error"]["message"]
    voices = client.get("/v1/voices").json()
    assert voices["openai_aliases"] == reading.openai_voices()


def test_batch_reads_a_combination_voice(tmp_path):
    from voicebox.batch.runner import run_batch

    manifest = tmp_path / "lines.jsonl"
    manifest.write_text(
        json.dumps({"id": "mix", "text": "Hi.", "voice": "jm_kumo(1)+jf_nezumi(1)"})
    )
    summary = run_batch("read", str(manifest), tmp_path / "out", workers=1)
    assert summary.exit_code == 0, summary.failures
    assert (tmp_path / "out" / "mix.wav").stat().st_size > 1000


# ---------------------------------------------------------------- 2. transcription in any language


def test_transcribe_detects_the_language_and_keeps_it(japanese):
    result = transcribe(japanese)
    assert result.language == "ja" and result.language_probability >= 0.9
    assert "天気" in result.text
    data = result.to_dict()
    assert data["language"] == "ja" and type(result).from_dict(data).language == "ja"


def test_english_is_detected_too():
    result = transcribe(tts.synthesize("Please bring the green basket.", "piper_joe"))
    assert result.language == "en" and result.language_probability > 0.9
    assert "green basket" in result.text.lower()


def test_language_can_be_forced_and_translated(german, japanese):
    forced = transcribe(german, language="German")
    assert forced.language == "de" and forced.language_probability is None
    assert "guten morgen" in forced.text.lower()
    english = transcribe(japanese, task="translate")
    assert (english.task, english.language) == ("translate", "ja")
    assert english.text.isascii() and re.search(r"morning|weather|day|nice", english.text.lower())


def test_unknown_language_and_unsure_detection_are_said_plainly(german, monkeypatch):
    with pytest.raises(InputError, match="not one the recogniser knows"):
        transcribe(german, language="klingon")
    monkeypatch.setattr(
        asr, "detect_language", lambda audio: ("de", 0.31, [("de", 0.31), ("nl", 0.29)])
    )
    with pytest.raises(InputError, match=r"cannot tell which language.*german 0\.31.*--language"):
        transcribe(german)


def test_cli_reports_the_language(tmp_path, japanese):
    path = tmp_path / "ja.wav"
    save(japanese, path)
    proc = subprocess.run(
        [sys.executable, "-c", "from voicebox.cli import main; main()", "transcribe", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"language: Japanese \(ja, detected, probability [01]\.\d\d\)", proc.stderr)
    assert "天気" in proc.stdout


def test_server_transcribes_and_translates_other_languages(client, japanese, german):
    files = {"file": ("ja.wav", encode(japanese, "wav"), "audio/wav")}
    verbose = client.post(
        "/v1/audio/transcriptions", files=files, data={"response_format": "verbose_json"}
    ).json()
    assert verbose["language"] == "japanese" and verbose["language_probability"] >= 0.9
    assert "天気" in verbose["text"]
    translated = client.post("/v1/audio/translations", files=files).json()
    assert translated["text"].strip() and translated["text"].isascii()  # English, not Japanese
    files = {"file": ("de.wav", encode(german, "wav"), "audio/wav")}
    forced = client.post(
        "/v1/audio/transcriptions",
        files=files,
        data={"language": "de", "response_format": "verbose_json"},
    ).json()
    assert forced["language"] == "german" and forced["language_probability"] is None


# ---------------------------------------------------------------- 3. reading in many languages


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("こんにちは、世界。", "ja"),
        ("東京は大きい都市です。", "ja"),  # kanji with kana: Japanese, not Chinese
        ("今天天气很好。", "zh"),
        ("안녕하세요.", "ko"),
        ("Привет, как дела?", "ru"),
        ("Привіт, як справи? Їжак.", "uk"),
        ("Γεια σου κόσμε.", "el"),
        ("مرحبا بالعالم", "ar"),
        ("नमस्ते दुनिया", "hi"),
        ("Der Hund ist nicht mit dem Ball zu Hause.", "de"),
        ("Le chat est dans la maison avec les enfants.", "fr"),
        ("The dog is at home with the children.", "en"),
        ("Hello!", "en"),
    ],
)
def test_guess_language_by_script_and_common_words(text, lang):
    assert guess_language(text) == lang


def test_japanese_text_is_read_by_a_japanese_voice_without_lang():
    speech = reading.read("こんにちは。")
    assert speech.voice in tts.KOKORO_VOICES
    heard = " ".join(s.text for s in asr.recognize(speech.audio, words=False, language="ja"))
    assert "こんにちは" in heard
    with pytest.raises(InputError, match=r"looks Japanese \(ja\) and heart reads English only"):
        reading.read("こんにちは。", voice="heart")


def test_espeak_only_languages_say_so():
    engine_voice, name, lang = reading.choose_voice(None, None, None, GERMAN)
    assert (name, lang) == ("espeak:de", "de")
    report = reading.reading_report(name, lang, None)
    assert "German (de, detected from the text)" in report and "only espeak-ng" in report
    assert reading.reading_report("heart", "en", None) is None


def test_voices_show_the_measured_round_trips():
    shipped = reading._measured().get("languages", {})
    assert {"en", "ja", "de"} <= set(shipped)
    for lang, row in shipped.items():
        assert row["metric"] == ("cer" if lang in ("ja", "zh") else "wer")
        assert row[row["metric"]] >= 0 and row["rtf"] > 0
    proc = subprocess.run(
        [sys.executable, "-c", "from voicebox.cli import main; main()", "voices", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    listed = {v["id"]: v for v in json.loads(proc.stdout)}
    german = listed["espeak:de"]["measured"]["round_trip"]["de"]
    assert german["metric"] == "wer" and german["value"] == shipped["de"]["wer"]
    assert "english" in listed["heart"]["measured"]


# ---------------------------------------------------------------- 5. the OpenAI speech API in full


def test_instructions_map_onto_speed_and_pitch():
    slow = interpret("Please speak slowly.")
    assert (slow.speed, slow.pitch, slow.ignored) == (0.8, 0.0, "")
    both = interpret("Much faster, and with a lower pitch; sound cheerful")
    assert (both.speed, both.pitch) == (1.4, -2.0) and "cheerful" in both.ignored
    style = interpret("Whisper like a pirate")
    assert style.speed == 1.0 and not style.applied and "pirate" in style.note()


def test_sse_streams_base64_deltas_then_done(client):
    body = {"input": "One. Two.", "voice": "piper_joe", "stream_format": "sse"}
    response = client.post("/v1/audio/speech", json={**body, "response_format": "pcm"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * 2 + ["speech.audio.done"]
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert 0.3 < len(pcm) / 2 / 24_000 < 3.0
    mp3 = client.post("/v1/audio/speech", json={**body, "response_format": "mp3"}).text
    first = json.loads(next(line[6:] for line in mp3.splitlines() if line.startswith("data: ")))
    assert base64.b64decode(first["audio"]).startswith((b"ID3", b"\xff\xfb", b"\xff\xf3"))


def test_instructions_are_honoured_and_the_rest_noted(client):
    body = {"input": "The birch canoe slid on the smooth planks.", "voice": "piper_joe"}
    plain = client.post(
        "/v1/audio/speech", json={**body, "response_format": "wav", "stream": False}
    )
    slow = client.post(
        "/v1/audio/speech",
        json={
            **body,
            "response_format": "wav",
            "stream": False,
            "instructions": "speak slowly, sadly",
        },
    )
    assert plain.status_code == slow.status_code == 200
    assert len(slow.content) > 1.15 * len(plain.content)
    note = slow.headers["x-voicebox-instructions"]
    assert "speed x0.8" in note and "sadly" in note
    assert "x-voicebox-instructions" not in plain.headers


def test_captioned_speech_gives_audio_and_word_times(client):
    response = client.post(
        "/dev/captioned_speech",
        json={"input": "Hello there, my friend.", "voice": "piper_joe", "response_format": "wav"},
    )
    assert response.status_code == 200
    doc = response.json()
    assert doc["audio_format"] == "wav" and base64.b64decode(doc["audio"])[:4] == b"RIFF"
    words = doc["timestamps"]
    assert [w["word"] for w in words] == ["Hello", "there", "my", "friend"]
    starts = [w["start_time"] for w in words]
    assert starts == sorted(starts) and all(w["end_time"] > w["start_time"] for w in words)
    assert np.isclose(words[0]["start_time"], 0.0, atol=0.3)
