"""Audio I/O: every common format and layout reads, writes by extension, streams in blocks, meters loudness."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebox import audio as A
from voicebox.errors import AudioError

RATE = 22_050


def _signal(channels: int = 2, rate: int = RATE, seconds: float = 0.5) -> np.ndarray:
    """Distinct tones per channel so a channel swap or a drop shows up."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack(
        [0.4 * np.sin(2 * np.pi * (300 + 110 * c) * t) for c in range(channels)]
    ).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.shape[-1], b.shape[-1])
    a, b = a[..., :n].ravel(), b[..., :n].ravel()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@pytest.mark.parametrize(
    "subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "IMA_ADPCM", "MS_ADPCM"]
)
def test_wav_subtypes(tmp_path: Path, subtype: str) -> None:
    x = _signal(2)
    path = tmp_path / f"x_{subtype}.wav"
    sf.write(path, x.T, RATE, subtype=subtype)
    a = A.load(path)
    assert (a.rate, a.channels) == (RATE, 2)
    assert a.samples.dtype == np.float32
    if "ADPCM" in subtype:  # ADPCM pads to whole blocks
        assert x.shape[1] <= a.frames < x.shape[1] + 2048
        assert _corr(a.samples, x) > 0.99
    else:
        assert a.frames == x.shape[1]
        assert np.abs(a.samples - x).max() < (0.01 if subtype == "PCM_U8" else 1e-3)


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate"),
    [("FLAC", "PCM_16", RATE), ("FLAC", "PCM_24", 96_000), ("OGG", "VORBIS", RATE)]
    + [("OGG", "OPUS", 48_000), ("MP3", "MPEG_LAYER_III", RATE)],
)
def test_soundfile_formats(tmp_path: Path, fmt: str, subtype: str, rate: int) -> None:
    x = _signal(2, rate)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, x.T, rate, format=fmt, subtype=subtype)
    a = A.load(path)
    assert (a.rate, a.channels) == (rate, 2)
    assert abs(a.frames - x.shape[1]) <= 0.01 * rate
    assert _corr(a.samples[:, 2000:8000], x[:, 2000:8000]) > 0.9


@pytest.mark.parametrize(
    ("ext", "codec"),
    [("m4a", "aac"), ("opus", "libopus"), ("mp3", "libmp3lame"), ("ogg", "libvorbis")],
)
def test_ffmpeg_made_files(tmp_path: Path, ext: str, codec: str) -> None:
    src = tmp_path / "src.wav"
    x = _signal(2, 48_000)
    sf.write(src, x.T, 48_000)
    path = tmp_path / f"x.{ext}"
    cmd = [A.ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-c:a", codec, str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    a = A.load(path)
    assert (a.rate, a.channels) == (48_000, 2)
    assert abs(a.frames - x.shape[1]) < 0.05 * 48_000
    assert np.abs(a.samples).max() > 0.2


@pytest.mark.parametrize(("channels", "rate"), [(1, 8_000), (3, 11_025), (6, 44_100), (8, 96_000)])
def test_any_channel_count_and_rate(tmp_path: Path, channels: int, rate: int) -> None:
    x = _signal(channels, rate, seconds=0.2)
    path = tmp_path / "x.wav"
    sf.write(path, x.T, rate, subtype="PCM_24")
    a = A.load(path)
    assert (a.rate, a.channels, a.frames) == (rate, channels, x.shape[1])
    assert np.abs(a.samples - x).max() < 1e-4


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "opus", "m4a"])
def test_save_by_extension_round_trip(tmp_path: Path, ext: str) -> None:
    x = _signal(2, 48_000)
    path = A.save(A.Audio(x, 48_000), tmp_path / f"out.{ext}")
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{ext}"], "no temporary file left"
    a = A.load(path)
    assert (a.rate, a.channels) == (48_000, 2)
    lossless = ext in ("wav", "flac")
    assert a.frames == x.shape[1] if lossless else abs(a.frames - x.shape[1]) < 0.05 * 48_000
    assert _corr(a.samples[:, 4000:20000], x[:, 4000:20000]) > (0.999 if lossless else 0.8)


def test_save_refuses_unknown_extension_and_mp3_surround(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot write"):
        A.save(A.Audio(_signal(1), RATE), tmp_path / "x.xyz")
    with pytest.raises(AudioError, match="at most 2 channels"):
        A.save(A.Audio(_signal(3), RATE), tmp_path / "x.mp3")
    assert list(tmp_path.iterdir()) == []


def test_load_resamples_and_downmixes(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, _signal(2).T, RATE, subtype="FLOAT")
    a = A.load(path, rate=16_000, mono=True)
    assert (a.rate, a.channels) == (16_000, 1)
    assert abs(a.frames - int(0.5 * 16_000)) <= 1


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_stream_blocks_equal_whole_file(tmp_path: Path, ext: str) -> None:
    x = _signal(2, 16_000, seconds=3.3)
    path = tmp_path / f"x.{ext}"
    A.save(A.Audio(x, 16_000), path)
    whole = A.load(path)
    rate, channels, frames, blocks = A.stream(path, block_seconds=1.0)
    parts = list(blocks)
    assert (rate, channels) == (16_000, 2)
    assert all(p.shape[0] == 2 and p.shape[1] <= 16_000 for p in parts)
    assert len(parts) >= 3
    joined = np.concatenate(parts, axis=1)
    assert joined.shape == whole.samples.shape
    np.testing.assert_allclose(joined, whole.samples, atol=1e-6)
    assert abs(frames - whole.frames) < 0.05 * rate


def test_stream_checks_each_block(tmp_path: Path) -> None:
    x = _signal(1, 16_000, seconds=2.0)
    x[0, 20_000] = np.inf
    path = tmp_path / "x.wav"
    sf.write(path, x.T, 16_000, subtype="FLOAT")
    _, _, _, blocks = A.stream(path, block_seconds=0.5)
    with pytest.raises(AudioError, match="NaN or infinite"):
        list(blocks)


def test_stream_writer_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.flac"
    with pytest.raises(RuntimeError), A.StreamWriter(target, 16_000, 2) as w:
        w.write(_signal(2, 16_000))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with A.StreamWriter(target, 16_000, 2) as w:
        w.write(_signal(2, 16_000))
        w.write(_signal(2, 16_000))
    assert sf.info(str(target)).frames == 2 * 8_000
    assert [p.name for p in tmp_path.iterdir()] == ["out.flac"]


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_loudness_meter_matches_pyloudnorm(channels: int) -> None:
    import pyloudnorm

    rng = np.random.default_rng(3)
    rate = 44_100
    envelope = np.repeat(rng.uniform(0.01, 0.5, 40), rate // 10)
    x = np.stack(
        [envelope * rng.standard_normal(envelope.size) * (1 + c / 4) for c in range(channels)]
    )
    x = np.clip(x, -1, 1).astype(np.float32)
    reference = pyloudnorm.Meter(rate).integrated_loudness(x.T.astype(np.float64))
    meter = A.LoudnessMeter(rate, channels)
    for start in range(0, x.shape[1], 7_777):
        meter.add(x[:, start : start + 7_777])
    assert abs(meter.integrated() - reference) < 0.1
    assert abs(A.loudness(A.Audio(x, rate)) - reference) < 0.1
    assert meter.peak == pytest.approx(float(np.abs(x).max()))


def test_loudness_of_silence_is_minus_infinity() -> None:
    assert A.loudness(A.Audio(np.zeros((1, 4800)), 48_000)) == float("-inf")
