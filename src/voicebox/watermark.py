"""An inaudible, crop-robust watermark carrying 32 bits, hidden in the speech band at 16 kHz.

Method (see docs/watermark.md): multiplicative spread spectrum on STFT band energies. Time is
cut into 32 ms tiles and 594-3688 Hz into 33 bands of 94 Hz; each tile's energy is raised or
lowered (smoothly, about ±1-2 dB) following a keyed ±1 pattern that repeats every 32 tiles
(1.024 s). Half of the tiles carry a fixed sync pattern, half a pattern signed by the payload
(32 bits + CRC-8). Embedding is informed: it measures what the detector will see and pushes each
group of tiles until it shows the pattern, so the speech itself cannot hide the mark. The
detector correlates log-energy contrasts with the pattern at every alignment (hop phase x tile
offset), so any crop of a few seconds is found. Everything runs on a 16 kHz copy and only the
change is resampled back, so any input rate works.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import convolve1d

from .audio import resample

RATE = 16_000
N_FFT = 512
HOP = 128
KEY = "voicebox-watermark-v1"
PAYLOAD_BITS = 32
CRC_BITS = 8
CODED_BITS = PAYLOAD_BITS + CRC_BITS
BLOCK_COLS = 640  # embedding/analysis work in blocks of 640 tiles (20 s) to bound memory
MARGIN_COLS = 8  # context tiles either side of a block


@dataclass(frozen=True)
class Params:
    """The watermark layout, strength and decision rule; embedder and detector share it."""

    # 33 bands of 3 STFT bins (93.75 Hz) from 594 to 3688 Hz: below 8 kHz audio's Nyquist.
    edges_hz: tuple[float, ...] = tuple(31.25 * b for b in range(19, 119, 3))
    tile_hops: int = 4  # 4 hops of 8 ms: 32 ms tiles
    period: int = 32  # tiles per pattern period (1.024 s)
    strength: float = 0.45  # target mean contrast per tile along the pattern (log power)
    cap: float = 1.1  # largest log-power change of one tile (about ±2.4 dB)
    iterations: int = 3  # informed-embedding passes
    smooth_hops: int = 3  # gain smoothing across tile edges in time (hops)
    smooth_bins: int = 3  # and in frequency (bins)
    clip: float = 2.0  # detector: clip contrasts to ±clip (0: off)
    weighted: bool = True  # detector: weight tiles by their activity
    use_data: bool = True  # detector: payload tiles add to the score too
    quiet_db: float = 30.0  # tiles this far below their band's loud level get less mark
    data_fraction: float = 0.5  # share of tiles that carry the payload
    window_s: float = 3.0  # detection window
    window_hop_s: float = 0.5
    threshold: float = 5.0  # z-score a positive verdict needs (raised for long audio)
    local_s: float = 1.0  # window used to find which time ranges carry the mark
    local_hop_s: float = 0.125
    local_threshold: float = 3.0
    key: str = KEY

    @property
    def bands(self) -> int:
        """Number of frequency bands."""
        return len(self.edges_hz) - 1

    @property
    def tile_s(self) -> float:
        """Seconds per tile."""
        return self.tile_hops * HOP / RATE


@dataclass(frozen=True)
class Pattern:
    """The keyed tile layout: sync signs, data signs, and the coded bit each data tile carries."""

    sync: np.ndarray  # [bands, period] ±1 on sync tiles, 0 elsewhere
    data: np.ndarray  # [bands, period] ±1 on data tiles, 0 elsewhere
    bit: np.ndarray  # [bands, period] coded-bit index of a data tile, -1 on sync tiles


@dataclass
class Span:
    """A stretch of audio found to carry the mark at one alignment."""

    start: float
    end: float
    z: float


@dataclass
class Analysis:
    """What the detector found: best window score, marked spans and the payload."""

    z: float = 0.0  # best window's z-score
    threshold: float = 5.0  # the score a positive verdict needs for audio this long
    tests: int = 1  # alignments × windows searched (for the false-alarm estimate)
    spans: list[Span] = field(default_factory=list)
    bits: np.ndarray | None = None  # soft values of the coded bits at the best alignment
    payload: int | None = None  # 32 bits when the CRC matched

    @property
    def false_alarm(self) -> float:
        """Chance that unmarked audio scores this high somewhere (Gaussian tail × tests)."""
        return min(1.0, self.tests * 0.5 * math.erfc(self.z / math.sqrt(2)))


@functools.cache
def pattern(params: Params) -> Pattern:
    """The keyed patterns for `params`, deterministic from the key."""
    seed = int.from_bytes(hashlib.sha256(params.key.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    shape = (params.bands, params.period)
    n = shape[0] * shape[1]
    is_data = np.zeros(n, dtype=bool)
    is_data[rng.permutation(n)[: int(n * params.data_fraction)]] = True
    signs = rng.choice([-1.0, 1.0], size=n)
    bit = np.full(n, -1)
    data_idx = np.flatnonzero(is_data)
    bit[data_idx[rng.permutation(len(data_idx))]] = np.arange(len(data_idx)) % CODED_BITS
    sync = np.where(is_data, 0.0, signs).reshape(shape)
    data = np.where(is_data, signs, 0.0).reshape(shape)
    return Pattern(sync, data, bit.reshape(shape))


def crc8(value: int, bits: int = PAYLOAD_BITS) -> int:
    """CRC-8 (polynomial 0x07) of the low `bits` bits of `value`, most significant first."""
    crc = 0
    for i in range(bits - 1, -1, -1):
        top = ((crc >> 7) & 1) ^ ((value >> i) & 1)
        crc = ((crc << 1) & 0xFF) ^ (0x07 if top else 0)
    return crc


def code_bits(payload: int) -> np.ndarray:
    """The ±1 coded bits: 32 payload bits then their CRC-8, most significant first."""
    if not 0 <= payload < 1 << PAYLOAD_BITS:
        raise ValueError("payload must fit in 32 bits")
    word = (payload << CRC_BITS) | crc8(payload)
    return np.array(
        [1.0 if (word >> (CODED_BITS - 1 - i)) & 1 else -1.0 for i in range(CODED_BITS)]
    )


def decode_bits(
    soft: np.ndarray, accept: Callable[[int], bool] | None = None, flips: int = 0
) -> int | None:
    """The 32-bit payload whose coded bits pass the CRC (and `accept`), else None.

    With `flips` > 0, also tries flipping subsets of the `flips` least reliable bits, most
    likely first (Chase decoding); each extra candidate raises the chance of accepting a wrong
    payload, so use it only with a strict `accept`.
    """
    if len(soft) != CODED_BITS or not np.all(np.abs(soft) > 0):
        return None
    hard = soft > 0
    weak = np.argsort(np.abs(soft))[:flips]
    masks = sorted(
        range(1 << len(weak)),
        key=lambda m: sum(abs(soft[weak[i]]) for i in range(len(weak)) if m >> i & 1),
    )
    for m in masks:
        bits = hard.copy()
        for i in range(len(weak)):
            if m >> i & 1:
                bits[weak[i]] = not bits[weak[i]]
        word = 0
        for b in bits:
            word = (word << 1) | int(b)
        payload, crc = word >> CRC_BITS, word & 0xFF
        if crc8(payload) == crc and (accept is None or accept(payload)):
            return payload
    return None


@functools.cache
def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:N_FFT]


def stft(x: np.ndarray) -> np.ndarray:
    """Complex STFT [bins, hops] of `x`, frame h centred on sample h*HOP (Hann 512, hop 128)."""
    pad = np.pad(np.asarray(x, dtype=np.float64), (N_FFT // 2, N_FFT // 2 + HOP))
    n_hops = len(x) // HOP + 1
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_hops)[:, None]
    return np.fft.rfft(pad[idx] * _window(), axis=1).T


def istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse of `stft` by weighted overlap-add, trimmed to `length` samples."""
    frames = np.fft.irfft(spec.T, n=N_FFT, axis=1) * _window()
    n_hops = frames.shape[0]
    out = np.zeros(HOP * (n_hops - 1) + N_FFT)
    norm = np.zeros_like(out)
    w2 = _window() ** 2
    for k in range(N_FFT // HOP):  # frames k, k+4, ... do not overlap one another
        hops = np.arange(k, n_hops, N_FFT // HOP)
        if len(hops) == 0:
            continue
        start = k * HOP
        span = len(hops) * N_FFT
        out[start : start + span] += frames[hops].ravel()
        norm[start : start + span] += np.tile(w2, len(hops))
    out /= np.maximum(norm, 1e-8)
    return out[N_FFT // 2 : N_FFT // 2 + length]


@functools.cache
def _band_of_bin(params: Params) -> np.ndarray:
    freqs = np.arange(N_FFT // 2 + 1) * RATE / N_FFT
    band = np.searchsorted(np.asarray(params.edges_hz), freqs, side="right") - 1
    band[(freqs < params.edges_hz[0]) | (freqs >= params.edges_hz[-1])] = -1
    return band


def _signs(payload: int, params: Params) -> np.ndarray:
    """Tile signs [bands, period]: the sync pattern plus the data pattern signed by the bits."""
    pat = pattern(params)
    bits = code_bits(payload)
    return pat.sync + pat.data * np.where(pat.bit >= 0, bits[np.maximum(pat.bit, 0)], 0.0)


def _groups(first_col: int, n_cols: int, params: Params) -> np.ndarray:
    """Group id per tile [bands, n_cols]: a column's sync tiles, or one bit's tiles in a period."""
    pat = pattern(params)
    cols = first_col + np.arange(n_cols)
    res = cols % params.period
    rep = cols // params.period - first_col // params.period
    sync_id = np.broadcast_to(np.arange(n_cols), (params.bands, n_cols))
    data_id = n_cols + rep[None, :] * CODED_BITS + pat.bit[:, res]
    return np.where(pat.bit[:, res] >= 0, data_id, sync_id)


def _embed_block(x: np.ndarray, signs: np.ndarray, first_col: int, params: Params) -> np.ndarray:
    """Watermark signal for 16 kHz `x` whose first sample starts tile column `first_col`."""
    spec = stft(x)
    band = _band_of_bin(params)
    t = params.tile_hops
    n_hops = spec.shape[1]
    cols = first_col + np.arange(-(-n_hops // t))
    tile_signs = signs[:, cols % params.period]
    activity = _activity(hop_energies(x, params), params)[:, : len(cols)]
    level = params.strength * activity
    n_cols = n_hops // t - 1  # whole tiles the detector sees at this alignment
    groups = _groups(first_col, max(n_cols, 0), params).ravel()
    delta = np.zeros(len(x))
    for step in range(params.iterations + 1):
        gain = _gains(tile_signs * level, n_hops, band, params)
        delta = istft(spec * (gain - 1.0), len(x))
        if n_cols < 1 or step == params.iterations:
            break
        lp = contrasts(hop_energies(x + delta, params), params, phases=1)[0]
        act = activity[:, :n_cols].ravel()
        along = (lp * tile_signs[:, :n_cols]).ravel() * act
        mean = np.bincount(groups, along) / np.maximum(np.bincount(groups, act), 1e-6)
        deficit = np.maximum(0.0, params.strength - mean)[groups].reshape(lp.shape)
        level[:, :n_cols] = np.minimum(level[:, :n_cols] + deficit, params.cap)
        level *= activity
    return delta


def _hann(n: int) -> np.ndarray:
    kernel = np.hanning(n + 2)[1:-1]
    return kernel / kernel.sum()


def _gains(tiles: np.ndarray, n_hops: int, band: np.ndarray, params: Params) -> np.ndarray:
    """Amplitude gains [bins, hops] from tile log-power offsets, smoothed across tile edges."""
    offsets = np.repeat(tiles, params.tile_hops, axis=1)[:, :n_hops]
    log = np.zeros((len(band), n_hops))
    inside = band >= 0
    log[inside] = offsets[band[inside]] / 2.0
    if params.smooth_hops > 1:
        log = convolve1d(log, _hann(params.smooth_hops), axis=1, mode="nearest")
    if params.smooth_bins > 1:
        log = convolve1d(log, _hann(params.smooth_bins), axis=0, mode="constant")
    return np.exp(log)


def _activity(energy: np.ndarray, params: Params) -> np.ndarray:
    """Per tile [bands, cols] 0..1: 1 where the band is within `quiet_db` of its loud level,
    fading to 0 over 10 dB below, so pauses and noise floors are left alone."""
    t = params.tile_hops
    n_cols = -(-energy.shape[1] // t)
    padded = np.zeros((energy.shape[0], n_cols * t))
    padded[:, : energy.shape[1]] = energy
    tiles = padded.reshape(energy.shape[0], n_cols, t).sum(axis=2)
    db = 10 * np.log10(tiles + 1e-20)
    loud = np.percentile(db, 95, axis=1, keepdims=True)
    return np.clip((db - (loud - params.quiet_db)) / 10.0 + 1.0, 0.0, 1.0)


def embed16(x: np.ndarray, payload: int, params: Params | None = None) -> np.ndarray:
    """The additive watermark for 16 kHz mono `x` (same length), anchored at its first sample.

    Informed embedding: each group of tiles (one column's sync tiles, one bit's tiles in one
    period) is pushed until its mean contrast along the pattern reaches `strength`; no tile
    moves more than `cap`. Long signals are processed in 20 s blocks with context.
    """
    params = params or Params()
    x = np.asarray(x, dtype=np.float32)
    signs = _signs(payload, params)
    tile = params.tile_hops * HOP
    block, margin = BLOCK_COLS * tile, MARGIN_COLS * tile
    out = np.zeros(len(x), dtype=np.float32)
    for start in range(0, len(x), block):
        lo = max(0, start - margin)
        hi = min(len(x), start + block + margin)
        delta = _embed_block(x[lo:hi].astype(np.float64), signs, lo // tile, params)
        end = min(len(x), start + block)
        out[start:end] = delta[start - lo : end - lo]
    return out


def embed(samples: np.ndarray, rate: int, payload: int, params: Params | None = None) -> np.ndarray:
    """The additive watermark for mono `samples` at any rate: same length, float32."""
    x = np.asarray(samples, dtype=np.float32)
    x16 = resample(x, rate, RATE) if rate != RATE else x
    delta16 = embed16(x16, payload, params).astype(np.float32)
    delta = resample(delta16, RATE, rate) if rate != RATE else delta16
    if len(delta) < len(x):
        delta = np.pad(delta, (0, len(x) - len(delta)))
    return delta[: len(x)]


def hop_energies(x: np.ndarray, params: Params) -> np.ndarray:
    """Band energies per hop [bands, hops] of 16 kHz mono `x`, computed in bounded blocks."""
    band = _band_of_bin(params)
    n_hops = len(x) // HOP + 1
    out = np.zeros((params.bands, n_hops))
    step = 4096  # hops per block
    for h0 in range(0, n_hops, step):
        h1 = min(n_hops, h0 + step)
        lo = max(0, h0 * HOP - N_FFT)
        seg = x[lo : min(len(x), (h1 - 1) * HOP + N_FFT)]
        power = np.abs(stft(seg)) ** 2
        first = (h0 * HOP - lo) // HOP
        power = power[:, first : first + (h1 - h0)]
        for b in range(params.bands):
            out[b, h0 : h0 + power.shape[1]] = power[band == b].sum(axis=0)
    return out


def contrasts(
    energy: np.ndarray, params: Params, phases: int | None = None, weighted: bool = True
) -> np.ndarray:
    """Log tile energies minus their four neighbours' mean, [phases, bands, cols], per hop phase."""
    t = params.tile_hops
    n_cols = energy.shape[1] // t - 1
    n_phases = t if phases is None else phases
    if n_cols < 1:
        return np.zeros((n_phases, params.bands, 0))
    csum = np.concatenate([np.zeros((energy.shape[0], 1)), np.cumsum(energy, axis=1)], axis=1)
    out = np.empty((n_phases, params.bands, n_cols))
    floor = 1e-4 * max(float(energy.mean()), 1e-20) * t
    for ph in range(n_phases):
        starts = ph + t * np.arange(n_cols)
        log = np.log(csum[:, starts + t] - csum[:, starts] + floor)
        padded = np.pad(log, 1, mode="edge")
        neigh = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4
        contrast = log - neigh
        if params.clip > 0:
            contrast = np.clip(contrast, -params.clip, params.clip)
        if weighted:
            contrast *= _activity(energy[:, ph:], params)[:, :n_cols]
        out[ph] = contrast
    return out


def _folds(lp: np.ndarray, starts: np.ndarray, ends: np.ndarray, period: int) -> np.ndarray:
    """Contrasts summed per column residue over windows [start, end): [phases, windows, bands, period]."""
    phases, bands, n_cols = lp.shape
    m = -(-n_cols // period)
    grid = np.zeros((phases, bands, m * period))
    grid[..., :n_cols] = lp
    grid = grid.reshape(phases, bands, m, period)
    csum = np.concatenate([np.zeros((phases, bands, 1, period)), np.cumsum(grid, axis=2)], axis=2)
    r = np.arange(period)[None, :]
    hi = np.clip(-(-(ends[:, None] - r) // period), 0, m)
    lo = np.clip(-(-(starts[:, None] - r) // period), 0, m)
    return np.transpose(csum[:, :, hi, r] - csum[:, :, lo, r], (0, 2, 1, 3))


_FOLDED_MEAN = math.sqrt(2 / math.pi)  # E|N(0,1)|
_FOLDED_VAR = 1 - 2 / math.pi  # Var|N(0,1)|


def _score_at(folds: np.ndarray, pat: Pattern, offset: int, use_data: bool) -> np.ndarray:
    """z-scores [...] at one tile offset: the sync correlation, combined with the payload tiles'
    evidence when `use_data` (sum of |per-bit correlations|, standardised under no mark)."""
    s = np.roll(pat.sync, -offset, axis=1)
    sq = folds**2
    z = (folds * s).sum(axis=(-2, -1)) / np.maximum(
        np.sqrt((sq * (s != 0)).sum(axis=(-2, -1))), 1e-9
    )
    if not use_data:
        return z
    data = np.roll(pat.data, -offset, axis=1).ravel()
    bit = np.roll(pat.bit, -offset, axis=1).ravel()
    on = bit >= 0
    onehot = np.zeros((len(bit), CODED_BITS))
    onehot[np.flatnonzero(on), bit[on]] = 1.0
    flat = folds.reshape(folds.shape[:-2] + (-1,))
    corr = (flat * data) @ onehot
    spread = np.sqrt((flat**2) @ onehot)
    folded = (np.abs(corr) / np.maximum(spread, 1e-9)).sum(axis=-1)
    z_data = (folded - CODED_BITS * _FOLDED_MEAN) / math.sqrt(CODED_BITS * _FOLDED_VAR)
    return np.maximum(z, (z + z_data) / math.sqrt(2))


def _scores(folds: np.ndarray, pat: Pattern, use_data: bool) -> np.ndarray:
    """z-scores [phases, windows, offsets]; offset c means column j carries pattern (j+c)."""
    period = pat.sync.shape[1]
    out = np.empty(folds.shape[:2] + (period,))
    for c in range(period):
        out[..., c] = _score_at(folds, pat, c, use_data)
    return out


def _windows(n_cols: int, width: int, step: int) -> np.ndarray:
    starts = np.arange(0, max(1, n_cols - width + 1), step)
    if starts[-1] + width < n_cols:
        starts = np.append(starts, n_cols - width)
    return starts


def _spans_at(lp: np.ndarray, phase: int, offset: int, params: Params) -> list[Span]:
    """Time ranges whose short windows show the sync pattern at one alignment."""
    pat = pattern(params)
    n_cols = lp.shape[2]
    width = max(1, min(n_cols, round(params.local_s / params.tile_s)))
    starts = _windows(n_cols, width, max(1, round(params.local_hop_s / params.tile_s)))
    folds = _folds(lp[phase : phase + 1], starts, starts + width, params.period)
    z = _score_at(folds, pat, offset, params.use_data)[0]
    # A window half inside a marked stretch scores about half the typical marked window: cut there.
    strong = z[z >= params.local_threshold]
    cut = max(params.local_threshold, 0.5 * float(np.median(strong))) if len(strong) else np.inf
    centre = (starts + width / 2) * params.tile_s + phase * HOP / RATE
    if len(starts) == 1:
        centre = np.array([0.0])
    marked = z >= cut
    spans: list[Span] = []
    half = params.local_hop_s / 2
    for i in np.flatnonzero(marked):
        a = centre[i] - half if len(starts) > 1 else 0.0
        b = centre[i] + half if len(starts) > 1 else n_cols * params.tile_s
        if i == 0:
            a = 0.0
        if i == len(starts) - 1:
            b = (n_cols + 1) * params.tile_s
        if spans and a - spans[-1].end <= 2 * params.local_s:
            spans[-1].end = b
            spans[-1].z = max(spans[-1].z, float(z[i]))
        else:
            spans.append(Span(a, b, float(z[i])))
    return spans


def payload_evidence(
    lp: np.ndarray, phase: int, offset: int, spans: list[Span], params: Params
) -> np.ndarray:
    """Soft values of the coded bits from the columns inside `spans`, at one alignment."""
    pat = pattern(params)
    col0 = phase * HOP / RATE
    starts = np.array([max(0, int((s.start - col0) / params.tile_s)) for s in spans])
    ends = np.array([min(lp.shape[2], int(np.ceil((s.end - col0) / params.tile_s))) for s in spans])
    fold = _folds(lp[phase : phase + 1], starts, np.maximum(ends, starts), params.period)[0].sum(0)
    data = np.roll(pat.data, -offset, axis=1)
    bit = np.roll(pat.bit, -offset, axis=1)
    soft = np.zeros(CODED_BITS)
    np.add.at(soft, bit[bit >= 0], (fold * data)[bit >= 0])
    return soft


def decision_threshold(seconds: float, params: Params) -> float:
    """The z a verdict needs: `params.threshold`, raised for long audio so that unmarked audio of
    any length is flagged with probability under 1e-3 (Gaussian tail, Bonferroni over every
    window scored and the 2 x 4 x period alignment tests in each)."""
    windows = max(1.0, (seconds - params.window_s) / params.window_hop_s + 1)
    tail = 1e-3 / (windows * 8 * params.period)
    return max(params.threshold, _inverse_tail(tail))


def _inverse_tail(p: float) -> float:
    """z with P(N(0,1) > z) = p, by bisection on erfc."""
    lo, hi = 0.0, 40.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > p:
            lo = mid
        else:
            hi = mid
    return lo


def analyse(
    x: np.ndarray,
    params: Params | None = None,
    accept: Callable[[int], bool] | None = None,
    flips: int = 0,
    threshold: float | None = None,
) -> Analysis:
    """Search 16 kHz mono `x` for the mark: best score, marked time ranges and payload.

    `threshold` overrides the decision threshold for `x`'s length (a piece of a longer recording
    is judged by the whole recording's threshold)."""
    params = params or Params()
    pat = pattern(params)
    lp = contrasts(
        hop_energies(np.asarray(x, dtype=np.float32), params), params, weighted=params.weighted
    )
    n_cols = lp.shape[2]
    if n_cols < 2:
        return Analysis()
    width = max(1, min(n_cols, round(params.window_s / params.tile_s)))
    starts = _windows(n_cols, width, max(1, round(params.window_hop_s / params.tile_s)))
    z = _scores(_folds(lp, starts, starts + width, params.period), pat, params.use_data)
    best_per_window = z.max(axis=(0, 2))
    if threshold is None:
        threshold = decision_threshold(len(x) / RATE, params)
    result = Analysis(
        z=float(best_per_window.max()), tests=len(starts) * 8 * params.period, threshold=threshold
    )
    if result.z < threshold:
        return result
    # Each positive window votes for its alignment; strongest alignments first.
    covered: list[Span] = []
    first = True
    for w in np.argsort(-best_per_window):
        if best_per_window[w] < threshold:
            break
        t0 = starts[w] * params.tile_s
        t1 = (starts[w] + width) * params.tile_s
        if any(s.start <= (t0 + t1) / 2 <= s.end for s in covered):
            continue
        ph, c = np.unravel_index(np.argmax(z[:, w]), z[:, w].shape)
        spans = _spans_at(lp, int(ph), int(c), params) or [Span(t0, t1, float(best_per_window[w]))]
        if first:
            result.bits = payload_evidence(lp, int(ph), int(c), spans, params)
            result.payload = decode_bits(result.bits, accept, flips)
            first = False
        covered.extend(spans)
        if len(covered) > 64:
            break
    result.spans = _merge(covered, len(x) / RATE)
    return result


PIECE_PERIODS = 300
"""A long recording is searched in pieces of 300 pattern periods (307 s at 16 kHz) ..."""
OVERLAP_PERIODS = 8
"""... overlapping by 8 periods (8.2 s, more than a detection window), so every window of the
recording lies whole in some piece and memory stays bounded whatever the length."""


def analyse_blocks(
    blocks: Iterable[np.ndarray],
    expected_s: float = 0.0,
    params: Params | None = None,
    accept: Callable[[int], bool] | None = None,
    flips: int = 0,
    piece_periods: int = PIECE_PERIODS,
) -> tuple[Analysis, float]:
    """`analyse` over 16 kHz mono blocks of a recording of any length: (analysis, seconds).

    Pieces start at whole pattern periods (the alignment `analyse` would see), each is analysed
    on its own and the results are combined: best score, every marked piece's ranges on the
    recording's clock, the payload of the best piece. A recording no longer than one piece is
    analysed exactly as `analyse` does. `expected_s` (the length a header claims) sets the
    pieces' threshold; the verdict uses the real length's.
    """
    params = params or Params()
    unit = HOP * params.tile_hops * params.period
    size, overlap = piece_periods * unit, OVERLAP_PERIODS * unit
    piece_threshold = decision_threshold(expected_s, params) if expected_s > 0 else None
    parts: list[tuple[float, Analysis]] = []
    held: list[np.ndarray] = []
    length, offset, total = 0, 0, 0
    for block in blocks:
        held.append(np.asarray(block, dtype=np.float32))
        length += len(block)
        total += len(block)
        while length >= size + overlap:
            buffer = np.concatenate(held)
            found = analyse(buffer[:size], params, accept, flips, piece_threshold)
            parts.append((offset / RATE, found))
            held, length, offset = (
                [buffer[size - overlap :]],
                length - (size - overlap),
                (offset + size - overlap),
            )
    if length or not parts:
        last = np.concatenate(held) if held else np.zeros(0, np.float32)
        threshold = piece_threshold if parts else None
        parts.append((offset / RATE, analyse(last, params, accept, flips, threshold)))
    seconds = total / RATE
    if len(parts) == 1:
        return parts[0][1], seconds
    return _combine(parts, decision_threshold(seconds, params), seconds), seconds


def _combine(parts: list[tuple[float, Analysis]], threshold: float, seconds: float) -> Analysis:
    """One analysis from the pieces': best score, marked pieces' ranges, best piece's payload."""
    best = max(parts, key=lambda p: p[1].z)[1]
    result = Analysis(z=best.z, tests=sum(p.tests for _, p in parts), threshold=threshold)
    if best.z < threshold:
        return result
    marked = sorted((p for p in parts if p[1].z >= threshold), key=lambda p: -p[1].z)
    spans = [Span(s.start + at, s.end + at, s.z) for at, p in marked for s in p.spans]
    result.spans = _merge(spans, seconds)
    decoded = next((p for _, p in marked if p.payload is not None), marked[0][1])
    result.bits, result.payload = decoded.bits, decoded.payload
    return result


def _merge(spans: list[Span], duration: float) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: s.start):
        s = Span(max(0.0, s.start), min(duration, s.end), s.z)
        if out and s.start <= out[-1].end:
            out[-1].end = max(out[-1].end, s.end)
            out[-1].z = max(out[-1].z, s.z)
        else:
            out.append(s)
    return out
