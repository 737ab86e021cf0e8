"""Speaker embeddings (resemblyzer GE2E, weights in the wheel): who is speaking, as a unit vector.

Resemblyzer's network runs as it ships (torch); its mel spectrogram is computed here with numpy, the
same operations librosa performs and the same float32 values: librosa's signal stack (numba, soxr,
scipy.signal) cost ~190 MB of memory per process for one 40-band spectrogram.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..audio import Audio
from ..errors import EngineError

RATE = 16_000


@functools.cache
def _encoder():  # noqa: ANN202 - returns resemblyzer.VoiceEncoder
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise EngineError(
            f"speaker encoder not installed ({exc.name}); reinstall voicebox"
        ) from None
    return VoiceEncoder("cpu", verbose=False)


N_FFT = 400  # resemblyzer's 25 ms window at 16 kHz
HOP = 160  # its 10 ms step
N_MELS = 40
# resemblyzer's embed_utterance defaults: partials per second, and the least share of the last one
PARTIAL_RATE = 1.3
MIN_COVERAGE = 0.75


def _hz_to_mel(hz: float) -> float:
    """Slaney's mel scale (librosa's default), for one frequency."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    if hz < min_log_hz:
        return hz / f_sp
    return min_log_hz / f_sp + float(np.log(hz / min_log_hz) / (np.log(6.4) / 27.0))


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Slaney's mel scale back to Hz, for an array."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@functools.cache
def _mel_basis() -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1] float32 Slaney-normalised triangles from 0 Hz to Nyquist, computed
    as librosa.filters.mel computes them."""
    fftfreqs = np.fft.rfftfreq(n=N_FFT, d=1.0 / RATE)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((N_MELS, N_FFT // 2 + 1), dtype=np.float32)
    for i in range(N_MELS):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS]))[:, np.newaxis]
    return weights


@functools.cache
def _window() -> np.ndarray:
    """The periodic Hann window as scipy.signal.get_window("hann", N_FFT) makes it, [N_FFT, 1]."""
    fac = np.linspace(-np.pi, np.pi, N_FFT + 1, dtype=np.float64)
    w = np.zeros(N_FFT + 1, dtype=np.float64)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1, None]


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """[frames, N_MELS] float32 power mel spectrogram of 16 kHz `wav`, equal to resemblyzer's
    `wav_to_mel_spectrogram` (librosa's centred, zero-padded STFT) without loading librosa."""
    y = np.pad(np.asarray(wav, dtype=np.float32), N_FFT // 2)
    n = 1 + (len(y) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        y, shape=(N_FFT, n), strides=(y.strides[0], HOP * y.strides[0]), writeable=False
    )
    spec = np.zeros((N_FFT // 2 + 1, n), dtype=np.complex64, order="F")
    spec[:] = np.fft.rfft(_window() * frames, axis=-2)
    power = np.abs(spec) ** 2.0
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(), optimize=True)
    return mel.astype(np.float32).T


def embed(audio: Audio) -> np.ndarray:
    """A 256-d unit vector describing the voice in `audio` (at least ~1 s of speech).

    Resemblyzer's `embed_utterance` with the spectrogram above: the same partials, network and mean.
    """
    import torch
    from resemblyzer import preprocess_wav

    x = audio.to_rate(RATE).mono() if audio.rate != RATE or audio.channels > 1 else audio.samples[0]
    x = np.asarray(x, dtype=np.float32)
    wav = preprocess_wav(x)  # already 16 kHz: its resampling (a no-op here) would load librosa
    if len(wav) < RATE // 4:
        wav = x
    encoder = _encoder()
    wav_slices, mel_slices = encoder.compute_partial_slices(len(wav), PARTIAL_RATE, MIN_COVERAGE)
    if wav_slices[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
    mel = mel_spectrogram(wav)
    with torch.no_grad():
        partials = encoder(torch.from_numpy(np.array([mel[s] for s in mel_slices]))).cpu().numpy()
    raw = np.mean(partials, axis=0)
    return np.asarray(raw / np.linalg.norm(raw, 2), dtype=np.float32)


def release() -> None:
    """Drop the loaded encoder (a long job frees it between stages; the next embed reloads it)."""
    _encoder.cache_clear()


def similarity(a: Audio | np.ndarray, b: Audio | np.ndarray) -> float:
    """Cosine similarity of two voices (embeddings or audio); same speaker ≈ 0.8+, different ≈ 0.4–0.6."""
    ea = a if isinstance(a, np.ndarray) else embed(a)
    eb = b if isinstance(b, np.ndarray) else embed(b)
    return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-9))
