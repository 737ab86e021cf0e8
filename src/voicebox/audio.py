"""The one audio type, and reading, writing, resampling and loudness at the edges.

Audio is float32 in [-1, 1], shaped [channels, samples], with its rate carried alongside.
Reading tries soundfile first and falls back to the ffmpeg binary shipped in imageio-ffmpeg.
Writing is atomic: a temporary file in the target folder, renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import socket
import stat
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioError

MIN_RATE = 1_000
MAX_RATE = 384_000
MAX_CHANNELS = 64
MAX_AMPLITUDE = 1e3
"""Float samples beyond this are not sound but a corrupt file (float audio lies within about ±1)."""
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
FFMPEG_WRITE = {".opus": ["-c:a", "libopus"], ".m4a": ["-c:a", "aac"], ".aac": ["-c:a", "aac"]}
# The one set of audio extensions every command, the server and batch use.
STREAM_EXTS = (".wav", ".flac", ".ogg", ".mp3")
"""Written block by block as they are made (StreamWriter: clean, read, batch clean)."""
WRITE_EXTS = (*STREAM_EXTS, *FFMPEG_WRITE)
"""Written by `save` and `encode` (the streamed ones, and ffmpeg's opus, m4a and aac)."""
READ_EXTS = (*WRITE_EXTS, ".oga", ".aif", ".aiff", ".caf", ".wma", ".webm")
"""Picked up when a folder or glob is searched for audio (any file `load` decodes is accepted
when named on its own)."""


def ext_list(exts: tuple[str, ...]) -> str:
    """Extensions as an error message lists them: '.wav .flac .ogg'."""
    return " ".join(exts)


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
    """Refuse sample arrays no engine should see: no channels, bad rates, NaN, infinity or absurd
    amplitudes (a corrupt float file would otherwise overflow every filter into noise)."""
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
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > MAX_AMPLITUDE:
        raise AudioError(
            f"{what} has samples up to {peak:.3g}; float audio lies within about ±1, "
            "so the file is corrupt"
        )


def _check_path(path: Path) -> None:
    """Refuse inputs that are not readable regular files, naming the reason (exit code 2)."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(f"{path}: symlink loop (the link leads back to itself)") from None
        if exc.errno == errno.ENOENT:
            if path.is_symlink():
                raise AudioError(f"{path}: broken symlink (its target does not exist)") from None
            raise AudioError(f"{path}: no such file") from None
        raise AudioError(os_error_message(exc, path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: not a regular file (a device, pipe or socket)")
    if st.st_size == 0:
        raise AudioError(f"{path}: file is empty")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied (the file is not readable)")


def missing(path: str | os.PathLike[str]) -> str:
    """Why `path` is not there, in words: a symlink loop, a broken symlink, or no such file."""
    path = Path(path)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path}: symlink loop (the link leads back to itself)"
        if path.is_symlink():
            return f"{path}: broken symlink (its target does not exist)"
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return os_error_message(exc, path)
    return f"{path}: no such file or folder"


def os_error_message(exc: OSError, path: str | os.PathLike[str]) -> str:
    """One line a user can act on for a failed file operation: full disk, read-only, permissions."""
    path = Path(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on {_mount_point(path)} (writing {path})"
    if code == errno.EROFS:
        return f"{path}: the file system at {_mount_point(path)} is read-only"
    if code in (errno.EACCES, errno.EPERM):
        return f"{path}: permission denied"
    if code == errno.ELOOP:
        return f"{path}: symlink loop (the link leads back to itself)"
    if code == errno.EFBIG:
        return f"{path}: file too large for this file system"
    if code == errno.EIO:
        return f"{path}: input/output error (the disk or device failed)"
    return f"{path}: {exc.strerror or exc}"


def _mount_point(path: Path) -> str:
    """The mount point holding `path` (or its nearest existing folder), for disk-full messages."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return str(here)


def _disk_full(folder: Path) -> bool:
    """Whether the file system holding `folder` has (almost) no space left for us."""
    try:
        vfs = os.statvfs(folder)
    except OSError:
        return False
    return vfs.f_bavail * vfs.f_frsize < 1 << 20


_SOUNDFILE_MAGIC = (
    b"RIFF",
    b"RIFX",
    b"RF64",
    b"riff",
    b"FORM",
    b"fLaC",
    b"OggS",
    b".snd",
    b"caff",
    b"NIST",
)
"""Containers handed to libsndfile, by their first bytes. Anything else (MP3 above all) goes to
ffmpeg, whose messages we capture: libsndfile's MP3 decoder prints to the terminal."""


def _for_ffmpeg(path: Path) -> bool:
    """Whether a file is for ffmpeg rather than libsndfile: MP3, or no container libsndfile
    knows by its first bytes (libsndfile would hand it to libmpg123, which prints)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return not head.startswith(_SOUNDFILE_MAGIC)


def _check_riff(path: Path) -> None:
    """A WAV whose data chunk claims more bytes than the file holds was cut short."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise AudioError(os_error_message(exc, path)) from None
    with f:
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


def _ffmpeg_decode_cmd(path: Path, channels: int) -> list[str]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)]
    return cmd + ["-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-"]


