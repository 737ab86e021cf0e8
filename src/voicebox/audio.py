"""The one audio type, and reading, writing, resampling and loudness at the edges.

Audio is float32 in [-1, 1], shaped [channels, samples], with its rate carried alongside.
Reading tries soundfile first and falls back to the ffmpeg binary shipped in imageio-ffmpeg.
Writing is atomic: a temporary file in the target folder, renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioError

MIN_RATE = 1_000
MAX_RATE = 384_000
MAX_CHANNELS = 64
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
FFMPEG_WRITE = {".opus": ["-c:a", "libopus"], ".m4a": ["-c:a", "aac"], ".aac": ["-c:a", "aac"]}


@dataclass
class Audio:
    """Samples as float32 [channels, n] plus their sample rate."""

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2:
            raise AudioError(f"audio must be [channels, samples], got shape {samples.shape}")
        self.samples = samples
        self.rate = int(self.rate)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def mono(self) -> np.ndarray:
        """The channel average as a 1-D float32 array."""
        return self.samples.mean(axis=0).astype(np.float32)

    def to_rate(self, rate: int) -> Audio:
        """This audio resampled to `rate` (soxr, high quality)."""
        return Audio(resample(self.samples, self.rate, rate), rate)


def check_samples(samples: np.ndarray, rate: int, what: str = "audio") -> None:
    """Refuse sample arrays no engine should see: no channels, bad rates, NaN or infinity."""
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise AudioError(f"{what} has no channels")
    if samples.shape[0] > MAX_CHANNELS:
        raise AudioError(
            f"{what} has {samples.shape[0]} channels; at most {MAX_CHANNELS} are supported"
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"{what} has a sample rate of {rate} Hz; supported: {MIN_RATE}-{MAX_RATE} Hz"
        )
    if not np.isfinite(samples).all():
        raise AudioError(f"{what} contains NaN or infinite samples")


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty")


def _check_riff(path: Path) -> None:
    """A WAV whose data chunk claims more bytes than the file holds was cut short."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return
        size = path.stat().st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                if chunk_size == 0xFFFFFFFF:
                    return  # "unknown length": a streamed WAV (as HTTP speech APIs send), not cut
                if head[:4] == b"RIFF" and pos + 8 + chunk_size > size:
                    raise AudioError(
                        f"{path}: truncated WAV (header promises {chunk_size} data bytes, "
                        f"file holds {size - pos - 8})"
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)
        raise AudioError(f"{path}: WAV file has no data chunk (truncated or corrupt)")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _probe_ffmpeg(path: Path) -> tuple[int, int]:
    """Sample rate and channel count of the first audio stream, from ffmpeg's banner."""
    rate, channels, _ = _probe_ffmpeg_full(path)
    return rate, channels


def _probe_ffmpeg_full(path: Path) -> tuple[int, int, float]:
    """Sample rate, channel count and duration (seconds, 0 if unknown) from ffmpeg's banner."""
    import re

    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Audio: [^\n]*?(\d+) Hz, ([^,\n]+)", proc.stderr)
    if not match:
        raise AudioError(f"{path}: not a readable audio file")
    layout = match.group(2).strip()
    named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}
    if layout in named:
        channels = named[layout]
    else:
        found = re.match(r"(\d+) channels", layout)
        channels = int(found.group(1)) if found else 2
    if channels < 1:
        raise AudioError(f"{path}: audio has no channels")
    length = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", proc.stderr)
    seconds = 0.0
    if length:
        seconds = int(length.group(1)) * 3600 + int(length.group(2)) * 60 + float(length.group(3))
    return int(match.group(1)), channels, seconds


def _load_ffmpeg(path: Path) -> Audio:
    rate, channels = _probe_ffmpeg(path)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)]
    cmd += ["-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=3600)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: cannot decode ({message[-1] if message else 'ffmpeg failed'})")
    data = np.frombuffer(proc.stdout, dtype="<f4")
    if data.size == 0:
        raise AudioError(f"{path}: contains no audio samples")
    data = data[: data.size - data.size % channels].reshape(-1, channels).T
    return Audio(np.ascontiguousarray(data), rate)


