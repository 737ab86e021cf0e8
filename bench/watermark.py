"""Watermark benchmark: detection after common transforms on 3 s crops, false positives, audibility.

Usage: .venv/bin/python bench/watermark.py [--quick] [--crops 4]
- hosts: bundled voices (Piper joe, Kokoro packs, espeak-ng) reading Harvard sentences, and real
  speech from ../shared/data/speech (LJ Speech, LibriSpeech, LibriTTS, VCTK; skipped when absent)
- each host is marked with voicebox.provenance.mark, transformed, and `--crops` random 3 s
  crops are checked with detect(): detection rate and payload decode rate per transform
- false positives: the same hosts unmarked (3 s crops and whole files), plus noise and music clips
- audibility: PESQ-WB marked vs unmarked (16 kHz), DNSMOS OVRL/SIG change, mark-to-speech SNR
Writes bench/results/watermark.json. Every engine runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from voicebox.audio import Audio, ffmpeg_exe, load  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "watermark.json"
CROP_S = 3.0
SENTENCES = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us. A large size in stockings is hard to sell.",
    "The boy was there when the sun rose. A rod is used to catch pink salmon.",
)


def bundled_voices(quick: bool) -> list[tuple[str, Audio]]:
    """Speech from every bundled voice (Piper, Kokoro packs, espeak-ng), one or two sentences each."""
    from voicebox.engines import tts

    voices = [tts.PIPER_VOICE, *tts.KOKORO_VOICES, "espeak:en"]
    if quick:
        voices = voices[:2]
    out = []
    for i, voice in enumerate(voices):
        text = f"{SENTENCES[i % len(SENTENCES)]} {SENTENCES[(i + 1) % len(SENTENCES)]}"
        try:
            out.append((f"voice:{voice}", tts.synthesize(text, voice)))
        except Exception as exc:  # a voice that fails to load is reported, not fatal
            print(f"skip voice {voice}: {exc}", file=sys.stderr)
    return out


def real_speech(quick: bool) -> list[tuple[str, Audio]]:
    """Real recordings under ../shared/data/speech (not the 8 kHz spoken digits)."""
    folder = DATA / "speech"
    if not folder.is_dir():
        return []
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3")
        and "spoken_digits" not in p.parts
        and "_meta" not in p.parts
    )
    if quick:
        files = files[::8]
    return [(str(p.relative_to(DATA)), load(p, mono=True)) for p in files]


def digit_strings(per_speaker: int = 5) -> list[tuple[str, Audio]]:
    """Real 8 kHz speech from six speakers: ten spoken digits joined into ~4 s clips (unmarked)."""
    folder = DATA / "speech" / "spoken_digits"
    if not folder.is_dir():
        return []
    speakers = sorted({p.stem.split("_")[1] for p in folder.glob("*_*_*.wav")})
    out = []
    for speaker in speakers:
        for take in range(per_speaker):
            parts = [load(folder / f"{d}_{speaker}_{take}.wav", mono=True) for d in range(10)]
            joined = np.concatenate([p.samples for p in parts], axis=1)
            out.append((f"spoken_digits:{speaker}:{take}", Audio(joined, parts[0].rate)))
    return out


def interferers() -> list[tuple[str, Audio]]:
    """Noise and music clips (unmarked) for the false-positive count."""
    folder = DATA / "noise" / "nature_music"
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"):
            try:
                out.append((str(p.relative_to(DATA)), load(p, mono=True)))
            except Exception as exc:
                print(f"skip {p.name}: {exc}", file=sys.stderr)
    return out


def ffmpeg_round_trip(audio: Audio, codec: list[str], container: str) -> Audio:
    """Encode with the bundled ffmpeg and decode back at the same rate."""
    raw = np.clip(audio.samples[0], -1, 1).astype("<f4").tobytes()
    base = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    enc = subprocess.run(
        base + ["-f", "f32le", "-ar", str(audio.rate), "-ac", "1", "-i", "-"]
        + codec + ["-f", container, "-"],
        input=raw, capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix="." + container) as f:
        f.write(enc)
        f.flush()
        return load(f.name, rate=audio.rate, mono=True)


def white_noise(audio: Audio, snr_db: float, seed: int) -> Audio:
    x = audio.samples[0]
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return Audio(x + noise, audio.rate)


def transforms() -> dict[str, object]:
    """Name → function(Audio, seed) → Audio."""
    from voicebox.tasks.clean import clean

    return {
        "none": lambda a, s: a,
        "mp3_64k": lambda a, s: ffmpeg_round_trip(a, ["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
        "opus_32k": lambda a, s: ffmpeg_round_trip(a, ["-c:a", "libopus", "-b:a", "32k"], "ogg"),
        "resample_16k": lambda a, s: a.to_rate(16_000),
        "resample_8k": lambda a, s: a.to_rate(8_000),
        "gain_+10dB": lambda a, s: Audio(a.samples * 10**0.5, a.rate),
        "gain_-10dB": lambda a, s: Audio(a.samples * 10**-0.5, a.rate),
        "gain_+10dB_clipped": lambda a, s: Audio(np.clip(a.samples * 10**0.5, -1, 1), a.rate),
        "noise_20dB": lambda a, s: white_noise(a, 20.0, s),
        "denoise_dfn3": lambda a, s: clean(a),
        "noise_20dB+denoise": lambda a, s: clean(white_noise(a, 20.0, s)),
    }


def crops(audio: Audio, n: int, rng: np.random.Generator) -> list[Audio]:
    """`n` random 3 s crops (the whole clip when shorter)."""
    size = round(CROP_S * audio.rate)
    if audio.frames <= size:
        return [audio]
    starts = rng.integers(0, audio.frames - size, n)
    return [Audio(audio.samples[:, s : s + size], audio.rate) for s in starts]


def _score(found: object) -> tuple[float, bool]:
    return found.score, found.marked


def audibility(original: Audio, marked: Audio) -> dict[str, float]:
    from pesq import pesq

    from voicebox.engines.quality import dnsmos

    a16, m16 = original.to_rate(16_000).samples[0], marked.to_rate(16_000).samples[0]
    d0, d1 = dnsmos(original), dnsmos(marked)
    diff = marked.samples - original.samples
    return {
        "pesq_wb": float(pesq(16_000, a16, m16, "wb")),
        "dnsmos_ovrl_change": d1["ovrl"] - d0["ovrl"],
        "dnsmos_sig_change": d1["sig"] - d0["sig"],
        "snr_db": float(10 * np.log10(np.sum(original.samples**2) / np.sum(diff**2))),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a few hosts only")
    parser.add_argument("--crops", type=int, default=4, help="3 s crops per host and transform")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from voicebox.provenance import current_payload, detect, mark

    rng = np.random.default_rng(7)
    started = time.time()
    hosts = bundled_voices(args.quick) + real_speech(args.quick)
    print(f"{len(hosts)} hosts", file=sys.stderr)
    expected = current_payload().pack()
    ops = transforms()
    hits = {name: [] for name in ops}
    payload_ok = {name: [] for name in ops}
    whole_ok = {name: [] for name in ops}
    quality = []
    fp_crops, fp_files = [], []
    mark_time = detect_time = audio_s = crop_s = 0.0
    marked_hosts = []
    lj = 0
    for i, (name, audio) in enumerate(hosts):
        fp_files.append((name, *_score(detect(audio))))
        for crop in crops(audio, args.crops * 2, rng):
            fp_crops.append((name, *_score(detect(crop))))
        if "ljspeech_sample" in name:  # 32 clips of one reader: mark every other one (CPU time)
            lj += 1
            if lj % 2 == 0:
                continue
        marked_hosts.append(name)
        t = time.process_time()
        marked = mark(audio)
        mark_time += time.process_time() - t
        audio_s += audio.duration
        quality.append({"host": name, **audibility(audio, marked)})
        for op, fn in ops.items():
            changed = fn(marked, i)
            whole = detect(changed)
            whole_ok[op].append(whole.payload is not None and whole.payload.pack() == expected)
            for crop in crops(changed, args.crops, rng):
                t = time.process_time()
                found = detect(crop)
                detect_time += time.process_time() - t
                crop_s += crop.duration
                hits[op].append(found.marked)
                payload_ok[op].append(
                    found.payload is not None and found.payload.pack() == expected
                )
        print(f"{i + 1}/{len(hosts)} {name} {time.time() - started:.0f}s", file=sys.stderr)
    digits = [(name, *_score(detect(a))) for name, a in digit_strings()]
    other = []
    for name, a in interferers():
        other.append((name, *_score(detect(a))))
        fp_crops.extend((name, *_score(detect(c))) for c in crops(a, 2, rng))
    checks = fp_crops + fp_files + digits + other
    scores = np.array([s for _, s, _ in checks])
    flagged = np.array([m for _, _, m in checks])
    pesq_values = np.array([q["pesq_wb"] for q in quality])
    result = {
        "hosts_unmarked_checked": len(hosts),
        "hosts_marked": len(marked_hosts),
        "marked_host_names": marked_hosts,
        "crop_seconds": CROP_S,
        "crops_per_host_and_transform": args.crops,
        "detection_rate": {op: float(np.mean(v)) for op, v in hits.items()},
        "payload_decoded_rate": {op: float(np.mean(v)) for op, v in payload_ok.items()},
        "payload_decoded_rate_whole_host": {op: float(np.mean(v)) for op, v in whole_ok.items()},
        "host_seconds_mean": float(np.mean([a.duration for n, a in hosts if n in marked_hosts])),
        "false_positive": {
            "checks": len(scores),
            "rate": float(np.mean(flagged)),
            "max_score": float(scores.max()),
            "threshold": 5.0,
            "flagged": [name for name, _, m in checks if m],
            "speech_crops": len(fp_crops),
            "whole_files": len(fp_files),
            "spoken_digit_clips": len(digits),
            "noise_music_files": len(other),
            "noise_music_max_score": max((s for _, s, _ in other), default=None),
        },
        "audibility": {
            "pesq_wb_mean": float(pesq_values.mean()),
            "pesq_wb_min": float(pesq_values.min()),
            "dnsmos_ovrl_change_mean": float(np.mean([q["dnsmos_ovrl_change"] for q in quality])),
            "dnsmos_ovrl_change_max_abs": float(
                np.max(np.abs([q["dnsmos_ovrl_change"] for q in quality]))
            ),
            "dnsmos_sig_change_mean": float(np.mean([q["dnsmos_sig_change"] for q in quality])),
            "snr_db_mean": float(np.mean([q["snr_db"] for q in quality])),
            "per_host": quality,
        },
        "cpu_rtf": {"mark": mark_time / audio_s, "detect": detect_time / max(crop_s, 1e-9)},
        "seconds": time.time() - started,
        "command": "python bench/watermark.py" + (" --quick" if args.quick else ""),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("detection_rate", "payload_decoded_rate", "payload_decoded_rate_whole_host")
    summary = {k: result[k] for k in (*keys, "false_positive", "cpu_rtf")}
    summary["audibility"] = {k: v for k, v in result["audibility"].items() if k != "per_host"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
