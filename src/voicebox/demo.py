"""`voicebox demo`: a page that lets a person hear what the studio does, built from scratch in minutes.

It synthesises a voice, buries it in generated noise and mains hum, cleans it, reads a paragraph in several
voices and a blend, clones a voice the model never trained on with our Voicebox model, and writes
everything with spectrograms and measured numbers to one HTML page.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from .audio import Audio, save
from .progress import Progress, silent

T = TypeVar("T")

NOISY_TEXT = (
    "Welcome to voicebox, an offline speech studio. "
    "This recording was buried in hiss and mains hum, and then cleaned on this computer."
)
PARAGRAPH = (
    "On March 3rd, 2025, Dr. Smith paid $12.50 for 3 coffees at 7:45 a.m. "
    "The shop, at 221 Baker St., is open 24 hours a day. "
    "Visit www.example.com to learn more."
)
READ_VOICES = ["piper_joe", "jm_kumo", "jf_nezumi", "jf_alpha"]
BLEND = {"jm_kumo": 0.6, "jf_nezumi": 0.4}
# The clone's reference: a blend no training speaker used, so the model has never heard this voice.
CLONE_BLEND = {"jf_alpha": 0.5, "jm_kumo": 0.3, "jf_tebukuro": 0.2}
CLONE_REFERENCE = "The old farmer carried a wooden box to the station in the morning."
CLONE_TEXT = "Our own model learned to speak in a voice it heard for only a few seconds."


@dataclass
class DemoRow:
    """One audio example on the page, with what was measured about it."""

    title: str
    file: str
    image: str | None = None
    metrics: dict[str, str] = field(default_factory=dict)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise, unit RMS, shaped in the frequency domain."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.arange(n // 2 + 1, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def make_noisy(speech: Audio, snr_db: float = 5.0, hum_hz: float = 50.0, seed: int = 0) -> Audio:
    """Speech plus pink noise at `snr_db` and a mains hum with harmonics, peak-limited to avoid clipping."""
    rng = np.random.default_rng(seed)
    x = speech.mono()
    n = x.size
    t = np.arange(n) / speech.rate
    hum = sum(np.sin(2 * np.pi * hum_hz * k * t) / k for k in (1, 2, 3, 4)).astype(np.float32)
    noise = pink_noise(n, rng) + 0.5 * hum / (np.sqrt(np.mean(hum**2)) + 1e-12)
    speech_power = np.mean(x**2)
    noise_power = np.mean(noise**2)
    noise *= np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    mix = x + noise
    mix *= 0.9 / max(1e-9, float(np.abs(mix).max()))
    return Audio(mix[None, :], speech.rate)


def spectrogram_png(audio: Audio, path: Path, title: str) -> None:
    """Save a log-magnitude spectrogram image of the audio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=90)
    ax.specgram(audio.mono(), NFFT=1024, Fs=audio.rate, noverlap=768, cmap="magma", vmin=-130)
    ax.set_title(title)
    ax.set_xlabel("seconds")
    ax.set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _timed(fn: Callable[..., T], *args: object, **kwargs: object) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def run_demo(out: str | Path, progress: Progress = silent) -> Path:
    """Build the demo folder and return the path of its index.html."""
    from .engines.quality import dnsmos
    from .provenance import detect
    from .tasks.clean import clean
    from .tasks.read import read

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = 5 + len(READ_VOICES)
    done = 0
    progress(done, steps)
    rows: list[DemoRow] = []

    speech = read(NOISY_TEXT).audio
    noisy = make_noisy(speech, snr_db=5.0)
    done += 1
    progress(done, steps)
    cleaned, seconds = _timed(clean, noisy)
    done += 1
    progress(done, steps)
    before, after = dnsmos(noisy), dnsmos(cleaned)
    for name, audio, scores, extra in (
        ("noisy", noisy, before, {}),
        ("cleaned", cleaned, after, {"RTF": f"{seconds / noisy.duration:.3f}"}),
    ):
        save(audio, out / f"{name}.wav")
        spectrogram_png(audio, out / f"{name}.png", f"{name} (DNSMOS OVRL {scores['ovrl']:.2f})")
        metrics = {"DNSMOS OVRL": f"{scores['ovrl']:.2f}", "SIG": f"{scores['sig']:.2f}"}
        metrics["BAK"] = f"{scores['bak']:.2f}"
        rows.append(DemoRow(name, f"{name}.wav", f"{name}.png", {**metrics, **extra}))
    done += 1
    progress(done, steps)

    readings = [(voice, voice, None) for voice in READ_VOICES]
    readings.append(("blend " + ", ".join(f"{k} {v:.0%}" for k, v in BLEND.items()), None, BLEND))
    for title, voice, blend in readings:
        speech_out, seconds = _timed(read, PARAGRAPH, voice=voice, blend=blend)
        audio = speech_out.audio
        name = "read-" + ("blend" if blend else str(voice))
        save(audio, out / f"{name}.wav")
        score = dnsmos(audio)
        metrics = {"DNSMOS OVRL": f"{score['ovrl']:.2f}", "RTF": f"{seconds / audio.duration:.3f}"}
        metrics["watermark"] = "found" if detect(audio).marked else "missing"
        rows.append(DemoRow(f"read: {title}", f"{name}.wav", None, metrics))
        done += 1
        progress(done, steps)

    rows += clone_rows(out)
    done += 1
    progress(done, steps)

    index = out / "index.html"
    index.write_text(render_page(rows), encoding="utf-8")
    progress(steps, steps)
    return index


