"""Signal shaping shared by clean, read and edit: PSOLA pitch shift and time stretch, true peak,
a true-peak limiter, loudness normalisation that lands on its target, mains-hum notches, and the
helpers that fit generated words to a recording (frame levels, pauses, fades, spectral tilt,
level, the room's noise bed).

Pitch and tempo use Praat's pitch-synchronous overlap-add (praat-parselmouth): it moves the pitch
of each glottal period and repeats or drops whole periods, so formants, and with them the voice
and the words, stay where they were (a phase-vocoder shift moves the formants and smears the
consonants). Loudness is EBU R128 / ITU-R BS.1770 integrated loudness; true peak is the 4x
oversampled peak (BS.1770-4 annex 2), limited with a look-ahead gain that never lets it through.
Hum is found by a spectral peak test at 50 or 60 Hz and its harmonics and notched while streaming.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .errors import InputError

MIN_F0, MAX_F0 = 50.0, 600.0
"""Pitch range Praat analyses for PSOLA (covers low male to child voices)."""
PSOLA_STEP = 0.01
MIN_PSOLA_SECONDS = 0.1
"""Shorter signals have too few periods to analyse; they are left as they are."""
OVERSAMPLE = 4
TRUE_PEAK_CEILING = -1.0
"""dBTP: the usual delivery ceiling (EBU R128, streaming services)."""
LOUDNESS_TOLERANCE = 0.5
"""LU: how far the measured integrated loudness may end from the target."""
LIMITER_WINDOW = 0.005
"""Seconds of look-ahead: the limiter's gain eases down over 2 x this before a peak."""
LIMITER_HOLD = 0.015
"""Seconds the gain is held after a peak before it eases back, so it does not flutter."""
MAX_PASSES = 6


# ---------------------------------------------------------------- pitch and tempo (PSOLA)


def _manipulate(x: np.ndarray, rate: int, semitones: float, factor: float) -> np.ndarray | None:
    """PSOLA resynthesis of mono `x` with pitch moved by `semitones` and duration times `factor`;
    None when Praat finds nothing to work on."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=rate)
    try:
        manipulation = call(sound, "To Manipulation", PSOLA_STEP, MIN_F0, MAX_F0)
        if semitones:
            tier = call(manipulation, "Extract pitch tier")
            call(tier, "Shift frequencies", sound.xmin, sound.xmax, semitones, "semitones")
            call([tier, manipulation], "Replace pitch tier")
        if factor != 1.0:
            durations = call("Create DurationTier", "tempo", sound.xmin, sound.xmax)
            call(durations, "Add point", sound.xmin, factor)
            call([manipulation, durations], "Replace duration tier")
        out = call(manipulation, "Get resynthesis (overlap-add)")
    except parselmouth.PraatError:
        return None
    return np.asarray(out.values[0], np.float32)


def psola(x: np.ndarray, rate: int, semitones: float = 0.0, factor: float = 1.0) -> np.ndarray:
    """Mono `x` with its pitch moved by `semitones` and made `factor` times as long (0.5: twice as
    fast) in one PSOLA pass, formants kept; the result has round(len(x) * factor) samples."""
    x = np.asarray(x, np.float32)
    if not np.isfinite(factor) or factor <= 0:
        raise InputError(f"time-stretch factor must be a positive number, got {factor}")
    if not np.isfinite(semitones):
        raise InputError(f"pitch shift must be a number of semitones, got {semitones}")
    target = int(round(x.size * factor))
    stretch = abs(factor - 1.0) >= 1e-3
    y = None
    if (semitones or stretch) and x.size >= int(MIN_PSOLA_SECONDS * rate):
        y = _manipulate(x, rate, float(semitones), float(factor) if stretch else 1.0)
    if y is None:  # nothing to shift, or too short to hold a pitch period: change length only
        y = _resample_length(x, target) if target != x.size else x
    y = y[:target] if y.size >= target else np.pad(y, (0, target - y.size))
    return np.clip(y, -1.0, 1.0)


def pitch_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Mono `x` with its pitch moved by `semitones`, same length, formants kept (PSOLA)."""
    return psola(x, rate, semitones, 1.0)


