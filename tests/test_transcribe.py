"""Transcription: word times, chunking of long audio, progress, and the txt/json/srt/vtt writers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from voicebox.audio import Audio, save
from voicebox.errors import InputError
from voicebox.tasks.transcribe import Transcript, chunk_bounds, transcribe

TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def speech() -> Audio:
    from voicebox.engines import tts

    return tts.synthesize(TEXT, "piper_joe")


@pytest.fixture(scope="module")
def result(speech) -> Transcript:
    return transcribe(speech)


def test_words_and_times(result, speech):
    words = [re.sub(r"\W", "", w.text.lower()) for w in result.words]
    assert words == ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= speech.duration + 0.1 for w in result.words)
    assert all(0 < w.probability <= 1 for w in result.words)


def test_long_audio_is_chunked_with_offsets(speech):
    rate = speech.rate
    gap = np.zeros((1, int(30 * rate)), np.float32)
    long = Audio(np.concatenate([speech.samples, gap, speech.samples], axis=1), rate)
    calls = []
    out = transcribe(long, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 3 and calls[-1][0] == pytest.approx(long.duration, abs=0.01)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    second = speech.duration + 30.0
    late = [w for w in out.words if w.start >= speech.duration + 1.0]
    assert [re.sub(r"\W", "", w.text.lower()) for w in late][-3:] == ["the", "lazy", "dog"]
    first = {re.sub(r"\W", "", w.text.lower()): w.start for w in out.words[:9]}
    fox = next(w for w in late if "fox" in w.text.lower())
    assert fox.start == pytest.approx(second + first["fox"], abs=0.3)
    assert late[-1].end <= long.duration + 0.1


def test_chunks_cut_in_silence():
    rate = 1000
    rng = np.random.default_rng(0)
    x = rng.standard_normal(75 * rate).astype(np.float32) * 0.3
    for quiet in (26, 52):  # one quiet second inside each allowed cut window
        x[quiet * rate : (quiet + 1) * rate] *= 0.001
    bounds = chunk_bounds(x, rate)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(x)
    assert all(b - a <= 30 * rate for a, b in bounds)
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))
    assert 26 * rate <= bounds[0][1] <= 27 * rate
    assert 52 * rate <= bounds[1][1] <= 53 * rate


def test_writers(result, tmp_path):
    srt = result.to_srt()
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S", srt)
    vtt = result.to_vtt()
    assert vtt.startswith("WEBVTT\n\n") and re.search(r"\d\d:\d\d:\d\d\.\d{3} --> ", vtt)
    data = json.loads(result.to_json())
    assert data["text"] == result.text and len(data["segments"][0]["words"]) >= 9
    assert Transcript.from_dict(data).text == result.text
    assert result.to_txt().strip() == result.text
    path = result.write(tmp_path / "out.srt")
    assert path.read_text() == srt
    with pytest.raises(InputError):
        result.render("doc")


def test_cli_transcribe(speech, tmp_path):
    from typer.testing import CliRunner

    from voicebox.cli import app

    wav = tmp_path / "in.wav"
    save(speech, wav)
    out = tmp_path / "out.vtt"
    run = CliRunner().invoke(app, ["transcribe", str(wav), "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert out.read_text().startswith("WEBVTT") and "fox" in out.read_text().lower()
    run = CliRunner().invoke(app, ["transcribe", str(wav), "--format", "json"])
    assert run.exit_code == 0 and "lazy" in json.loads(run.stdout)["text"].lower()
