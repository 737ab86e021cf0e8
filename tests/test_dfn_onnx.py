"""DeepFilterNet3 on onnxruntime: matches the reference runtime, streams exactly, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import hum, mix, pink_noise
from voicebox.audio import Audio, resample
from voicebox.engines import denoise, dfn_onnx

RATE = 48_000


def _snr(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum((other - reference) ** 2), 1e-30)))


def _run(x: np.ndarray, strength: float, block: int | None = None, chunk: int = 500) -> np.ndarray:
    stream = dfn_onnx.DFN3Stream(strength, chunk_frames=chunk)
    step = block or max(1, len(x))
    parts = [stream.process(x[i : i + step]) for i in range(0, len(x), step)]
    parts.append(stream.flush())
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def noisy48(speech_fixture: Audio) -> np.ndarray:
    """About 4 s of speech at 5 dB SNR against pink noise and hum, at 48 kHz."""
    x = speech_fixture.samples[0, : 4 * speech_fixture.rate]
    noise = pink_noise(len(x), seed=7) + 0.6 * hum(len(x), speech_fixture.rate)
    return resample(mix(x, noise, 5.0), speech_fixture.rate, RATE)


@pytest.mark.parametrize("strength", [24.0, 100.0])
def test_matches_the_tract_runtime(noisy48: np.ndarray, strength: float) -> None:
    reference = denoise.denoise(noisy48, "dfn3-tract", strength)
    ours = _run(noisy48, strength)
    assert ours.shape == noisy48.shape
    assert _snr(reference, ours) >= 40.0  # measured ~118 dB: same conventions, float32 rounding


def test_chunked_stream_equals_whole_file(noisy48: np.ndarray) -> None:
    x = noisy48[: 2 * RATE + 123]
    whole = _run(x, 24.0, chunk=10**6)
    for block, chunk in ((1_000, 500), (4_801, 37), (333, 1)):
        part = _run(x, 24.0, block=block, chunk=chunk)
        assert part.shape == x.shape
        assert _snr(whole, part) >= 80.0, (block, chunk)


def test_gated_frames_keep_streaming_exact(
    noisy48: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With gates that skip decoders on some frames, the carried states still line up."""
    monkeypatch.setattr(dfn_onnx, "LSNR_GATES", (-10.0, 30.0, 5.0))
    model = dfn_onnx.load()
    frames = {"enc": 0, "erb_dec": 0, "df_dec": 0}
    run = model.run

    def spy(graph: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        frames[graph] += inputs["emb" if graph != "enc" else "feat_erb"].shape[-2]
        return run(graph, **inputs)

    monkeypatch.setattr(model, "run", spy)
    x = np.concatenate([np.zeros(RATE // 2, np.float32), noisy48[: 2 * RATE]])
    whole = _run(x, 100.0, chunk=10**6)
    assert frames["df_dec"] < frames["erb_dec"] < frames["enc"]  # both stages were skipped
    assert _snr(whole, _run(x, 100.0, block=3_000, chunk=29)) >= 80.0


def test_output_aligned_at_lag_zero(speech_fixture: Audio) -> None:
    x = resample(speech_fixture.samples[0, : 3 * speech_fixture.rate], speech_fixture.rate, RATE)
    x = (x + 0.1 * np.sin(2 * np.pi * 440 * np.arange(len(x)) / RATE)).astype(np.float32)
    out = _run(x, 100.0, block=7_777)
    n = len(x) + len(out)
    c = np.fft.irfft(np.fft.rfft(out, n) * np.conj(np.fft.rfft(x, n)), n)
    window = 4_000
    assert int(np.argmax(np.concatenate([c[-window:], c[: window + 1]]))) - window == 0


@pytest.mark.parametrize("length", [0, 1, 479, 481, 1_441, 4_801])
def test_exact_length(length: int) -> None:
    x = np.random.default_rng(length).standard_normal(length).astype(np.float32) * 0.1
    assert _run(x, 24.0, block=333).shape == (length,)


def test_strength_zero_is_the_input(noisy48: np.ndarray) -> None:
    x = noisy48[:RATE]
    np.testing.assert_allclose(_run(x, 0.0, block=5_000), x, atol=1e-5)


def test_memory_bounded_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph calls never see more than one chunk, and the carried state does not grow."""
    model = dfn_onnx.load()
    longest: list[int] = []
    run = model.run

    def spy(graph: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        longest.append(max(a.shape[2] if a.ndim == 4 else a.shape[1] for a in inputs.values()))
        return run(graph, **inputs)

    monkeypatch.setattr(model, "run", spy)

    def state_bytes(seconds: float) -> int:
        stream = dfn_onnx.DFN3Stream(24.0, chunk_frames=50, model=model)
        x = 0.05 * pink_noise(int(seconds * RATE), seed=3)
        out = stream.process(x)
        assert len(out) == len(x) - stream.lag
        return sum(v.nbytes for v in vars(stream).values() if isinstance(v, np.ndarray)) + sum(
            h.nbytes for h in stream._hidden.values()
        )

    short, long = state_bytes(1.0), state_bytes(12.0)
    assert short == long
    history = model.params.enc_history + model.params.df_history
    assert max(longest) <= 50 + history


def test_model_unpacked_once_atomically(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOX_CACHE", str(tmp_path))
    folder = dfn_onnx.model_dir()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.ini", "df_dec.onnx", "enc.onnx", "erb_dec.onnx"]
    stamp = (folder / "enc.onnx").stat().st_mtime_ns
    assert dfn_onnx.model_dir() == folder and (folder / "enc.onnx").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no staging folder left behind
