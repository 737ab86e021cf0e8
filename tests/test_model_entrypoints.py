"""User-facing entry points of the Voicebox model: read --like, clean --infill, edit --engine voicebox.

A tiny checkpoint (configs/tiny.yaml, untrained weights) exercises the plumbing in seconds: what is
generated is noise-like, but what must hold (samples outside a span untouched, files written, seeds
repeatable, context passed to the model) does not depend on training. Without a checkpoint every entry
point says so in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from helpers import synthesise
from voicebox.audio import Audio, save
from voicebox.errors import InputError, NotReadyError
from voicebox.model import sample
from voicebox.provenance import Consent

SENTENCE = "The birch canoe slid on the smooth planks."
CONSENT = "I, Test Speaker, agree to voicebox cloning my voice for these tests."
torch.set_num_threads(1)


@pytest.fixture
def model(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def recording() -> Audio:
    return synthesise(SENTENCE)


@pytest.fixture
def wav(recording: Audio, tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    save(recording, path, subtype="PCM_16")
    return path


def test_every_entry_point_says_not_ready_without_a_checkpoint(wav, tmp_path, monkeypatch):
    from voicebox.cli import app

    empty = tmp_path / "no-model"
    empty.mkdir()
    monkeypatch.setenv("VOICEBOX_CHECKPOINT", str(empty))
    sample.load_models.cache_clear()
    before = wav.read_bytes()
    out = tmp_path / "out.wav"
    runner = CliRunner()
    commands = [
        ["read", "Hello there.", "-o", str(out), "--engine", "voicebox", "--like", str(wav)],
        ["clean", str(wav), "-o", str(out), "--infill", "0.5-1.2"],
        ["edit", str(wav), "-o", str(out), "--replace", "canoe", "boat", "--engine", "voicebox"],
    ]
    for args in commands:
        run = runner.invoke(app, args)
        assert isinstance(run.exception, NotReadyError), (args, run.exception, run.output)
        assert "\n" not in str(run.exception)
        assert not out.exists()
    assert wav.read_bytes() == before


def test_clean_infill_changes_only_the_span(model, wav, tmp_path):
    from voicebox.cli import app

    out = tmp_path / "fixed.wav"
    run = CliRunner().invoke(
        app,
        [
            "clean",
            str(wav),
            "-o",
            str(out),
            "--infill",
            "0.8-1.5",
            "--text",
            "slid on",
            "--seed",
            "1",
            "--consent",
            CONSENT,
        ],
    )
    assert run.exit_code == 0, (run.output, run.exception)
    x, rate = sf.read(wav, dtype="int16")
    y, rate_out = sf.read(out, dtype="int16")
    assert rate_out == rate and sf.info(str(out)).subtype == "PCM_16"
    a, b = int(0.8 * rate), int(1.5 * rate)
    tail = x.shape[0] - b
    assert np.array_equal(y[:a], x[:a])
    assert np.array_equal(y[-tail:], x[-tail:])
    assert not np.array_equal(y[a : y.shape[0] - tail], x[a:b])  # the span was regenerated


def test_infill_span_rejects_bad_spans(model, recording):
    from voicebox.tasks.clean import infill_span, parse_span

    assert parse_span("1.2-2.5") == (1.2, 2.5)
    for bad in ("2-1", "abc", "1.5", "-1-2"):
        with pytest.raises(InputError, match="START-END"):
            parse_span(bad)
    consent = Consent(CONSENT)
    with pytest.raises(InputError, match="ends after"):
        infill_span(recording, 1.0, recording.duration + 1, consent=consent)
    with pytest.raises(InputError, match="too short"):
        infill_span(recording, 1.0, 1.01, consent=consent)


def test_read_like_writes_repeatable_variations(model, wav, tmp_path):
    from voicebox.cli import app

    runner = CliRunner()
    base = ["read", "Good morning. See you soon.", "--engine", "voicebox", "--like", str(wav)]
    opts = ["--ref-text", SENTENCE, "--variations", "2", "--seed", "3", "--nfe", "2"]
    refused = runner.invoke(app, [*base, "-o", str(tmp_path / "a.wav"), *opts])
    assert isinstance(refused.exception, InputError) and "consent" in str(refused.exception)
    assert not (tmp_path / "a-1.wav").exists()  # nothing generated without consent
    opts += ["--consent", CONSENT]
    run = runner.invoke(app, [*base, "-o", str(tmp_path / "a.wav"), *opts])
    assert run.exit_code == 0, (run.output, run.exception)
    one, two = (sf.read(tmp_path / f"a-{i}.wav")[0] for i in (1, 2))
    assert one.size > 16000 * 0.3 and not np.array_equal(one, two)
    again = runner.invoke(app, [*base, "-o", str(tmp_path / "b.wav"), *opts])
    assert again.exit_code == 0, (again.output, again.exception)
    # Same seed, same speech: the watermark's adaptive embedding may react to float jitter in
    # the last bits, so compare the waveforms by correlation rather than bit for bit.
    again_one = sf.read(tmp_path / "b-1.wav")[0]
    assert again_one.shape == one.shape and np.corrcoef(again_one, one)[0, 1] > 0.95
    assert abs(np.corrcoef(one[: two.size], two[: one.size])[0, 1]) < 0.9
    assert not (tmp_path / "a.wav").exists()
    assert "reference_sha256" in (tmp_path / "a-1.wav.provenance.json").read_text()
    # --like alone means our model (so it needs consent); with the stock engine it is refused
    like = ["read", "Hi.", "-o", str(tmp_path / "c.wav"), "--like", str(wav)]
    run = runner.invoke(app, like)
    assert isinstance(run.exception, InputError) and "consent" in str(run.exception)
    run = runner.invoke(app, [*like, "--engine", "stock"])
    assert isinstance(run.exception, InputError) and "--engine voicebox" in str(run.exception)
    assert not (tmp_path / "c.wav").exists()
    run = runner.invoke(app, ["read", "Hi.", "-o", str(tmp_path / "c.wav"), "--engine", "voicebox"])
    assert isinstance(run.exception, InputError) and "--like" in str(run.exception)


def test_edit_with_voicebox_infills_in_context(model, recording, monkeypatch):
    from voicebox.tasks.edit import edit

    calls = []
    real = sample.respeak

    def spy(context, start, end, text=None, **kwargs):
        calls.append((context, start, end, text, kwargs))
        return real(context, start, end, text, **kwargs)

    monkeypatch.setattr(sample, "respeak", spy)
    result = edit(
        recording, replace=[("smooth", "rough")], engine="voicebox", consent=Consent(CONSENT)
    )
    from voicebox.tasks.regenerate import TAKES

    # takes with seeds 0, 1, ... until whisper hears one right (never, from untrained weights)
    assert [c[4]["seed"] for c in calls] == list(range(TAKES))
    context, start, end, text, kwargs = calls[0]
    assert text.lower() == "rough" and "smooth" in kwargs["context_text"].lower()
    assert context.duration > end > start > 0  # the recording on both sides is the context
    step = result.plan.steps[0]
    a, b = round(step.cut_start * recording.rate), round(step.cut_end * recording.rate)
    out = result.audio.samples
    tail = recording.frames - b
    assert np.array_equal(out[:, :a], recording.samples[:, :a])
    assert np.array_equal(out[:, -tail:], recording.samples[:, -tail:])


def test_infill_span_without_text_keeps_the_length(model, recording):
    from voicebox.tasks.clean import infill_span

    speech = recording.to_rate(16000)
    out = infill_span(speech, 0.8, 1.5, seed=2, nfe=2, consent=Consent(CONSENT))
    assert out.frames == speech.frames and out.rate == 16000
    a, b = int(0.8 * 16000), int(1.5 * 16000)
    assert np.array_equal(out.samples[:, :a], speech.samples[:, :a])
    assert np.array_equal(out.samples[:, b:], speech.samples[:, b:])


def test_demo_clones_a_voice_with_the_model(model, tmp_path):
    from voicebox.demo import clone_rows, render_page

    rows = clone_rows(tmp_path)
    assert [r.file for r in rows] == ["clone-reference.wav", "clone.wav"]
    assert all((tmp_path / r.file).stat().st_size > 1000 for r in rows)
    metrics = rows[1].metrics
    assert metrics["watermark"] == "found"
    assert -1.0 <= float(metrics["similarity to reference"]) <= 1.0 and float(metrics["RTF"]) > 0
    assert "clone.wav" in render_page(rows)
