"""Speaker embeddings (resemblyzer GE2E, weights in the wheel): who is speaking, as a unit vector.

Resemblyzer's network is exported once to ONNX in the cache and run by onnxruntime (already loaded
for Kokoro and Piper); torch is imported only for that one-time export, or when the export fails.
Its preprocessing and mel spectrogram are computed here with numpy, the same operations resemblyzer
and librosa perform and the same float32 values: librosa's signal stack (numba, soxr, scipy.signal)
cost ~190 MB per process for one 40-band spectrogram, and torch ~200 MB more.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..audio import Audio
from ..errors import EngineError

log = logging.getLogger(__name__)

RATE = 16_000
PARTIAL_FRAMES = 160  # resemblyzer's partial utterance: 1.6 s of 10 ms frames
PARTIAL_BATCH = 16  # partials the ONNX network runs at once (~20 s of speech)
ONNX_NAME = "resemblyzer-{version}-voice-encoder.onnx"

Encoder = Callable[[np.ndarray], np.ndarray]
"""Partial mels [batch, frames, N_MELS] float32 -> their unit embeddings [batch, 256] float32."""


def _torch_voice_encoder():  # noqa: ANN202 - resemblyzer.VoiceEncoder (a torch module)
    """Resemblyzer's network as it ships, in torch: for the export, or when it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise EngineError(
            f"speaker encoder not installed ({exc.name}); reinstall voicebox"
        ) from None
    return VoiceEncoder("cpu", verbose=False)


def _onnx_path() -> Path:
    """Where the exported network lives: named by the resemblyzer release its weights came from."""
    from ..config import cache_dir

    try:
        version = importlib.metadata.version("resemblyzer")
    except importlib.metadata.PackageNotFoundError:
        raise EngineError(
            "speaker encoder not installed (resemblyzer); reinstall voicebox"
        ) from None
    return cache_dir() / ONNX_NAME.format(version=version)


def _export(path: Path) -> bool:
    """Write resemblyzer's network to `path` as ONNX (atomically); False when the export fails."""
    from ..audio import atomic_path

    net = _torch_voice_encoder()
    import torch

    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (torch.zeros(2, PARTIAL_FRAMES, N_MELS),),
                str(tmp),
                input_names=["mels"],
                output_names=["embeds"],
                dynamic_axes={"mels": {0: "batch", 1: "frames"}, "embeds": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # noqa: BLE001 - an export problem must not stop the embedding
        log.info("speaker encoder ONNX export failed (%s); running it in torch", exc)
        return False
    return True


def _torch_encoder() -> Encoder:
    """The network in torch, as a function of numpy partial mels."""
    import torch

    net = _torch_voice_encoder()

    def run(mels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(mels)).numpy()

    return run


@functools.cache
def _encoder() -> Encoder:
    """The network, loaded once: onnxruntime on the exported file (exported on first use, so later
    runs never import torch), else resemblyzer's torch module."""
    path = _onnx_path()
    if not path.is_file() and not _export(path):
        return _torch_encoder()
    import onnxruntime as ort

    from ..config import threads

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - a damaged cache file: torch still works
        log.info("speaker encoder ONNX file unusable (%s); running it in torch", exc)
        return _torch_encoder()

    def run(mels: np.ndarray) -> np.ndarray:
        # in batches: onnxruntime's arena keeps the largest batch's memory for the process (~50 MB
        # for a minute of speech at once); the partials come out the same, bit for bit
        parts = [
            session.run(None, {"mels": mels[i : i + PARTIAL_BATCH]})[0]
            for i in range(0, len(mels), PARTIAL_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 256), np.float32)

    return run


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


INT16_MAX = 2**15 - 1
TARGET_DBFS = -30  # resemblyzer's audio_norm_target_dBFS
VAD_WINDOW = 480  # its 30 ms voice-activity window
VAD_AVERAGE = 8  # windows averaged to smooth the voice flags
VAD_MAX_SILENCE = 6  # silent windows kept on each side of speech


def normalize_volume(wav: np.ndarray) -> np.ndarray:
    """Raise `wav` to -30 dBFS (never lower it), as resemblyzer's normalize_volume does."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
        change = TARGET_DBFS - 20 * np.log10(rms / INT16_MAX)
        if change < 0:
            return wav
        return wav * (10 ** (change / 20))


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """`wav` with silences shortened to at most VAD_MAX_SILENCE windows, by webrtcvad as in
    resemblyzer's trim_long_silences (its C module directly: the wrapper imports pkg_resources)."""
    try:
        import _webrtcvad
    except ImportError:
        raise EngineError("webrtcvad not installed; reinstall voicebox") from None
    wav = wav[: len(wav) - len(wav) % VAD_WINDOW]
    with np.errstate(invalid="ignore"):
        pcm = np.round(wav * INT16_MAX).astype(np.int16).tobytes()
    vad = _webrtcvad.create()
    _webrtcvad.init(vad)
    _webrtcvad.set_mode(vad, 3)
    step = 2 * VAD_WINDOW
    flags = np.array(
        [
            _webrtcvad.process(vad, RATE, pcm[i : i + step], VAD_WINDOW)
            for i in range(0, len(pcm), step)
        ],
        dtype=bool,
    )
    # a moving average of width VAD_AVERAGE, rounded (resemblyzer's moving_average)
    width = VAD_AVERAGE
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    ret = np.cumsum(padded, dtype=float)
    ret[width:] = ret[width:] - ret[:-width]
    mask = np.round(ret[width - 1 :] / width).astype(bool)
    # dilated by VAD_MAX_SILENCE windows in all (scipy's binary_dilation with a flat structure)
    half = VAD_MAX_SILENCE // 2
    runs = np.concatenate(([0], np.cumsum(np.pad(mask, half).astype(np.int64))))
    mask = runs[2 * half + 1 :] - runs[: -(2 * half + 1)] > 0
    return wav[np.repeat(mask, VAD_WINDOW)]


def partial_slices(n_samples: int) -> tuple[list[slice], list[slice]]:
    """Where resemblyzer's embed_utterance cuts `n_samples` into 1.6 s partials (waveform and mel
    slices), at its default rate and least coverage of the last one."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    frame_step = int(np.round((RATE / PARTIAL_RATE) / HOP))
    wav_slices, mel_slices = [], []
    for i in range(0, max(1, n_frames - PARTIAL_FRAMES + frame_step + 1), frame_step):
        mel_slices.append(slice(i, i + PARTIAL_FRAMES))
        wav_slices.append(slice(i * HOP, (i + PARTIAL_FRAMES) * HOP))
    last = wav_slices[-1]
    coverage = (n_samples - last.start) / (last.stop - last.start)
    if coverage < MIN_COVERAGE and len(mel_slices) > 1:
        mel_slices, wav_slices = mel_slices[:-1], wav_slices[:-1]
    return wav_slices, mel_slices


def embed(audio: Audio) -> np.ndarray:
    """A 256-d unit vector describing the voice in `audio` (at least ~1 s of speech).

    Resemblyzer's `preprocess_wav` and `embed_utterance`, computed here: the same partials,
    network and mean, without importing resemblyzer (which imports torch).
    """
    x = audio.to_rate(RATE).mono() if audio.rate != RATE or audio.channels > 1 else audio.samples[0]
    x = np.asarray(x, dtype=np.float32)
    wav = trim_long_silences(normalize_volume(x))
    if len(wav) < RATE // 4:
        wav = x
    encoder = _encoder()
    wav_slices, mel_slices = partial_slices(len(wav))
    if wav_slices[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
    mel = mel_spectrogram(wav)
    partials = encoder(np.array([mel[s] for s in mel_slices]))
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