def time_stretch(x: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Mono `x` made `factor` times as long (0.5: twice as fast), pitch and formants kept (PSOLA)."""
    return psola(x, rate, 0.0, factor)


def _resample_length(x: np.ndarray, n: int) -> np.ndarray:
    """A plain change of length, for snippets too short to hold a pitch period."""
    if n <= 0 or x.size == 0:
        return np.zeros(max(n, 0), np.float32)
    return np.interp(np.linspace(0, x.size - 1, n), np.arange(x.size), x).astype(np.float32)


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median pitch in Hz of the voiced frames of mono `x` (Praat's autocorrelation), 0 if none."""
    import parselmouth

    if x.size < int(MIN_PSOLA_SECONDS * rate):
        return 0.0
    sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=rate)
    f0 = sound.to_pitch(pitch_floor=MIN_F0, pitch_ceiling=MAX_F0).selected_array["frequency"]
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else 0.0


# ---------------------------------------------------------------- true peak and the limiter


def db(value: float) -> float:
    """Linear amplitude in dB (-inf for 0)."""
    return float(20 * np.log10(value)) if value > 0 else float("-inf")


def _envelope(x: np.ndarray) -> np.ndarray:
    """Per input sample, the largest 4x-oversampled magnitude over its channels ([channels, n])."""
    from scipy.signal import resample_poly

    # Kaiser beta 8: passband ripple under 0.01 dB up to 0.8 x Nyquist (the default's is ~0.1 dB)
    up = resample_poly(
        x.astype(np.float64, copy=False), OVERSAMPLE, 1, axis=-1, window=("kaiser", 8.0)
    )
    up = np.abs(up[:, : x.shape[1] * OVERSAMPLE]).reshape(x.shape[0], x.shape[1], OVERSAMPLE)
    return np.maximum(up.max(axis=2), np.abs(x)).max(axis=0)


class TruePeakMeter:
    """The true peak of a stream of [channels, n] blocks, exact across block edges (each sample is
    measured once MARGIN samples after it are known, or at the end of the stream)."""

    MARGIN = 64

    def __init__(self) -> None:
        self._peak = 0.0
        self._tail: np.ndarray | None = None
        self._lead = 0  # samples at the front of _tail already measured (context only)

    def add(self, block: np.ndarray) -> None:
        """Measure the next block."""
        block = np.asarray(block, np.float32)
        if block.shape[1] == 0:
            return
        x = block if self._tail is None else np.concatenate([self._tail, block], axis=1)
        end = max(self._lead, x.shape[1] - self.MARGIN)
        if end > self._lead:
            self._peak = max(self._peak, float(_envelope(x)[self._lead : end].max()))
        keep = max(0, end - self.MARGIN)
        self._tail, self._lead = x[:, keep:], end - keep

    @property
    def peak(self) -> float:
        """The true peak so far, linear (the stream's last samples measured as its end)."""
        if self._tail is None or self._tail.shape[1] <= self._lead:
            return self._peak
        return max(self._peak, float(_envelope(self._tail)[self._lead :].max()))

    @property
    def dbtp(self) -> float:
        """The true peak so far in dBTP."""
        return db(self.peak)


def true_peak(samples: np.ndarray) -> float:
    """True peak of [channels, n] (or mono) samples in dBTP (4x oversampled)."""
    x = np.atleast_2d(np.asarray(samples, np.float32))
    meter = TruePeakMeter()
    step = 1 << 18
    for start in range(0, x.shape[1], step):
        meter.add(x[:, start : start + step])
    return meter.dbtp