def load(path: str | os.PathLike[str], rate: int | None = None, mono: bool = False) -> Audio:
    """Read any common audio file into float32 [channels, n]; optionally resample and downmix."""
    path = Path(path)
    _check_path(path)
    _check_riff(path)
    try:
        with sf.SoundFile(path) as f:
            if f.channels == 0:
                raise AudioError(f"{path}: audio has no channels")
            if not MIN_RATE <= f.samplerate <= MAX_RATE:
                raise AudioError(f"{path}: sample rate {f.samplerate} Hz is not supported")
            data = f.read(dtype="float32", always_2d=True).T
        audio = Audio(np.ascontiguousarray(data), f.samplerate)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        audio = _load_ffmpeg(path)
    if audio.frames == 0:
        raise AudioError(f"{path}: contains no audio samples")
    check_samples(audio.samples, audio.rate, str(path))
    if mono and audio.channels > 1:
        audio = Audio(audio.mono(), audio.rate)
    if rate is not None and rate != audio.rate:
        audio = audio.to_rate(rate)
    return audio


def info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(rate, channels, frames) of a file without reading its samples (soundfile formats)."""
    path = Path(path)
    _check_path(path)
    _check_riff(path)
    try:
        meta = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    if meta.channels == 0:
        raise AudioError(f"{path}: audio has no channels")
    if not MIN_RATE <= meta.samplerate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {meta.samplerate} Hz is not supported")
    return meta.samplerate, meta.channels, meta.frames


def stream(
    path: str | os.PathLike[str], block_seconds: float = 10.0
) -> tuple[int, int, int, Iterator[np.ndarray]]:
    """Open a long file for reading in blocks: (rate, channels, frames, iterator of [ch, n] blocks).

    Memory stays bounded by one block for every format: what soundfile cannot read is decoded by an
    ffmpeg pipe, and then `frames` is the duration ffmpeg reports (an estimate, for progress only).
    """
    path = Path(path)
    try:
        rate, channels, frames = info(path)
    except AudioError as exc:
        if "not a readable audio file" not in str(exc):
            raise
        return _stream_ffmpeg(path, block_seconds)
    step = max(1, int(block_seconds * rate))

    def blocks() -> Iterator[np.ndarray]:
        with sf.SoundFile(path) as f:
            for block in f.blocks(blocksize=step, dtype="float32", always_2d=True):
                block = np.ascontiguousarray(block.T)
                check_samples(block, rate, str(path))
                yield block

    return rate, channels, frames, blocks()


def _stream_ffmpeg(path: Path, block_seconds: float) -> tuple[int, int, int, Iterator[np.ndarray]]:
    rate, channels, seconds = _probe_ffmpeg_full(path)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz is not supported")
    step = max(1, int(block_seconds * rate))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)]
    cmd += ["-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-"]

    def blocks() -> Iterator[np.ndarray]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        got = 0
        try:
            while True:
                raw = proc.stdout.read(step * channels * 4)
                if not raw:
                    break
                data = np.frombuffer(raw[: len(raw) - len(raw) % (channels * 4)], dtype="<f4")
                block = np.ascontiguousarray(data.reshape(-1, channels).T)
                check_samples(block, rate, str(path))
                got += block.shape[1]
                yield block
            message = proc.stderr.read().decode(errors="replace").strip().splitlines()
            if proc.wait() != 0:
                raise AudioError(
                    f"{path}: cannot decode ({message[-1] if message else 'ffmpeg failed'})"
                )
            if got == 0:
                raise AudioError(f"{path}: contains no audio samples")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    return rate, channels, int(round(seconds * rate)), blocks()


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample [channels, n] or [n] float32 samples with soxr (VHQ)."""
    import soxr

    if rate_in == rate_out:
        return np.asarray(samples, dtype=np.float32)
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        return soxr.resample(x, rate_in, rate_out, quality="VHQ").astype(np.float32)
    out = soxr.resample(np.ascontiguousarray(x.T), rate_in, rate_out, quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, x.shape[0]).T)


