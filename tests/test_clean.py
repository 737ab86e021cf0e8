"""Cleaning: denoisers improve noisy speech, stay aligned sample for sample, keep shape; files and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import hum, mix, pink_noise
from voicebox import dsp
from voicebox.audio import Audio, load, loudness, resample
from voicebox.engines import denoise
from voicebox.errors import InputError
from voicebox.tasks.clean import clean, clean_file

VOICEBOX = Path(sys.executable).parent / "voicebox"


def _lag(a: np.ndarray, b: np.ndarray, window: int = 4_000) -> int:
    """Lag (samples) of b relative to a at the cross-correlation peak, searched within ±window."""
    n = len(a) + len(b)
    c = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    c = np.concatenate([c[-window:], c[: window + 1]])
    return int(np.argmax(c)) - window


def test_dfn3_improves_noisy_speech(noisy_fixture: tuple[Audio, Audio]) -> None:
    from pystoi import stoi

    from voicebox.engines.quality import dnsmos

    reference, noisy = noisy_fixture
    out = clean(noisy, "dfn3")
    assert out.rate == noisy.rate and out.samples.shape == noisy.samples.shape
    before, after = dnsmos(noisy), dnsmos(out)
    assert after["ovrl"] >= before["ovrl"] + 0.5, (before, after)
    assert after["bak"] > before["bak"]
    x, rate = reference.samples[0], reference.rate
    assert stoi(x, out.samples[0], rate) >= stoi(x, noisy.samples[0], rate)


@pytest.mark.parametrize("engine", ["dfn3", "rnnoise"])
@pytest.mark.parametrize("rate", [48_000, 22_050])
def test_output_aligned_at_lag_zero(speech_fixture: Audio, engine: str, rate: int) -> None:
    speech = speech_fixture.samples[0, : 4 * speech_fixture.rate]
    x = resample(speech, speech_fixture.rate, rate)
    t = np.arange(len(x)) / rate
    x = (x + 0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = clean(Audio(x, rate), engine, strength=100.0)  # all wet: no dry input mixed back
    assert out.samples.shape == (1, len(x))
    assert _lag(x, out.samples[0]) == 0


@pytest.mark.parametrize("engine", denoise.ENGINES)
@pytest.mark.parametrize("length", [1, 479, 481, 4_801])
def test_stream_length_exact(engine: str, length: int) -> None:
    x = np.random.default_rng(length).standard_normal(length).astype(np.float32) * 0.1
    stream = denoise.create(engine)
    parts = [stream.process(x[i : i + 333]) for i in range(0, length, 333)]
    parts.append(stream.flush())
    assert sum(len(p) for p in parts) == length


def test_rnnoise_strength_zero_is_the_input_aligned(speech_fixture: Audio) -> None:
    x = resample(speech_fixture.samples[0, : speech_fixture.rate], speech_fixture.rate, 48_000)
    out = denoise.denoise(x, "rnnoise", strength=0.0)
    np.testing.assert_allclose(out, x, atol=1e-5)


@pytest.mark.parametrize(("channels", "rate"), [(2, 44_100), (3, 16_000), (1, 8_000)])
def test_clean_keeps_layout(channels: int, rate: int) -> None:
    rng = np.random.default_rng(channels)
    x = (rng.standard_normal((channels, int(1.37 * rate) + 3)) * 0.05).astype(np.float32)
    out = clean(Audio(x, rate), "rnnoise")
    assert (out.rate, out.samples.shape) == (rate, x.shape)
    assert np.isfinite(out.samples).all()


def test_clean_rejects_bad_arguments() -> None:
    a = Audio(np.zeros((1, 1_000)), 16_000)
    with pytest.raises(InputError, match="unknown denoise engine"):
        clean(a, "magic")
    with pytest.raises(InputError, match="strength"):
        clean(a, strength=-1)
    with pytest.raises(InputError, match="loudness"):
        clean(a, loudness=5.0)


@pytest.mark.parametrize("base", [50.0, 60.0])
def test_hum_detected_and_notched(speech_fixture: Audio, base: float) -> None:
    rate = speech_fixture.rate
    x = speech_fixture.samples[0]
    noisy = x + 0.05 * hum(len(x), rate, base)
    lines = dsp.detect_hum(noisy[None], rate)
    assert lines and lines[0] == base
    assert all(abs(f / base - round(f / base)) < 1e-9 for f in lines)
    notch = dsp.Notch(lines, rate, 1)
    out = np.concatenate([notch(noisy[None, i : i + 5_000]) for i in range(0, len(x), 5_000)], 1)
    residual = out[0] - x
    t = np.arange(len(x)) / rate
    probe = np.sin(2 * np.pi * base * t)
    hum_before = abs(np.dot(noisy - x, probe))
    hum_after = abs(np.dot(residual[rate:], probe[rate:])) * len(x) / (len(x) - rate)
    assert hum_after < 0.05 * hum_before
    assert dsp.detect_hum(x[None], rate) == []
    assert dsp.detect_hum(mix(x, pink_noise(len(x)), 5.0)[None], rate) == []


def test_clean_file_streams_and_reports(tmp_path: Path, noisy_fixture: tuple[Audio, Audio]) -> None:
    _, noisy = noisy_fixture
    rate = 44_100
    x = resample(noisy.samples[0], noisy.rate, rate)
    stereo = np.stack([x, 0.8 * x])[:, : 5 * rate + 17]
    src = tmp_path / "in.wav"
    sf.write(src, stereo.T, rate, subtype="PCM_24")
    digest = src.read_bytes()
    seen: list[tuple[float, float]] = []
    report = clean_file(
        src,
        tmp_path / "out.flac",
        dehum=True,
        loudness=-20.0,
        score=True,
        progress=lambda d, t: seen.append((d, t)),
    )
    info = sf.info(str(tmp_path / "out.flac"))
    assert (info.samplerate, info.channels, info.frames) == (rate, 2, stereo.shape[1])
    assert info.subtype == "PCM_24"
    assert src.read_bytes() == digest
    assert report.hum_hz and report.hum_hz[0] == 50.0
    assert report.duration == pytest.approx(stereo.shape[1] / rate)
    assert report.dnsmos_after["ovrl"] > report.dnsmos_before["ovrl"]
    assert abs(loudness(load(tmp_path / "out.flac")) - -20.0) < 0.5
    assert seen and seen[-1][0] == pytest.approx(report.duration)
    d = report.to_dict()
    assert json.loads(json.dumps(d))["engine"] == "dfn3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.flac"]


def test_clean_file_refuses_its_input(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(1600, np.float32), 16_000)
    with pytest.raises(InputError, match="overwrite"):
        clean_file(src, tmp_path / "." / "in.wav")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VOICEBOX_THREADS="1")
    return subprocess.run(
        [str(VOICEBOX), "clean", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_file_and_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    for name in ("a.wav", "sub/a.wav", "b.flac"):
        sf.write(inputs / name, rng.standard_normal(8_000).astype(np.float32) * 0.05, 16_000)
    (inputs / "notes.txt").write_text("skip me")
    one = _cli(
        str(inputs / "a.wav"), "-o", str(tmp_path / "one.wav"), "--engine", "rnnoise", "--json"
    )
    assert one.returncode == 0, one.stderr
    report = json.loads(one.stdout)
    assert report["engine"] == "rnnoise" and report["channels"] == 1
    assert sf.info(str(tmp_path / "one.wav")).frames == 8_000
    many = _cli(str(inputs), str(inputs / "a.wav"), "-o", str(tmp_path / "out"), "-e", "rnnoise")
    assert many.returncode == 0, many.stderr
    made = sorted(
        str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()
    )
    assert made == ["a.wav", "in/a.wav", "in/b.flac", "in/sub/a.wav"]
    assert many.stderr.count("cleaned") == 4
    again = _cli(
        str(inputs / "a.wav"),
        str(inputs / "sub" / "a.wav"),
        "-o",
        str(tmp_path / "pair"),
        "-e",
        "rnnoise",
    )
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (tmp_path / "pair").iterdir()) == ["a-1.wav", "a.wav"]
