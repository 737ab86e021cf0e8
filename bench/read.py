"""Read-aloud benchmark: per voice RTF, time to first audio and whisper tiny.en WER.

Usage: .venv/bin/python bench/read.py [--voices piper_joe,jm_kumo,...] [--quick]
Writes bench/results/read.json. CPU times are process CPU seconds (the machine is shared, so wall
time is reported too but CPU time is the fair number); engines run with 1 thread.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from voicebox.engines import asr  # noqa: E402
from voicebox.tasks.read import read, read_stream  # noqa: E402
from voicebox.text import normalize  # noqa: E402

# Varied sentences: Harvard-style plain text plus numbers, dates, money, abbreviations, a URL.
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "Dr. Smith arrived at 7:30 pm on March 3rd, 2021.",
    "The ticket costs $42.50, about 15% more than last year.",
    "Mr. Brown lives at 221 Baker St. with his 3 cats.",
    "Our website is example.com, and the meeting is on 2024-06-12.",
    "The car drove 120 km in 2 hours.",
    "She finished 2nd out of 1,500 runners.",
    "The package weighs 4 kg, e.g. about as much as a small dog.",
]

PARAGRAPH = (
    "The old lighthouse stood at the edge of the cliff, its white paint faded by a hundred years "
    "of salt and wind. Every evening at sunset, the keeper climbed the narrow stairs, all 212 of "
    "them, to light the great lamp. Ships passing the rocky coast depended on that beam to find "
    "their way safely into the harbor. In 1987, the lighthouse was automated, and the last keeper, "
    "a quiet man named Thomas Reed, moved to a small cottage in the village below. He still walked "
    "up the hill every morning to look at the sea. Visitors often asked him whether he missed the "
    "work. He would smile and say that the light never really needed him; he had needed the light. "
    "Today the building is a museum, open from 9 am to 5 pm, and tickets cost $8. Children love "
    "the view from the top, where on a clear day you can see more than 30 km across the water. "
    "The lamp still turns each night, guiding fishing boats home as it has done for generations, "
    "and the village holds a small festival every summer in honor of the brave lighthouse keepers who "
    "once served there so faithfully, year after year."
)


def words_for_wer(text: str) -> list[str]:
    """Both sides normalised the same way: our normaliser, lower case, no punctuation or hyphens."""
    spoken = normalize(text).lower().replace("-", " ")
    spoken = re.sub(r"[^a-z0-9' ]+", " ", spoken)
    return spoken.split()


def wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    ref = [" ".join(words_for_wer(r)) for r in refs]
    hyp = [" ".join(words_for_wer(h)) or "<empty>" for h in hyps]
    return float(jiwer.wer(ref, hyp))


def measure_wer(voice: str | None, blend: str | None) -> dict:
    hyps, cpu, audio_s = [], 0.0, 0.0
    for sentence in SENTENCES:
        t = time.process_time()
        speech = read(sentence, voice=voice, blend=blend)
        cpu += time.process_time() - t
        audio_s += speech.audio.duration
        hyps.append(asr.transcribe_text(speech.audio))
    return {
        "wer": round(wer(SENTENCES, hyps), 4),
        "rtf_cpu_sentences": round(cpu / audio_s, 4),
        "hypotheses": hyps,
    }


def measure_paragraph(voice: str | None, blend: str | None) -> dict:
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    first_cpu = first_wall = None
    audio_s = 0.0
    chunks = []
    for chunk, _timing in read_stream(PARAGRAPH, voice=voice, blend=blend):
        if first_cpu is None:
            first_cpu = time.process_time() - t_cpu
            first_wall = time.perf_counter() - t_wall
        audio_s += chunk.duration
        chunks.append(chunk)
    cpu = time.process_time() - t_cpu
    wall = time.perf_counter() - t_wall
    return {
        "words": len(PARAGRAPH.split()),
        "audio_s": round(audio_s, 2),
        "rtf_cpu": round(cpu / audio_s, 4),
        "rtf_wall": round(wall / audio_s, 4),
        "first_audio_cpu_s": round(first_cpu or 0.0, 3),
        "first_audio_wall_s": round(first_wall or 0.0, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", default="piper_joe,jm_kumo,jf_nezumi,jf_alpha,espeak:en-us")
    parser.add_argument("--blends", default="jm_kumo:0.7,jf_nezumi:0.3")
    parser.add_argument(
        "--paragraph-voices",
        default="piper_joe;jm_kumo;espeak:en-us;blend jm_kumo:0.7,jf_nezumi:0.3",
        help="';'-separated names of measured voices that also read the 200-word paragraph.",
    )
    parser.add_argument(
        "--merge", action="store_true", help="Keep other voices' rows already in the output file."
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "read.json"))
    args = parser.parse_args()

    choices = [(v, None) for v in args.voices.split(",") if v]
    choices += [(None, b) for b in args.blends.split(";") if b]
    # Warm every engine once so load time is not charged to the first sentence measured.
    for voice, blend in choices:
        read("Warm up.", voice=voice, blend=blend)
    asr.transcribe_text(read("Warm up.", voice="espeak:en-us").audio)
    load_before = os.getloadavg()
    out = Path(args.out)
    results = {}
    if args.merge and out.exists():
        results = json.loads(out.read_text())["results"]
    for voice, blend in choices:
        name = voice or f"blend {blend}"
        row = measure_wer(voice, blend)
        if name in args.paragraph_voices.split(";"):
            row["paragraph"] = measure_paragraph(voice, blend)
        results[name] = row
        summary = {k: v for k, v in row.items() if k != "hypotheses"}
        print(name, json.dumps(summary), flush=True)
    doc = {
        "what": "read aloud: whisper tiny.en WER on 12 sentences; 200-word paragraph RTF and "
        "time to first audio (1 engine thread, shared 2-core machine; CPU seconds are fair, "
        "wall seconds depend on load)",
        "targets": {"rtf": 0.3, "first_audio_s": 0.5},
        "threads": os.environ.get("VOICEBOX_THREADS"),
        "load_average_1min": {
            "start": round(load_before[0], 1),
            "end": round(os.getloadavg()[0], 1),
        },
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    print("wrote", out)


if __name__ == "__main__":
    main()