def clone_rows(out: Path) -> list[DemoRow]:
    """Zero-shot cloning with our Voicebox model: the reference and the new words in its voice."""
    from .engines.quality import dnsmos
    from .engines.speaker import similarity
    from .model.sample import load_models
    from .provenance import Consent, detect
    from .tasks.read import read, read_like

    reference = read(CLONE_REFERENCE, blend=CLONE_BLEND).audio
    load_models(None)  # loading the networks once is not part of the real-time factor
    # The reference is a blend of bundled synthetic voices, no person's: the statement says so.
    consent = Consent(f"The reference is a blend of voicebox's bundled voices {CLONE_BLEND}.")
    clone, seconds = _timed(
        read_like, CLONE_TEXT, reference, CLONE_REFERENCE, seed=0, consent=consent
    )
    save(reference, out / "clone-reference.wav")
    save(clone.audio, out / "clone.wav")
    score = dnsmos(clone.audio)
    metrics = {
        "DNSMOS OVRL": f"{score['ovrl']:.2f}",
        "RTF": f"{seconds / clone.audio.duration:.3f}",
        "similarity to reference": f"{similarity(clone.audio, reference):.2f}",
        "watermark": "found" if detect(clone.audio).marked else "missing",
    }
    return [
        DemoRow("clone: the reference (a voice the model never trained on)", "clone-reference.wav"),
        DemoRow("clone: new words in that voice (our Voicebox model)", "clone.wav", None, metrics),
    ]


def render_page(rows: list[DemoRow]) -> str:
    """A self-contained HTML page (no network) with players, spectrograms and a metrics table."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row.metrics if k not in keys]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(row.metrics.get(k, ''))}</td>" for k in keys)
        player = f'<audio controls preload="none" src="{html.escape(row.file)}"></audio>'
        body.append(f"<tr><td>{html.escape(row.title)}</td><td>{player}</td>{cells}</tr>")
    images = "".join(
        f'<figure><img src="{html.escape(r.image)}" alt="{html.escape(r.title)} spectrogram">'
        f"<figcaption>{html.escape(r.title)}</figcaption></figure>"
        for r in rows
        if r.image
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;"
        "text-align:left}figure{margin:1em 0}img{max-width:100%}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>voicebox demo</title>"
        f"<style>{style}</style></head><body><h1>voicebox demo</h1>"
        "<p>Everything below was generated and measured on this computer, offline.</p>"
        f"<h2>Listen</h2><table><tr><th>example</th><th>audio</th>{head}</tr>{''.join(body)}</table>"
        f"<h2>Before and after cleaning</h2>{images}</body></html>"
    )