class LoudnessMeter:
    """Integrated loudness (ITU-R BS.1770-4, EBU R128) measured block by block in bounded memory.

    K-weighting filters come from pyloudnorm; the gating keeps one energy per 100 ms per channel.
    """

    GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)

    def __init__(self, rate: int, channels: int) -> None:
        import pyloudnorm

        self.rate, self.channels = int(rate), int(channels)
        self._filters = []
        for stage in pyloudnorm.Meter(rate)._filters.values():
            state = np.zeros((channels, max(len(stage.a), len(stage.b)) - 1))
            self._filters.append((stage.b, stage.a, stage.passband_gain, state))
        self._weights = np.array([self.GAINS[c] if c < 5 else 1.0 for c in range(channels)])
        self._total = 0
        self._energy = np.zeros(channels)
        self._marks: list[np.ndarray] = [np.zeros(channels)]
        self.peak = 0.0

    def add(self, block: np.ndarray) -> None:
        """Measure the next [channels, n] block."""
        from scipy import signal

        x = np.asarray(block, dtype=np.float64)
        if x.shape[1] == 0:
            return
        self.peak = max(self.peak, float(np.abs(x).max()))
        for i, (b, a, gain, state) in enumerate(self._filters):
            x, state = signal.lfilter(b, a, x, axis=-1, zi=state)
            x = gain * x
            self._filters[i] = (b, a, gain, state)
        cumulative = np.cumsum(x * x, axis=-1)
        start = self._total
        self._total += x.shape[1]
        while True:
            edge = int(len(self._marks) * self.rate / 10)
            if edge > self._total:
                break
            self._marks.append(self._energy + cumulative[:, edge - start - 1])
        self._energy = self._energy + cumulative[:, -1]

    def integrated(self) -> float:
        """Integrated loudness in LUFS of everything measured so far (-inf for silence)."""
        marks = np.array(self._marks)
        if len(marks) >= 5:
            z = (marks[4:] - marks[:-4]) / (0.4 * self.rate)
        elif self._total:
            z = (self._energy / self._total)[None, :]
        else:
            return float("-inf")
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10 * np.log10(z @ self._weights)
        gated = z[levels >= -70.0]
        if len(gated) == 0:
            return float("-inf")
        relative = -0.691 + 10 * np.log10(gated.mean(axis=0) @ self._weights) - 10.0
        gated = z[(levels > relative) & (levels > -70.0)]
        if len(gated) == 0:
            return float("-inf")
        return float(-0.691 + 10 * np.log10(gated.mean(axis=0) @ self._weights))


def loudness(audio: Audio) -> float:
    """Integrated loudness in LUFS (EBU R128 / ITU-R BS.1770, pyloudnorm's K-weighting)."""
    meter = LoudnessMeter(audio.rate, audio.channels)
    meter.add(audio.samples)
    return meter.integrated()


def loudness_gain(
    current_lufs: float, target_lufs: float, peak: float, limit: float = 0.99
) -> float:
    """Linear gain that brings `current_lufs` to `target_lufs` without pushing `peak` past `limit`."""
    if not np.isfinite(current_lufs) or peak <= 0:
        return 1.0
    gain = 10 ** ((target_lufs - current_lufs) / 20)
    if peak * gain > limit:
        gain = limit / peak
    return float(gain)