def _load_ffmpeg(path: Path) -> Audio:
    rate, channels = _probe_ffmpeg(path)
    proc = subprocess.run(_ffmpeg_decode_cmd(path, channels), capture_output=True, timeout=3600)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: cannot decode ({message[-1] if message else 'ffmpeg failed'})")
    data = np.frombuffer(proc.stdout, dtype="<f4")
    if data.size == 0:
        raise AudioError(f"{path}: contains no audio samples")
    data = data[: data.size - data.size % channels].reshape(-1, channels).T
    return Audio(np.ascontiguousarray(data), rate)


def load(path: str | os.PathLike[str], rate: int | None = None, mono: bool = False) -> Audio:
    """Read any common audio file into float32 [channels, n]; optionally resample and downmix.

    The result holds exactly the samples that decode: a file cut short gives a shorter result,
    never the length its header promised.
    """
    path = Path(path)
    _check_path(path)
    _check_riff(path)
    if _for_ffmpeg(path):
        audio = _load_ffmpeg(path)
    else:
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
            audio = _load_ffmpeg(path)  # what libsndfile cannot read (or loses sync on) at all
    if audio.frames == 0:
        raise AudioError(f"{path}: contains no audio samples")
    check_samples(audio.samples, audio.rate, str(path))
    if mono and audio.channels > 1:
        audio = Audio(audio.mono(), audio.rate)
    if rate is not None and rate != audio.rate:
        audio = audio.to_rate(rate)
    return audio


