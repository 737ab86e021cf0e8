"""Editing speech by its words: replace, delete, insert, transcript diff, seams and errors.

The fixture speaker is the bundled Piper voice, which is therefore excluded from the insert voices:
the new words must come from another voice matched to it, as they would for a real recording.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from voicebox.audio import Audio, save
from voicebox.errors import InputError, NotReadyError
from voicebox.tasks import edit as edit_module
from voicebox.tasks.edit import edit
from voicebox.tasks.transcribe import Transcript, transcribe

TEXT = "The old man walked slowly to the market. He bought fresh bread and a jar of honey."
SPEAKER = "piper_joe"


@pytest.fixture(scope="module")
def recording() -> Audio:
    from voicebox.engines import tts

    clean = tts.synthesize(TEXT, SPEAKER)
    pad = np.zeros((1, clean.rate // 4), np.float32)
    x = np.concatenate([pad, clean.samples, pad], axis=1)
    noise = np.random.default_rng(0).standard_normal(x.shape) * 0.002
    return Audio((x + noise).astype(np.float32), clean.rate)


@pytest.fixture(scope="module")
def source(recording) -> Transcript:
    return transcribe(recording)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def _wer(ref: str, hyp: str) -> float:
    import jiwer

    return float(jiwer.wer(" ".join(_words(ref)), " ".join(_words(hyp))))


def _check(recording: Audio, result, expect_new: list[str], expect_gone: list[str]) -> None:
    from voicebox.engines.asr import transcribe_text

    out = result.audio
    heard = transcribe_text(out)
    heard_words = _words(heard)
    for word in expect_new:
        assert word in heard_words, (heard, result.plan.describe())
    for word in expect_gone:
        assert word not in heard_words, (heard, result.plan.describe())
    assert _wer(result.plan.edited_text, heard) <= 0.15, (heard, result.plan.describe())

    x, y, rate = recording.samples, out.samples, recording.rate
    steps = result.plan.steps
    # Bit-identical outside the edited spans, shifted only by the duration change.
    a = round(steps[0].cut_start * rate)
    assert np.array_equal(y[:, :a], x[:, :a])
    shift = sum(
        round((s.out_end - s.out_start) * rate) - round((s.cut_end - s.cut_start) * rate)
        for s in steps
    )
    b = round(steps[-1].cut_end * rate)
    assert y.shape[1] - x.shape[1] == shift
    assert np.array_equal(y[:, b + shift :], x[:, b:])
    # No click: the largest step near a seam stays within what the untouched audio does.
    limit = np.percentile(np.abs(np.diff(x[0])), 99.9)
    near = int(0.01 * rate)
    for s in steps:
        for t in (s.out_start, s.out_end):
            i = round(t * rate)
            window = y[0, max(0, i - near) : i + near]
            assert np.abs(np.diff(window)).max() <= limit, (t, result.plan.describe())


def test_replace(recording, source):
    result = edit(
        recording, replace=[("fresh bread", "cold milk")], source=source, exclude_voices=[SPEAKER]
    )
    assert result.plan.voice and SPEAKER not in result.plan.voice
    assert [s.kind for s in result.plan.steps] == ["replace"]
    _check(recording, result, ["cold", "milk"], ["fresh"])


def test_delete(recording, source):
    result = edit(recording, delete=["fresh"], source=source, exclude_voices=[SPEAKER])
    assert result.audio.duration < recording.duration - 0.15
    _check(recording, result, ["bread"], ["fresh"])


def test_insert(recording, source):
    result = edit(
        recording, insert_after=[("jar of", "wild")], source=source, exclude_voices=[SPEAKER]
    )
    assert result.audio.duration > recording.duration + 0.15
    _check(recording, result, ["wild", "honey"], [])


def test_transcript_diff_plan(recording, source):
    edited = source.text.replace("slowly", "quickly").replace("the market", "the big market")
    edited = edited.replace("fresh ", "")
    result = edit(recording, transcript=edited, source=source, plan_only=True)
    assert result.audio is None
    kinds = {(s.kind, s.old.lower().strip(".,"), s.new.strip(".,")) for s in result.plan.steps}
    assert ("replace", "slowly", "quickly") in kinds
    assert ("insert", "", "big") in kinds
    assert ("delete", "fresh", "") in kinds
    cuts = [(s.cut_start, s.cut_end) for s in result.plan.steps]
    assert cuts == sorted(cuts) and all(a < b for a, b in cuts)


def test_phrase_not_found_lists_nearest(recording, source):
    with pytest.raises(InputError, match="nearest: 'fresh bread'"):
        edit(recording, replace=[("fresh bred", "rye")], source=source, plan_only=True)


def test_ambiguous_phrase_needs_occurrence(recording, source):
    keys = [edit_module.normalize(w.text) for w in source.words]
    word = next(k for k in keys if keys.count(k) >= 2)  # "the" in TEXT, whatever whisper heard
    times = keys.count(word)
    with pytest.raises(InputError, match="--occurrence"):
        edit(recording, delete=[word], source=source, plan_only=True)
    first = edit(recording, delete=[word], occurrence=1, source=source, plan_only=True)
    second = edit(recording, delete=[word], occurrence=2, source=source, plan_only=True)
    assert first.plan.steps[0].cut_start < second.plan.steps[0].cut_start
    with pytest.raises(InputError, match=f"occurs {times}"):
        edit(recording, delete=[word], occurrence=times + 1, source=source, plan_only=True)


@pytest.mark.parametrize("new", ["", "   ", "?!", "--- ..."])
def test_unspeakable_text_refused_before_audio(recording, monkeypatch, new):
    def boom(*args, **kwargs):
        raise AssertionError("audio was touched")

    monkeypatch.setattr("voicebox.tasks.transcribe.transcribe", boom)
    with pytest.raises(InputError, match="no words"):
        edit(recording, replace=[("honey", new)])
    with pytest.raises(InputError, match="no words"):
        edit(recording, insert_after=[("honey", new)])


def test_voicebox_engine_not_ready(recording, source, monkeypatch):
    monkeypatch.setattr(edit_module, "_infill_available", lambda: False)
    with pytest.raises(NotReadyError, match="--engine stock"):
        edit(recording, delete=["fresh"], source=source, engine="voicebox")
    with pytest.raises(InputError, match="unknown engine"):
        edit(recording, delete=["fresh"], source=source, engine="magic")


def test_cli_plan_and_errors(recording, tmp_path, monkeypatch, source):
    from typer.testing import CliRunner

    from voicebox.cli import app

    monkeypatch.setattr("voicebox.tasks.transcribe.transcribe", lambda audio, **kw: source)
    wav = tmp_path / "in.wav"
    save(recording, wav)
    before = wav.read_bytes()
    runner = CliRunner()
    run = runner.invoke(
        app,
        ["edit", str(wav), "--plan", "--replace", "fresh bread", "cold milk", "--delete", "slowly"],
    )
    assert run.exit_code == 0, run.output
    assert "replace 'fresh bread' with 'cold milk'" in run.stdout
    assert "delete 'slowly'" in run.stdout
    assert not (tmp_path / "out.wav").exists()
    run = runner.invoke(app, ["edit", str(wav), "-o", str(tmp_path / "o.wav"), "--delete", "x!"])
    assert isinstance(run.exception, InputError)
    assert wav.read_bytes() == before and not (tmp_path / "o.wav").exists()


def test_merge_rejects_overlap():
    edits = [edit_module._Edit(2, 5, "a", "replace"), edit_module._Edit(4, 6, "", "delete")]
    with pytest.raises(InputError, match="overlap"):
        edit_module._merge(edits)
    merged = edit_module._merge(
        [edit_module._Edit(2, 3, "x", "replace"), edit_module._Edit(3, 4, "", "delete")]
    )
    assert [(e.first, e.stop, e.new) for e in merged] == [(2, 4, "x")]


def test_renditions_are_ranked_by_what_whisper_hears_first() -> None:
    from conftest import synthesise
    from voicebox.tasks.edit import _heard_share

    said = synthesise("He bought 50 jars of honey.")
    x = said.samples[0]
    assert _heard_share("fifty jars of honey", x, said.rate) == 1.0  # digits read as words
    assert _heard_share("twelve bottles of milk", x, said.rate) <= 0.25
