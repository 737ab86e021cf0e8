"""Do read's controls keep their promise? --speed (duration ratio against speed 1), --pitch (whisper
WER and the measured median F0 shift) and --loudness (measured integrated loudness and true peak).

Usage: .venv/bin/python bench/controls.py [--voices piper_joe,jm_kumo,espeak:en-us] [--quick]
Writes bench/results/controls.json. Engines run with 1 thread; WER is whisper tiny.en.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from read import SENTENCES, wer  # noqa: E402
from voicebox import dsp  # noqa: E402
from voicebox.audio import loudness  # noqa: E402
from voicebox.engines import asr  # noqa: E402
from voicebox.tasks.read import read  # noqa: E402

PLAIN = SENTENCES[:5]
SPEEDS = (0.5, 0.75, 1.25, 1.5, 2.0, 3.0, 4.0)
PITCHES = (-4.0, -2.0, 2.0, 4.0)
TARGETS = (-23.0, -16.0, -14.0)


def reading(text: str, voice: str, **controls: float):
    return read(text, voice=voice, **controls).audio


def speeds(voice: str, text: str) -> dict:
    base = reading(text, voice).duration
    return {str(s): round(base / reading(text, voice, speed=s).duration, 3) for s in SPEEDS} | {
        "seconds_at_1": round(base, 3)
    }


def pitches(voice: str) -> dict:
    out = {}
    for semitones in (0.0, *PITCHES):
        audios = [reading(t, voice, pitch=semitones) for t in PLAIN]
        hyps = [asr.transcribe_text(a) for a in audios]
        f0 = [dsp.median_f0(a.samples[0], a.rate) for a in audios]
        out[str(semitones)] = {"wer": round(wer(PLAIN, hyps), 4), "f0": f0}
    base = out["0.0"]["f0"]
    for row in out.values():
        pairs = zip(row["f0"], base, strict=True)
        moved = [12 * math.log2(f / b) for f, b in pairs if f and b]
        row["f0_shift_st"] = round(sum(moved) / len(moved), 2) if moved else None
        row["f0"] = round(sum(row["f0"]) / len(row["f0"]), 1)
    return out


def loudness_rows(voice: str, text: str) -> dict:
    speech = reading(text, voice)
    out = {
        "as_read": round(loudness(speech), 2),
        "true_peak_as_read": round(dsp.true_peak(speech.samples), 2),
    }
    for target in TARGETS:
        samples, got = dsp.level(speech.samples, speech.rate, target)
        out[str(target)] = {
            "measured": got.loudness,
            "true_peak": got.true_peak,
            "limited_db": got.limited_db,
            "check_lufs": round(loudness(type(speech)(samples, speech.rate)), 2),
            "check_true_peak": round(dsp.true_peak(samples), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", default="piper_joe,jm_kumo,espeak:en-us")
    parser.add_argument("--quick", action="store_true", help="Speed and loudness only.")
    args = parser.parse_args()
    text = " ".join(PLAIN)
    results: dict = {"text": text}
    for voice in args.voices.split(","):
        started = time.time()
        row = {"speed_ratio": speeds(voice, text), "loudness": loudness_rows(voice, text)}
        if not args.quick:
            row["pitch"] = pitches(voice)
        row["seconds"] = round(time.time() - started, 1)
        results[voice] = row
        print(voice, json.dumps(row), flush=True)
    out = Path(__file__).parent / "results" / "controls.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