class Limiter:
    """A look-ahead true-peak limiter for a stream: feed [channels, n] blocks, get them back
    limited (delayed; `flush` returns the rest, so as many samples come out as went in).

    The gain needed at each sample (ceiling over its oversampled peak) is taken as the minimum
    from `hold` before to `window` after it, then averaged over ±`window`: it is never above the
    needed gain, so no peak passes, and it moves smoothly (over 2 x `window`) and seldom (held
    after each peak), so the limiting is not heard as distortion.
    """

    def __init__(
        self,
        rate: int,
        ceiling_db: float = TRUE_PEAK_CEILING,
        window: float = LIMITER_WINDOW,
        hold: float = LIMITER_HOLD,
    ) -> None:
        self.ceiling = 10 ** (ceiling_db / 20)
        self.half = max(1, int(window * rate))
        self.hold = max(self.half, int(hold * rate))
        self.context = self.hold + 2 * self.half + TruePeakMeter.MARGIN
        self._buf: np.ndarray | None = None
        self._done = 0  # samples at the front of _buf already returned (left context)
        self.reduced = 0.0
        """The deepest gain reduction applied so far, in dB (0 or negative)."""

    def _gains(self, x: np.ndarray) -> np.ndarray:
        from scipy.ndimage import minimum_filter1d, uniform_filter1d

        need = np.minimum(1.0, self.ceiling / np.maximum(_envelope(x), 1e-12))
        span = self.hold + self.half + 1  # the minimum over [n - hold, n + half]
        lowest = minimum_filter1d(need, span, mode="nearest", origin=self.hold - span // 2)
        smooth = uniform_filter1d(lowest, 2 * self.half + 1, mode="nearest")
        return np.minimum(smooth, need)

    def _emit(self, last: bool) -> np.ndarray:
        assert self._buf is not None
        n = self._buf.shape[1]
        end = n if last else n - self.context
        if end <= self._done:
            return np.zeros((self._buf.shape[0], 0), np.float32)
        gains = self._gains(self._buf)
        out = self._buf[:, self._done : end] * gains[self._done : end]
        self.reduced = min(self.reduced, db(float(gains[self._done : end].min())))
        keep = max(0, end - self.context)
        self._buf, self._done = self._buf[:, keep:], end - keep
        return out.astype(np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Limit the next block; returns the samples ready so far."""
        block = np.asarray(block, np.float32)
        self._buf = block if self._buf is None else np.concatenate([self._buf, block], axis=1)
        return self._emit(last=False)

    def flush(self) -> np.ndarray:
        """The rest of the limited samples."""
        if self._buf is None:
            return np.zeros((1, 0), np.float32)
        return self._emit(last=True)


def limit(samples: np.ndarray, rate: int, ceiling_db: float = TRUE_PEAK_CEILING) -> np.ndarray:
    """[channels, n] samples with their true peak held at or under `ceiling_db` dBTP."""
    x = np.atleast_2d(np.asarray(samples, np.float32))
    return np.concatenate(list(_limited([x], rate, 1.0, ceiling_db)), axis=1)


def _limited(
    blocks: Iterable[np.ndarray], rate: int, gain: float, ceiling_db: float
) -> Iterator[np.ndarray]:
    limiter = Limiter(rate, ceiling_db)
    for block in blocks:
        out = limiter.process(np.asarray(block, np.float32) * gain)
        if out.shape[1]:
            yield out
    yield limiter.flush()


# ---------------------------------------------------------------- loudness to a target


@dataclass
class Levelled:
    """What loudness normalisation achieved: measured, not asked."""

    gain_db: float
    """The gain applied before the limiter."""
    loudness: float | None
    """Measured integrated loudness of the result, LUFS (None: silence, nothing to measure)."""
    true_peak: float | None
    """Measured true peak of the result, dBTP (None: silence)."""
    limited_db: float
    """The deepest gain reduction the limiter applied, dB (0: none)."""


def check_target(target: float | None) -> None:
    """Refuse loudness targets no one can mean (InputError)."""
    if target is not None and not (np.isfinite(target) and -70.0 <= target <= 0.0):
        raise InputError(f"loudness target must be between -70 and 0 LUFS, got {target}")


def fit_gain(
    blocks: Callable[[], Iterable[np.ndarray]],
    rate: int,
    channels: int,
    target: float,
    ceiling_db: float = TRUE_PEAK_CEILING,
    tolerance: float = LOUDNESS_TOLERANCE,
    measured: float | None = None,
) -> float:
    """The gain (dB) that, followed by the true-peak limiter, lands the stream `blocks()` (called
    once per pass) on `target` LUFS: the limiter lowers loudness, so gain is raised and measured
    again until within a tenth of `tolerance` (or the best of MAX_PASSES passes). `measured` is
    the stream's loudness when the caller has metered it already."""
    from .audio import LoudnessMeter

    current = measured
    if current is None:
        meter = LoudnessMeter(rate, channels)
        for block in blocks():
            meter.add(block)
        current = meter.integrated()
    if not np.isfinite(current):
        return 0.0  # silence: nothing to level
    gain = target - current
    best = (float("inf"), gain)
    last: tuple[float, float] | None = None  # (gain, loudness) of the pass before
    for _ in range(MAX_PASSES):
        meter = LoudnessMeter(rate, channels)
        for out in _limited(blocks(), rate, 10 ** (gain / 20), ceiling_db):
            meter.add(out)
        measured = meter.integrated()
        miss = abs(measured - target)
        best = min(best, (miss, gain))
        if miss <= tolerance / 10:
            break
        # Secant step: the limiter makes loudness grow slower than the gain, so use the slope
        # measured between passes (1 dB per dB at first), within sane bounds.
        slope = 1.0
        if last is not None and gain != last[0]:
            slope = float(np.clip((measured - last[1]) / (gain - last[0]), 0.1, 1.0))
        last = (gain, measured)
        gain += float(np.clip((target - measured) / slope, -12.0, 12.0))
    return best[1]


def level(
    samples: np.ndarray,
    rate: int,
    target: float,
    ceiling_db: float = TRUE_PEAK_CEILING,
    tolerance: float = LOUDNESS_TOLERANCE,
) -> tuple[np.ndarray, Levelled]:
    """[channels, n] samples brought to `target` LUFS with the true peak under `ceiling_db`;
    returns them with what was measured on the result."""
    check_target(target)
    x = np.atleast_2d(np.asarray(samples, np.float32))
    step = max(1, 10 * rate)

    def blocks() -> Iterator[np.ndarray]:
        return (x[:, i : i + step] for i in range(0, x.shape[1], step))

    gain = fit_gain(blocks, rate, x.shape[0], target, ceiling_db, tolerance)
    writer = LevelWriter(rate, x.shape[0], gain, ceiling_db)
    out = np.concatenate([writer.process(b) for b in blocks()] + [writer.flush()], axis=1)
    result = writer.result()
    if (
        result.loudness is not None and out.shape[1] >= rate // 2
    ):  # in memory: what pyloudnorm reads
        import dataclasses

        import pyloudnorm

        lufs = float(pyloudnorm.Meter(rate).integrated_loudness(out.T.astype(np.float64)))
        if np.isfinite(lufs):
            result = dataclasses.replace(result, loudness=round(lufs, 2))
    return out, result


class LevelWriter:
    """Gain then true-peak limiting over a stream, measuring what comes out (for the report)."""

    def __init__(
        self, rate: int, channels: int, gain_db: float, ceiling_db: float = TRUE_PEAK_CEILING
    ) -> None:
        from .audio import LoudnessMeter

        self.gain_db, self.gain = gain_db, 10 ** (gain_db / 20)
        self.limiter = Limiter(rate, ceiling_db)
        self.loudness = LoudnessMeter(rate, channels)
        self.peak = TruePeakMeter()

    def _measure(self, out: np.ndarray) -> np.ndarray:
        self.loudness.add(out)
        self.peak.add(out)
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        """Level the next block; returns the samples ready so far."""
        return self._measure(self.limiter.process(np.asarray(block, np.float32) * self.gain))

    def flush(self) -> np.ndarray:
        """The rest of the levelled samples."""
        return self._measure(self.limiter.flush())

    def result(self) -> Levelled:
        """What the stream measured once levelled."""

        def finite(value: float) -> float | None:
            return round(value, 2) if np.isfinite(value) else None

        return Levelled(
            round(self.gain_db, 2),
            finite(self.loudness.integrated()),
            finite(self.peak.dbtp),
            round(self.limiter.reduced, 2),
        )


class StreamLeveller:
    """Bring a stream of unknown length to a loudness target in bounded memory: spool it to a
    float scratch file (metering as it goes), fit the gain, then replay it levelled and limited.

    Nothing can be written before the whole stream is measured, so a levelled stream starts only
    once it has ended; `result` says what the replayed output measures.
    """

    BLOCK_SECONDS = 10.0

    def __init__(self, target: float, folder: str | None = None) -> None:
        check_target(target)
        self.target, self.folder = target, folder
        self._file = None
        self._path: str | None = None
        self._meter = None
        self.rate = self.channels = 0
        self.result: Levelled | None = None

    def spool(self, block: np.ndarray, rate: int) -> None:
        """Keep the next [channels, n] block."""
        import os
        import tempfile

        import soundfile as sf

        from .audio import LoudnessMeter

        block = np.atleast_2d(np.asarray(block, np.float32))
        if self._file is None:
            self.rate, self.channels = int(rate), block.shape[0]
            fd, self._path = tempfile.mkstemp(
                prefix=".voicebox-level.", suffix=".wav", dir=self.folder
            )
            os.close(fd)
            self._file = sf.SoundFile(
                self._path, "w", samplerate=self.rate, channels=self.channels, format="WAV",
                subtype="FLOAT",
            )  # fmt: skip
            self._meter = LoudnessMeter(self.rate, self.channels)
        self._file.write(block.T)
        self._meter.add(block)

    def _blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        step = max(1, int(self.BLOCK_SECONDS * self.rate))
        with sf.SoundFile(self._path) as f:
            for block in f.blocks(blocksize=step, dtype="float32", always_2d=True):
                yield block.T

    def replay(self) -> Iterator[np.ndarray]:
        """The spooled stream, levelled; the scratch file is removed once it has been replayed."""
        if self._file is None:
            return
        try:
            self._file.close()
            measured = self._meter.integrated()
            gain = fit_gain(self._blocks, self.rate, self.channels, self.target, measured=measured)
            writer = LevelWriter(self.rate, self.channels, gain)
            for block in self._blocks():
                out = writer.process(block)
                if out.shape[1]:
                    yield out
            yield writer.flush()
            self.result = writer.result()
        finally:
            self.close()

    def close(self) -> None:
        """Remove the scratch file (safe to call twice)."""
        import os

        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._path and os.path.exists(self._path):
            os.unlink(self._path)


# ---------------------------------------------------------------- mains hum

MAINS = (50.0, 60.0)
MAX_HARMONIC_HZ = 2_000.0
HUM_DETECT_DB = 10.0
"""A hum line must stand this far above the neighbouring spectrum (in one of the first 4 harmonics)."""
HUM_NOTCH_DB = 6.0
"""Harmonics of a detected hum that stand this far above their neighbours get a notch."""
NOTCH_Q = 30.0


def _prominence(freqs: np.ndarray, power: np.ndarray, f: float) -> float:
    """Peak level within ±1 Hz of f over the median level 3–12 Hz either side, in dB."""
    near = np.abs(freqs - f)
    peak = power[near <= 1.0]
    ring = power[(near >= 3.0) & (near <= 12.0)]
    if peak.size == 0 or ring.size == 0:
        return 0.0
    return float(10 * np.log10((peak.max() + 1e-20) / (np.median(ring) + 1e-20)))


def detect_hum(samples: np.ndarray, rate: int) -> list[float]:
    """Frequencies (Hz) of the hum lines to notch in [channels, n] samples; empty when there is no hum."""
    from scipy import signal

    x = np.asarray(samples, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    nper = min(len(x), 2 * rate)
    if nper < rate // 2:
        return []
    freqs, power = signal.welch(x, fs=rate, nperseg=nper)
    top = min(MAX_HARMONIC_HZ, 0.45 * rate)
    best: tuple[float, float] | None = None
    for base in MAINS:
        score = [_prominence(freqs, power, base * k) for k in range(1, 5)]
        if max(score) >= HUM_DETECT_DB and (best is None or sum(score) > best[1]):
            best = (base, sum(score))
    if best is None:
        return []
    base = best[0]
    lines = [base * k for k in range(1, int(top // base) + 1)]
    return [f for f in lines if _prominence(freqs, power, f) >= HUM_NOTCH_DB]


class Notch:
    """A cascade of IIR notches at the given frequencies, keeping filter state across blocks."""

    def __init__(self, freqs: list[float], rate: int, channels: int) -> None:
        from scipy import signal

        sections = [signal.tf2sos(*signal.iirnotch(f, NOTCH_Q, fs=rate)) for f in freqs]
        self.sos = np.concatenate(sections, axis=0)
        self.state = np.zeros((self.sos.shape[0], channels, 2))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """Filter a [channels, n] block, continuing from the previous one."""
        from scipy import signal

        out, self.state = signal.sosfilt(self.sos, block, axis=-1, zi=self.state)
        return out.astype(np.float32)


# ---------------------------------------------------------------- fitting new words to a recording

FRAME_S = 0.01
"""Seconds per level frame for pauses, speaking time and active level."""
TILT_LIMIT = 3.0
"""dB per octave: the most spectral tilt that fitting new words to a recording applies."""


def frame_db(x: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Energy in dB of consecutive frames of a mono signal."""
    hop = max(1, int(frame_s * rate))
    n = len(x) // hop
    if n == 0:
        return np.zeros(0)
    power = np.square(x[: n * hop].astype(np.float64)).reshape(n, hop).mean(axis=1)
    return 10 * np.log10(power + 1e-12)


def silence_threshold(db: np.ndarray) -> float:
    """Frames below this level (dB) are pauses: a little above the noise floor, well below speech."""
    if db.size == 0:
        return -120.0
    floor = float(np.percentile(db, 10))
    loud = float(np.percentile(db, 95))
    return max(floor + 10.0, loud - 35.0) if loud - floor > 15 else floor + 3.0


def active_seconds(x: np.ndarray, rate: int) -> float:
    """Seconds of `x` above the pause threshold: speaking time without pauses."""
    db = frame_db(x, rate)
    return float((db > silence_threshold(db)).sum()) * FRAME_S


def active_rms_db(x: np.ndarray, rate: int) -> float:
    """Level (dB) of the speaking frames only, so pauses do not dilute it."""
    db = frame_db(x, rate)
    if db.size == 0:
        return -120.0
    loud = db[db > silence_threshold(db)]
    if loud.size == 0:
        return float(np.max(db))
    return float(10 * np.log10(np.mean(10 ** (loud / 10))))


def spectral_slope(x: np.ndarray, rate: int) -> float:
    """Slope (dB per octave) of the long-term spectrum of the active parts of `x`, 200 Hz-6 kHz."""
    from scipy.signal import welch

    hop = int(FRAME_S * rate)
    db = frame_db(x, rate)
    keep = np.repeat(db > silence_threshold(db), hop)
    y = x[: len(keep)][keep]
    if len(y) < 1024:
        return 0.0
    f, p = welch(y, fs=rate, nperseg=1024)
    band = (f >= 200) & (f <= min(6000.0, 0.45 * rate))
    if band.sum() < 4:
        return 0.0
    octaves = np.log2(f[band] / 1000.0)
    return float(np.polyfit(octaves, 10 * np.log10(p[band] + 1e-20), 1)[0])


def tilt(x: np.ndarray, rate: int, db_per_octave: float) -> np.ndarray:
    """Apply a gentle zero-phase spectral tilt (pivot 1 kHz, gain limited to ±12 dB)."""
    if abs(db_per_octave) < 0.25 or len(x) == 0:
        return x
    n = len(x)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    gain_db = np.clip(db_per_octave * np.log2(np.maximum(f, 100.0) / 1000.0), -12.0, 12.0)
    return np.fft.irfft(np.fft.rfft(x) * 10 ** (gain_db / 20), n=n).astype(np.float32)


def fade(x: np.ndarray, rate: int, fade_s: float = 0.005) -> np.ndarray:
    """A copy of `x` with short linear fades at both ends, so cut edges do not click."""
    y = np.asarray(x, np.float32).copy()
    n = min(int(fade_s * rate), len(y) // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def trim(x: np.ndarray, rate: int, floor_db: float = 40.0, fade_s: float = 0.005) -> np.ndarray:
    """Cut leading/trailing silence (frames 40 dB under the loudest) and fade the new edges."""
    db = frame_db(x, rate)
    if db.size == 0:
        return x
    on = np.flatnonzero(db > db.max() - floor_db)
    hop = int(FRAME_S * rate)
    return fade(x[max(0, on[0] * hop - hop) : (on[-1] + 2) * hop], rate, fade_s)


def fit_to(speech: np.ndarray, rate: int, near: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Mono `speech` faded at its edges, tilted (within TILT_LIMIT) and levelled like `near`, the
    recording around where it goes, its peak kept under `peak`: new words that sit in the room."""
    y = fade(speech, rate)
    if y.size == 0 or not np.any(y):
        return y
    delta = spectral_slope(near, rate) - spectral_slope(y, rate)
    y = tilt(y, rate, float(np.clip(delta, -TILT_LIMIT, TILT_LIMIT)))
    y = y * 10 ** ((active_rms_db(near, rate) - active_rms_db(y, rate)) / 20)
    top = float(np.abs(y).max())
    return y * (peak / top) if top > peak else y


def noise_bed(samples: np.ndarray, rate: int, length: int, seed: int = 0) -> np.ndarray:
    """`length` samples of the recording's own noise floor per channel, from its quietest stretches.

    Quiet grains (40 ms) are overlap-added with a sine window, whose squares sum to one, so the
    noise keeps its level and colour without repeating audibly.
    """
    channels = samples.shape[0]
    out = np.zeros((channels, length), np.float32)
    grain = max(16, int(0.04 * rate)) // 2 * 2
    hop = grain // 2
    mono = samples.mean(axis=0)
    starts = np.arange(0, len(mono) - grain, hop)
    if length == 0 or starts.size == 0:
        return out
    energy = np.array([np.mean(np.square(mono[s : s + grain])) for s in starts])
    quiet = starts[energy <= np.percentile(energy, 10)]
    window = np.sin(np.pi * (np.arange(grain) + 0.5) / grain).astype(np.float32)
    rng = np.random.default_rng(seed)
    for pos in range(-hop, length, hop):
        s = int(rng.choice(quiet))
        lo, hi = max(pos, 0), min(pos + grain, length)
        if hi <= lo:
            continue
        out[:, lo:hi] += samples[:, s + lo - pos : s + hi - pos] * window[lo - pos : hi - pos]
    return out
