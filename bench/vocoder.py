"""Vocoder copy-synthesis: real speech -> log-mel -> waveform, trained vocoder vs Griffin-Lim vs original.

Usage: .venv/bin/python bench/vocoder.py [--vocoder checkpoints/small] [--limit 8]
Scores whisper tiny.en WER (pooled over files) and DNSMOS OVRL/SIG/BAK (mean) on LJ Speech and
LibriSpeech excerpts from ../shared/data/speech; writes bench/results/vocoder.json. Skips cleanly when
the shared data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from voicebox.audio import Audio, load  # noqa: E402
from voicebox.model.features import MEL, audio_to_mel  # noqa: E402
from voicebox.model.vocoder import griffin_lim, load_vocoder  # noqa: E402

SPEECH = ROOT.parent / "shared" / "data" / "speech"


def clips(limit: int) -> list[tuple[str, Path, str | None]]:
    """(name, path, transcript or None) for LJ Speech sample files and the LibriSpeech excerpts."""
    out = []
    lj = SPEECH / "ljspeech_sample"
    if (lj / "transcripts.tsv").exists():
        rows = (lj / "transcripts.tsv").read_text().splitlines()[1:]
        for row in rows[:limit]:
            file, _, text = row.split("\t")
            out.append((Path(file).stem, lj / file, text))
    libri = SPEECH / "librispeech_excerpts"
    for txt in sorted(libri.glob("*.txt")):
        audio = next((p for p in libri.glob(txt.stem + ".*") if p.suffix != ".txt"), None)
        if (
            audio
        ):  # the .txt files hold credits, not transcripts: whisper on the original is the reference
            out.append((txt.stem, audio, None))
    return out


def norm_words(text: str) -> str:
    from voicebox.text import normalize

    spoken = normalize(text).lower().replace("-", " ")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", spoken).split())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocoder", default=None, help="checkpoint folder or vocoder.pt")
    parser.add_argument("--limit", type=int, default=8, help="LJ Speech files to use")
    parser.add_argument("--gl-iters", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vocoder.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    items = clips(args.limit)
    if not items:
        print(f"skipped: {SPEECH} not found")
        return
    import jiwer

    from voicebox.engines import asr
    from voicebox.engines.quality import dnsmos

    vocode = load_vocoder(args.vocoder)
    systems = ["original", "griffin_lim"] + (["vocoder"] if vocode else [])
    scores: dict[str, dict] = {
        s: {"refs": [], "hyps": [], "dnsmos": [], "seconds": 0.0} for s in systems
    }
    audio_seconds = 0.0
    per_file = []
    for name, path, text in items:
        audio = load(path, rate=MEL.rate, mono=True)
        audio_seconds += audio.duration
        mel = audio_to_mel(audio)
        row = {"file": name, "reference": "transcript" if text else "whisper(original)"}
        for system in systems:
            t0 = time.process_time()
            if system == "original":
                x = audio.samples[0]
            elif system == "griffin_lim":
                x = griffin_lim(mel, args.gl_iters)
            else:
                x = vocode(mel)
            scores[system]["seconds"] += time.process_time() - t0
            out = Audio(np.clip(x, -1, 1), MEL.rate)
            hyp = asr.transcribe_text(out)
            if (
                text is None
            ):  # systems come after "original", whose transcript becomes the reference
                text = hyp
            mos = dnsmos(out)
            scores[system]["refs"].append(norm_words(text))
            scores[system]["hyps"].append(norm_words(hyp) or "<empty>")
            scores[system]["dnsmos"].append(mos)
            row[system] = {"ovrl": round(mos["ovrl"], 3), "hyp": hyp}
        per_file.append(row)
        print(name, {s: row[s]["ovrl"] for s in systems}, flush=True)
    summary = {}
    for system, s in scores.items():
        summary[system] = {
            "wer": round(float(jiwer.wer(s["refs"], s["hyps"])), 4),
            **{
                k: round(float(np.mean([m[k] for m in s["dnsmos"]])), 3)
                for k in ("ovrl", "sig", "bak")
            },
            "rtf_cpu": round(s["seconds"] / audio_seconds, 4) if system != "original" else 0.0,
        }
    result = {
        "what": "copy-synthesis: log-mel of real speech re-synthesised (16 kHz, hop 256, 80 mels)",
        "wer_reference": "LJ transcripts; LibriSpeech excerpts against whisper's transcript of the original",
        "files": len(items),
        "audio_seconds": round(audio_seconds, 1),
        "vocoder": str(args.vocoder or "default checkpoint") if vocode else None,
        "griffin_lim_iterations": args.gl_iters,
        "summary": summary,
        "per_file": per_file,
        "command": " ".join(sys.argv),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
