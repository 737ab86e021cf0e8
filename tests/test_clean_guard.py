"""The never-worse guard: a cleaned signal that scores below its input is redone softer, then left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebox.audio import Audio, save
from voicebox.tasks import clean as clean_mod


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Scripted guard verdicts (True = the attempt scored worse), consumed one per judged attempt."""
    script: list[bool] = []
    monkeypatch.setattr(clean_mod._Judge, "worse", lambda self, after: script.pop(0))
    return script


def test_worse_output_is_redone_softer_then_left_as_it_was(
    noisy_fixture: tuple[Audio, Audio], verdicts: list[bool]
) -> None:
    _, noisy = noisy_fixture
    verdicts += [True, False]  # full strength worse, half strength fine
    softer = clean_mod.clean(noisy, "dfn3", strength=24.0)
    assert not verdicts and not np.array_equal(softer.samples, noisy.samples)
    direct = clean_mod.clean(noisy, "dfn3", strength=12.0, guard=False)
    assert np.array_equal(softer.samples, direct.samples)  # what the second attempt gives
    verdicts += [True, True]  # both worse: the input comes back untouched
    kept = clean_mod.clean(noisy, "dfn3", strength=24.0)
    assert not verdicts and np.array_equal(kept.samples, noisy.samples)


def test_file_guard_commits_only_the_accepted_attempt(
    tmp_path: Path, noisy_fixture: tuple[Audio, Audio], verdicts: list[bool]
) -> None:
    _, noisy = noisy_fixture
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    save(noisy, src, subtype="FLOAT")
    verdicts += [True, True]
    report = clean_mod.clean_file(src, dst, "dfn3", strength=24.0)
    assert report.guard == "not denoised" and report.strength == 0.0
    assert np.array_equal(sf.read(dst, dtype="float32")[0], sf.read(src, dtype="float32")[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]  # no leftovers
    verdicts += [True, False]
    report = clean_mod.clean_file(src, dst, "dfn3", strength=24.0, score=True)
    assert report.guard == "softened to 12 dB" and report.dnsmos_after is not None
    verdicts += [False]
    assert clean_mod.clean_file(src, dst, "dfn3").guard == "kept"
    assert clean_mod.clean_file(src, dst, "dfn3", guard=False).guard is None
    assert not verdicts


def test_real_guard_keeps_a_clean_recording_no_worse(speech_fixture: Audio) -> None:
    from voicebox.engines.quality import dnsmos

    out = clean_mod.clean(speech_fixture, "gate", strength=40.0)
    assert dnsmos(out)["ovrl"] >= dnsmos(speech_fixture)["ovrl"]


def test_guard_leaves_very_short_signals_to_the_engine(verdicts: list[bool]) -> None:
    short = Audio(np.zeros((1, 8000), dtype=np.float32), 16000)  # 0.5 s: too short to judge
    assert clean_mod.clean(short, "gate").frames == 8000 and not verdicts


def test_guard_scores_the_loudest_window_like_dnsmos(speech_fixture: Audio) -> None:
    from voicebox.engines.quality import busiest_window, dnsmos, quick_ovrl

    x = speech_fixture.to_rate(16000).samples
    quiet = np.tile(x * 0.05, 6)
    loud_at = 2 * x.shape[1]
    quiet[:, loud_at : loud_at + x.shape[1]] = x
    start, end = busiest_window(Audio(quiet, 16000))
    loud = (loud_at / 16000, (loud_at + x.shape[1]) / 16000)  # longer than one window
    assert loud[0] - 1 <= start and end <= loud[1] + 1
    assert end - start == pytest.approx(9.01, abs=0.01)
    short = Audio(x[:, : 16000 * 5], 16000)  # one window: the same number as the full DNSMOS
    assert quick_ovrl(short) == pytest.approx(dnsmos(short)["ovrl"], abs=1e-6)