def info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(rate, channels, frames) of a file without reading its samples (soundfile formats).

    `frames` is what the header says: a file cut short holds fewer (readers stop at the real end).
    """
    path = Path(path)
    _check_path(path)
    _check_riff(path)
    if _for_ffmpeg(path):
        raise AudioError(f"{path}: not a readable audio file for soundfile (MP3 goes to ffmpeg)")
    try:
        meta = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    if meta.channels == 0:
        raise AudioError(f"{path}: audio has no channels")
    if not MIN_RATE <= meta.samplerate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {meta.samplerate} Hz is not supported")
    return meta.samplerate, meta.channels, meta.frames


def probe(path: str | os.PathLike[str]) -> tuple[int, int, float]:
    """(rate, channels, seconds) of any readable audio file, without decoding it: a cheap check
    that an upload is audio before work is accepted. AudioError when it is not."""
    path = Path(path)
    try:
        rate, channels, frames = info(path)
        return rate, channels, frames / rate
    except AudioError as exc:
        if "not a readable audio file" not in str(exc):
            raise
    rate, channels, seconds = _probe_ffmpeg_full(path)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz is not supported")
    return rate, channels, seconds


def subtype(path: str | os.PathLike[str]) -> str | None:
    """The sample format soundfile names for a file ("PCM_16", "FLOAT", ...); None for MP3 and
    what soundfile cannot read. Never prints: MP3s are not handed to libmpg123."""
    path = Path(path)
    if _for_ffmpeg(path):
        return None
    try:
        return sf.info(str(path)).subtype
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None


def stream(
    path: str | os.PathLike[str], block_seconds: float = 10.0
) -> tuple[int, int, int, Iterator[np.ndarray]]:
    """Open a long file for reading in blocks: (rate, channels, frames, iterator of [ch, n] blocks).

    Memory stays bounded by one block for every format: what soundfile cannot read is decoded by an
    ffmpeg pipe, and then `frames` is the duration ffmpeg reports. `frames` is an estimate for
    progress only: the blocks stop where decoding really ends (a file cut short yields what is
    there, the same samples `load` returns), never padding to the header's length.
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
        got = 0
        try:
            f = sf.SoundFile(path)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            yield from _stream_ffmpeg(path, block_seconds)[3]
            return
        with f:
            while True:
                try:
                    block = f.read(step, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    # Lost sync mid-file (a cut FLAC): decode the rest as `load` does, via ffmpeg.
                    yield from _ffmpeg_rest(path, block_seconds, got, exc)
                    return
                if len(block) == 0:
                    break
                block = np.ascontiguousarray(block.T)
                check_samples(block, rate, str(path))
                got += block.shape[1]
                yield block
        if got == 0:
            raise AudioError(f"{path}: contains no audio samples")

    return rate, channels, frames, blocks()


def _ffmpeg_rest(
    path: Path, block_seconds: float, skip: int, exc: Exception
) -> Iterator[np.ndarray]:
    """The samples after the first `skip`, decoded by ffmpeg (after libsndfile failed there)."""
    try:
        _, _, _, rest = _stream_ffmpeg(path, block_seconds, skip=skip)
    except AudioError:
        raise AudioError(f"{path}: cannot decode past {skip} samples ({exc})") from None
    yield from rest


def _stream_ffmpeg(
    path: Path, block_seconds: float, skip: int = 0
) -> tuple[int, int, int, Iterator[np.ndarray]]:
    """Decode through an ffmpeg pipe in blocks; the first `skip` frames are read and dropped."""
    rate, channels, seconds = _probe_ffmpeg_full(path)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz is not supported")
    step = max(1, int(block_seconds * rate))
    cmd = _ffmpeg_decode_cmd(path, channels)

    def blocks() -> Iterator[np.ndarray]:
        # ffmpeg's messages go to a file, not a pipe: a damaged file can print more than a pipe
        # holds, and a full pipe would stall ffmpeg (and us) forever.
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
        assert proc.stdout is not None
        got, dropped = 0, 0
        try:
            while True:
                raw = proc.stdout.read(step * channels * 4)
                if not raw:
                    break
                data = np.frombuffer(raw[: len(raw) - len(raw) % (channels * 4)], dtype="<f4")
                block = np.ascontiguousarray(data.reshape(-1, channels).T)
                if dropped < skip:
                    cut = min(skip - dropped, block.shape[1])
                    dropped += cut
                    block = block[:, cut:]
                    if block.shape[1] == 0:
                        continue
                check_samples(block, rate, str(path))
                got += block.shape[1]
                yield block
            if proc.wait() != 0:
                log.seek(0)
                message = log.read()[-4000:].decode(errors="replace").strip().splitlines()
                raise AudioError(
                    f"{path}: cannot decode ({message[-1] if message else 'ffmpeg failed'})"
                )
            if got == 0 and skip == 0:
                raise AudioError(f"{path}: contains no audio samples")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            log.close()

    return rate, channels, int(round(seconds * rate)), blocks()


def stream_mono(
    path: str | os.PathLike[str], rate: int, block_seconds: float = 10.0
) -> tuple[float, Iterator[np.ndarray]]:
    """A file as 1-D float32 blocks, downmixed and resampled to `rate` as it is read, in bounded
    memory: (estimated seconds, blocks). For long-file recognition and mark detection."""
    import soxr

    rate_in, _, frames, blocks = stream(path, block_seconds)

    def mono() -> Iterator[np.ndarray]:
        resampler = (
            None
            if rate_in == rate
            else soxr.ResampleStream(rate_in, rate, 1, dtype="float32", quality="VHQ")
        )
        for block in blocks:
            x = block.mean(axis=0, dtype=np.float32)
            if resampler is not None:
                x = resampler.resample_chunk(x)
            if len(x):
                yield np.asarray(x, dtype=np.float32)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                yield np.asarray(tail, dtype=np.float32)

    return frames / rate_in, mono()


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


TEMP_TAG = ".vbtmp-"
"""Temporary outputs are named `.NAME.vbtmp-HOST-PID-RANDOM.EXT`, so a rerun can tell its own
stale leftovers (their process is gone) from another run's files in progress."""


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temps(folder: str | os.PathLike[str], name: str) -> list[Path]:
    """Delete `name`'s temporary outputs in `folder` left by killed runs on this host (their
    process id is dead); returns what was removed. Live runs' temps are left alone."""
    removed = []
    host = _host_tag()
    try:
        entries = list(Path(folder).glob(f".{glob_escape(name)}{TEMP_TAG}{host}-*"))
    except OSError:
        return removed
    for entry in entries:
        rest = entry.name[len(name) + 1 + len(TEMP_TAG) + len(host) + 1 :]
        pid = rest.split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob's special characters made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def temp_file(folder: Path, name: str, suffix: str) -> Path:
    """Create an empty temporary file for output `name` in `folder` (named so reruns can clean it)."""
    remove_stale_temps(folder, name)
    prefix = f".{name}{TEMP_TAG}{_host_tag()}-{os.getpid()}-"
    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in _STORAGE_ERRORS:
                raise AudioError(os_error_message(exc, folder / name)) from None
            raise AudioError(
                f"{folder / name}: output folder {folder} is not writable ({exc.strerror})"
            ) from None
        os.close(fd)
        return path
    raise AudioError(f"{folder / name}: cannot create a temporary file beside it")


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def check_output(path: str | os.PathLike[str]) -> Path:
    """Refuse an output path before any work: its folder must exist and be writable, and the path
    must not be a folder. Cheap; every command calls it for every output before it starts."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise AudioError(f"{target}: output folder {folder} does not exist")
    if target.is_dir():
        raise AudioError(f"{target}: is a directory")
    read_only = False
    with contextlib.suppress(OSError):
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    if read_only:
        raise AudioError(f"{target}: the file system at {_mount_point(folder)} is read-only")
    if not os.access(folder, os.W_OK):
        raise AudioError(f"{target}: output folder {folder} is not writable")
    return target


_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
"""Write failures that are about the disk (not a closed pipe): named with the output's place."""


def check_audio_output(path: str | os.PathLike[str]) -> Path:
    """`check_output` for an audio file, whose extension must also be one `save` writes."""
    target = Path(path)
    ext = target.suffix.lower()
    if ext not in WRITE_EXTS:
        raise AudioError(f"{target}: cannot write '{ext}' files; use {ext_list(WRITE_EXTS)}")
    return check_output(target)


class Outputs:
    """Several outputs committed together or not at all: each gets a temporary file beside its
    target, and only when every one is complete are they renamed into place (0666 minus the
    umask, as other tools create files). On failure every temporary file is removed."""

    def __init__(self) -> None:
        self._temps: list[tuple[Path, Path]] = []

    def reserve(self, path: str | os.PathLike[str]) -> Path:
        """A temporary path that becomes `path` on commit."""
        target = check_output(path)
        folder = target.parent if str(target.parent) else Path(".")
        tmp = temp_file(folder, target.name, target.suffix)
        self._temps.append((tmp, target))
        return tmp

    def commit(self) -> None:
        """Rename every temporary file into place."""
        mode = 0o666 & ~_umask()
        try:
            for tmp, target in self._temps:
                os.chmod(tmp, mode)
                os.replace(tmp, target)
        except OSError as exc:
            raise AudioError(os_error_message(exc, target)) from None
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove every temporary file not yet committed."""
        for tmp, _ in self._temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._temps = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            target = self._temps[-1][1] if self._temps else None
            self.discard()
            if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRORS and target is not None:
                raise AudioError(os_error_message(exc, target)) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    A full disk or another write failure becomes one AudioError naming the place
    ("no space left on /mnt/x"); the temporary file never stays behind.
    """
    target = Path(path)
    outputs = Outputs()
    tmp = outputs.reserve(target)
    try:
        yield tmp
    except OSError as exc:
        outputs.discard()
        if exc.errno is None or exc.errno == errno.EPIPE:
            raise
        raise AudioError(os_error_message(exc, target)) from None
    except BaseException:
        outputs.discard()
        raise
    outputs.commit()


def wav_stream_header(rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A PCM WAV header for a stream of unknown length: RIFF and data sizes 0xFFFFFFFF, the
    convention ffmpeg and streaming speech APIs use and players read as "until the stream ends"."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] ([n] or [channels, n]) as interleaved little-endian 16-bit PCM."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.T
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


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
    raise AudioError(f"cannot write '{ext}' files; use one of {ext_list(WRITE_EXTS)}")


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


def save(
    audio: Audio,
    path: str | os.PathLike[str],
    subtype: str | None = None,
    outputs: Outputs | None = None,
) -> Path:
    """Write audio atomically; the format follows the extension (WRITE_EXTS: .wav ... .aac).

    With `outputs`, the file is committed together with that group's other outputs."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_EXTS:
        raise AudioError(f"{path}: cannot write '{ext}' files; use {ext_list(WRITE_EXTS)}")
    check_output(path)
    payload = encode(audio, ext, subtype)
    if outputs is not None:
        tmp = outputs.reserve(path)
        try:
            tmp.write_bytes(payload)
        except OSError as exc:
            raise AudioError(os_error_message(exc, path)) from None
        return path
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def write_error(path: str | os.PathLike[str], exc: Exception) -> AudioError:
    """The one-line error for a failed write to `path`: a full disk is named as such (libsndfile
    says only "System error.", so the free space is checked)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if isinstance(exc, OSError) and exc.errno is not None:
        return AudioError(os_error_message(exc, path))
    if _disk_full(folder):
        return AudioError(f"no space left on {_mount_point(folder)} (writing {path})")
    return AudioError(f"{path}: cannot write ({exc})")


class StreamWriter:
    """Write blocks to a WAV/FLAC/OGG/MP3 file as they are produced; atomic on close, removed on
    failure. With `outputs`, the file is committed with that group's other outputs instead."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate: int,
        channels: int,
        subtype: str | None = None,
        outputs: Outputs | None = None,
    ):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in STREAM_EXTS:
            raise AudioError(f"{self.path}: streaming output supports {ext_list(STREAM_EXTS)}")
        if ext == ".mp3" and channels > 2:
            raise AudioError(f"{self.path}: MP3 holds at most 2 channels; use .wav or .flac")
        self._own = outputs is None
        self._outputs = Outputs() if outputs is None else outputs
        self._tmp = self._outputs.reserve(self.path)
        self._closed = False
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
            self._discard()
            raise AudioError(f"{self.path}: cannot write this format here ({exc})") from None

    def _failed(self, exc: Exception) -> AudioError:
        return write_error(self.path, exc)

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def write(self, block: np.ndarray) -> None:
        """Append a [channels, n] block."""
        try:
            self._file.write(np.clip(np.asarray(block, dtype=np.float32), -1.0, 1.0).T)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise self._failed(exc) from None

    def close(self, ok: bool = True) -> None:
        """Finish the file: commit it when `ok` (and it owns its commit), else remove it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.close()
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self._discard()
            if ok:
                raise self._failed(exc) from None
            return
        if not ok:
            self._discard()
        elif self._own:
            self._outputs.commit()

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(ok=exc_type is None)
