"""Shared fixtures: speech synthesised with the bundled Piper voice, noise, a tiny checkpoint.
The helpers they are made with (and that tests import) are in tests/helpers.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# A suite started in the background (nohup, `cmd &` in a script) begins with SIGINT ignored, and
# every command it starts would inherit that: the Ctrl-C tests need the usual disposition back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from helpers import SENTENCES, hum, mix, pink_noise, save_tiny_checkpoint, synthesise  # noqa: E402
from voicebox.audio import Audio  # noqa: E402


@pytest.fixture(scope="session")
def speech_fixture() -> Audio:
    """About 11 s of clean English speech, 22.05 kHz mono, made once per test session."""
    return synthesise(SENTENCES)


@pytest.fixture(scope="session")
def noisy_fixture(speech_fixture: Audio) -> tuple[Audio, Audio]:
    """(clean, noisy): the speech at 5 dB SNR against pink noise plus 50 Hz hum."""
    x = speech_fixture.samples[0]
    noise = pink_noise(len(x), seed=1) + 0.6 * hum(len(x), speech_fixture.rate)
    return speech_fixture, Audio(mix(x, noise, 5.0), speech_fixture.rate)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One untrained tiny checkpoint (configs/tiny.yaml) shared by the model entry-point tests."""
    from voicebox.model.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml")
    return save_tiny_checkpoint(cfg, tmp_path_factory.mktemp("tiny-ckpt"))


@pytest.fixture
def tiny_model(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The tiny checkpoint as the model in use, with a private cache (so a private consent ledger)."""
    from voicebox.model import sample

    monkeypatch.setenv("VOICEBOX_CHECKPOINT", str(tiny_checkpoint))
    monkeypatch.setenv("VOICEBOX_CACHE", str(tmp_path / "cache"))
    sample.load_models.cache_clear()
    yield tiny_checkpoint
    sample.load_models.cache_clear()