def normalize_loudness(audio: Audio, target_lufs: float, peak: float = 0.99) -> Audio:
    """Audio scaled to the target integrated loudness, limited so no sample exceeds `peak`."""
    top = float(np.abs(audio.samples).max()) if audio.frames else 0.0
    gain = loudness_gain(loudness(audio), target_lufs, top, peak)
    return Audio(audio.samples * gain, audio.rate)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise AudioError(f"{target}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise AudioError(f"{target}: output folder {folder} is not writable")
    if target.is_dir():
        raise AudioError(f"{target}: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=folder)
    except OSError as exc:
        raise AudioError(
            f"{target}: output folder {folder} is not writable ({exc.strerror})"
        ) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def encode(audio: Audio, fmt: str = "wav", subtype: str | None = None) -> bytes:
    """Encode audio to bytes in a container named by extension (wav, flac, ogg, mp3, opus, m4a)."""
    ext = "." + fmt.lower().lstrip(".")
    check_samples(audio.samples, audio.rate)
    if ext == ".mp3" and audio.channels > 2:
        raise AudioError(
            f"MP3 holds at most 2 channels, this audio has {audio.channels}; use .wav or .flac"
        )
    data = np.clip(audio.samples, -1.0, 1.0).T
    if ext in WRITE_FORMATS:
        buf = io.BytesIO()
        if ext == ".wav" and subtype is None:
            subtype = "PCM_16"
        sf.write(buf, data, audio.rate, format=WRITE_FORMATS[ext], subtype=subtype)
        return buf.getvalue()
    if ext in FFMPEG_WRITE:
        return _encode_ffmpeg(audio, ext)
    raise AudioError(f"cannot write '{ext}' files; use one of .wav .flac .ogg .mp3 .opus .m4a")


def _encode_ffmpeg(audio: Audio, ext: str) -> bytes:
    """Opus, M4A and AAC through the bundled ffmpeg (via a temporary file: MP4 needs seeking)."""
    rate = audio.rate
    if ext == ".opus" and rate not in (8000, 12000, 16000, 24000, 48000):
        audio, rate = audio.to_rate(48000), 48000
    data = np.clip(audio.samples, -1.0, 1.0).T
    container = {".opus": "ogg", ".m4a": "ipod", ".aac": "adts"}[ext]
    codec = list(FFMPEG_WRITE[ext])
    if ext == ".opus" and audio.channels > 2:
        codec += ["-mapping_family", "1" if audio.channels <= 8 else "255"]
    with tempfile.TemporaryDirectory(prefix="voicebox-") as folder:
        out = Path(folder) / f"out{ext}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-f", "f32le"]
        cmd += ["-ar", str(rate), "-ac", str(audio.channels), "-i", "-"]
        cmd += codec + ["-f", container, "-y", str(out)]
        proc = subprocess.run(
            cmd, input=np.ascontiguousarray(data, dtype="<f4").tobytes(), capture_output=True
        )
        if proc.returncode != 0 or not out.exists():
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise AudioError(f"cannot encode {ext[1:]}: {lines[-1] if lines else 'ffmpeg failed'}")
        return out.read_bytes()


def save(audio: Audio, path: str | os.PathLike[str], subtype: str | None = None) -> Path:
    """Write audio atomically; the format follows the extension (.wav .flac .ogg .mp3 .opus .m4a)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_FORMATS and ext not in FFMPEG_WRITE:
        raise AudioError(f"{path}: cannot write '{ext}' files; use .wav .flac .ogg .mp3 .opus .m4a")
    payload = encode(audio, ext, subtype)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


class StreamWriter:
    """Write blocks to a WAV/FLAC/OGG/MP3 file as they are produced; atomic on close, removed on failure."""

    def __init__(
        self, path: str | os.PathLike[str], rate: int, channels: int, subtype: str | None = None
    ):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in (".wav", ".flac", ".ogg", ".mp3"):
            raise AudioError(f"{self.path}: streaming output supports .wav .flac .ogg .mp3")
        if ext == ".mp3" and channels > 2:
            raise AudioError(f"{self.path}: MP3 holds at most 2 channels; use .wav or .flac")
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        if subtype is None and ext == ".wav":
            subtype = "PCM_16"
        try:
            self._file = sf.SoundFile(
                self._tmp,
                "w",
                samplerate=rate,
                channels=channels,
                format=WRITE_FORMATS[ext],
                subtype=subtype,
            )
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            self._ctx.__exit__(AudioError, None, None)
            raise AudioError(f"{self.path}: cannot write this format here ({exc})") from None

    def write(self, block: np.ndarray) -> None:
        self._file.write(np.clip(np.asarray(block, dtype=np.float32), -1.0, 1.0).T)

    def close(self, ok: bool = True) -> None:
        self._file.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(AudioError, AudioError("aborted"), None)

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(ok=exc_type is None)
