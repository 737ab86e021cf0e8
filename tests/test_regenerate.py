"""Takes of a regenerated span: which one is kept, and a take in the wrong register moved back.

The model is replaced by a stand-in that returns known audio per seed, and whisper by a stand-in that
says which seeds were heard right, so these tests check the choosing, not the model."""

from __future__ import annotations

import numpy as np
import pytest

import voicebox.model
from voicebox.audio import Audio
from voicebox.engines import asr
from voicebox.tasks import regenerate
from voicebox.tasks.match import median_f0, semitones_between

RATE = 16_000
WORDS = [("one", 0.2, 0.6), ("two", 0.8, 1.2), ("three", 1.4, 1.8)]
A, B = int(0.7 * RATE), int(1.3 * RATE)


def voiced(f0: float, seconds: float) -> np.ndarray:
    """A buzz with harmonics at `f0`: Praat finds its pitch like a vowel's."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
    return (0.1 * x).astype(np.float32)


def window(seconds: float, start: float, end: float, span_f0: float) -> np.ndarray:
    """The model's window as respeak returns it: 200 Hz, with [start, end) s at `span_f0`."""
    x = voiced(200.0, seconds)
    a, b = int(start * RATE), int(end * RATE)
    x[a:b] = voiced(span_f0, (b - a) / RATE)
    return x


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stand-in model: seed s speaks the span at SPAN_F0[s]; returns the seeds it was asked for."""
    seeds: list[int] = []

    def respeak(context, start, end, text=None, *, seed=None, **kwargs):
        seeds.append(seed)
        return Audio(window(context.duration, start, end, SPAN_F0[seed]), RATE)

    monkeypatch.setattr(voicebox.model, "respeak", respeak, raising=False)
    return seeds


SPAN_F0 = {0: 200.0, 1: 210.0, 2: 205.0}
recording = Audio(voiced(200.0, 2.0), RATE)


def heard_only(good: set[int], seeds: list[int], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Whisper hears the window right only in the takes of the seeds in `good` (else the span's
    word as another); returns the seeds of the takes it listened to."""
    judged: list[int] = []

    def heard_words(mono: np.ndarray, rate: int) -> list[str]:
        judged.append(seeds[-1])
        return ["one", "two" if seeds[-1] in good else "too", "three"]

    monkeypatch.setattr(asr, "heard_words", heard_words)
    return judged


def span_of(out: np.ndarray) -> np.ndarray:
    """The regenerated span without its crossfades."""
    return out[0, int(0.02 * RATE) : -int(0.02 * RATE)]


def test_the_first_take_heard_right_is_kept_and_no_more_are_spoken(model, monkeypatch):
    judged = heard_only({1}, model, monkeypatch)
    out = regenerate.regenerate_piece(recording, A, B, ["two"], WORDS)
    assert model == [0, 1] and judged == [0, 1]  # take 1 was good: take 2 never spoken
    assert abs(median_f0(span_of(out), RATE) - 210.0) < 3.0  # take 1's audio went in


def test_when_no_take_is_heard_right_the_first_best_one_is_kept(model, monkeypatch):
    heard_only(set(), model, monkeypatch)
    out = regenerate.regenerate_piece(recording, A, B, ["two"], WORDS)
    assert model == [0, 1, 2]
    assert abs(median_f0(span_of(out), RATE) - 200.0) < 3.0  # all equal: the first


def test_a_seed_shifts_the_takes_and_one_take_is_not_judged(model, monkeypatch):
    judged = heard_only({0, 1, 2}, model, monkeypatch)
    regenerate.regenerate_piece(recording, A, B, ["two"], WORDS, regenerate.Options(seed=1))
    assert model == [1] and judged == [1]
    regenerate.regenerate_piece(recording, A, B, ["two"], WORDS, regenerate.Options(takes=1))
    assert model == [1, 0] and judged == [1]  # one take: whisper is not asked


def test_a_take_in_the_wrong_register_is_moved_back_within_tolerance(model, monkeypatch):
    heard_only({0, 1, 2}, model, monkeypatch)
    high = 300.0  # 7 semitones above its neighbours
    monkeypatch.setitem(SPAN_F0, 0, high)
    out = regenerate.regenerate_piece(recording, A, B, ["two"], WORDS)
    assert model == [0, 1]  # take 0 was heard but far off; take 1 sits within tolerance
    assert abs(median_f0(span_of(out), RATE) - 210.0) < 3.0
    monkeypatch.setitem(SPAN_F0, 1, high)
    monkeypatch.setitem(SPAN_F0, 2, high)
    model.clear()
    out = regenerate.regenerate_piece(recording, A, B, ["two"], WORDS)
    assert model == [0, 1, 2]
    moved = median_f0(span_of(out), RATE)
    assert semitones_between(200.0, moved) == pytest.approx(regenerate.PITCH_TOLERANCE_ST, abs=0.4)


def test_a_take_that_garbles_a_word_beside_the_span_loses_to_a_clean_one(model, monkeypatch):
    judged: list[int] = []

    def heard_words(mono: np.ndarray, rate: int) -> list[str]:  # take 0 swallows "three"
        judged.append(model[-1])
        return ["one", "two"] if model[-1] == 0 else ["one", "two", "three"]

    monkeypatch.setattr(asr, "heard_words", heard_words)
    regenerate.regenerate_piece(recording, A, B, ["two"], WORDS)
    assert judged == [0, 1]


def test_word_errors_counts_substitutions_drops_and_additions():
    assert regenerate.word_errors(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert regenerate.word_errors(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert regenerate.word_errors(["a", "b", "c"], ["a", "c"]) == 1
    assert regenerate.word_errors(["a", "b"], ["a", "b", "c", "d"]) == 2


def test_whisper_judges_the_take_spliced_into_the_recording(monkeypatch):
    """What is judged is what the edit will sound like: the recording's own samples around the
    span (the model's re-rendering of them, here at another pitch, never ships)."""

    def respeak(context, start, end, text=None, *, seed=None, **kwargs):
        return Audio(window(context.duration, 0.0, context.duration, 330.0), RATE)

    monkeypatch.setattr(voicebox.model, "respeak", respeak, raising=False)
    judged: list[np.ndarray] = []

    def heard_words(mono: np.ndarray, rate: int) -> list[str]:
        judged.append(mono.copy())
        return ["one", "two", "three"]

    monkeypatch.setattr(asr, "heard_words", heard_words)
    regenerate.regenerate_piece(recording, A, B, ["two"], WORDS)
    lo, hi = int(0.15 * RATE), int(1.85 * RATE)  # the window: mid-gap before "one", after "three"
    heard, own = judged[0], recording.samples[0, lo:hi]
    assert heard.shape == own.shape
    np.testing.assert_array_equal(heard[: A - lo], own[: A - lo])
    np.testing.assert_array_equal(heard[B - lo :], own[B - lo :])
    assert abs(median_f0(heard[A - lo + 400 : B - lo - 400], RATE) - 330.0) < 5.0  # the take


def test_each_take_is_reported_as_it_is_spoken(model, monkeypatch):
    """A progress bar moves while the takes are spoken instead of sitting still for all of them."""
    heard_only({1}, model, monkeypatch)
    shares: list[float] = []
    regenerate.regenerate_piece(recording, A, B, ["two"], WORDS, taken=shares.append)
    assert shares == [pytest.approx(1 / 3), 1.0]  # take 0 missed, take 1 kept: done
