"""Zero-shot reading on real voices the model never trained on, against the nearest stock voice.

Usage: .venv/bin/python bench/zero_shot.py [--speakers 0] [--sentences 2] [--checkpoint checkpoints/small]
       [--out bench/results/zero_shot.json]

Every speaker of the eval_* sets in ../shared/data/speech (LibriSpeech test-other, LibriTTS test-clean,
VCTK: 62 speakers, none in any training set): a 3–6 s utterance is the prompt (with its transcript),
each of `--sentences` new sentences is read (a) by our model prompted with it and (b) by the bundled
single voice whose resemblyzer embedding is nearest to the prompt, read by its own engine. Scores:
whisper tiny.en WER (pooled), speaker similarity of the output to ANOTHER utterance of the same speaker
(never the prompt), DNSMOS OVRL, and the model's RTF (whole call: prompt alignment, ODE at NFE 16, vocoder)
at the threads given by VOICEBOX_THREADS (default 2). Skips cleanly without the shared data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import SPEECH, mono16k, nearest_stock, rtf_call, score, stock_embeddings, summary  # noqa: E402
from voicebox.audio import load  # noqa: E402

EVAL_SETS = ("eval_librispeech_test_other10", "eval_libritts_test10", "eval_vctk42")
SENTENCES = [
    "The children counted twelve small stones near the river before dinner.",
    "A quiet student repaired the broken clock while everyone was asleep.",
    "Our neighbour described the yellow kite to the captain.",
    "The teacher found a map of the valley behind the school.",
    "Please bring the green basket to the kitchen after lunch.",
    "He opened the window and listened to the rain on the roof.",
]


def eval_speakers(limit: int = 0) -> list[dict]:
    """One dict per eval speaker: prompt (3–6 s, with transcript) and another utterance of theirs."""
    out = []
    for name in EVAL_SETS:
        table = SPEECH / name / "transcripts.tsv"
        if not table.is_file():
            continue
        by_speaker: dict[str, list[tuple[Path, str]]] = {}
        for row in table.read_text().splitlines()[1:]:
            parts = row.split("\t")
            if len(parts) >= 3 and parts[2].strip():
                by_speaker.setdefault(parts[1], []).append((SPEECH / name / parts[0], parts[2]))
        for spk, utts in sorted(by_speaker.items()):
            clips = [(mono16k(load(p)), text) for p, text in utts[:6]]
            prompts = [c for c in clips if 3.0 <= c[0].duration <= 6.0]
            if not prompts:  # cut a longer one at 6 s? its transcript would no longer fit: skip
                prompts = sorted(clips, key=lambda c: abs(c[0].duration - 4.5))[:1]
                if not prompts or not 2.0 <= prompts[0][0].duration <= 8.0:
                    continue
            prompt = prompts[0]
            others = [c for c in clips if c is not prompt]
            if not others:
                continue
            out.append(
                {
                    "name": spk,
                    "set": name,
                    "prompt": prompt[0],
                    "prompt_text": prompt[1],
                    "other": max(others, key=lambda c: c[0].duration)[0],
                }
            )
    return out[:limit] if limit else out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speakers", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--sentences", type=int, default=2)
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "zero_shot.json"))
    args = parser.parse_args()
    threads = int(os.environ["VOICEBOX_THREADS"])
    torch.set_num_threads(threads)
    if args.checkpoint:
        os.environ["VOICEBOX_CHECKPOINT"] = args.checkpoint
    started = time.time()
    speakers = eval_speakers(args.speakers)
    if not speakers:
        print(f"skipped: no eval sets under {SPEECH}")
        return
    from voicebox.engines import tts
    from voicebox.model import sample

    models = sample.load_models(None)
    stock = stock_embeddings()
    first = speakers[0]
    sample.zero_shot(SENTENCES[0], first["prompt"], first["prompt_text"], nfe=2)  # warm-up
    rows, stock_rows = [], []
    for i, v in enumerate(speakers):
        name = nearest_stock(v["prompt"], stock)
        for k in range(args.sentences):
            text = SENTENCES[(i + k) % len(SENTENCES)]
            out, secs = rtf_call(
                sample.zero_shot, text, v["prompt"], v["prompt_text"], nfe=16, seed=args.seed
            )
            row = {"speaker": v["name"], "set": v["set"], "text": text}
            row["rtf"] = round(secs / max(out.duration, 1e-6), 3)
            row.update(score(out, text, v["other"]))
            rows.append(row)
            base = tts.synthesize(text, name, lang="en")
            srow = {"speaker": v["name"], "set": v["set"], "stock_voice": name}
            srow.update(score(base, text, v["other"]))
            stock_rows.append(srow)
            print(
                f"[{time.time() - started:5.0f}s] {v['name']}: model sim {row['similarity']} "
                f"wer-hyp {row['hyp']!r} mos {row['dnsmos_ovrl']} rtf {row['rtf']} | "
                f"stock {name} sim {srow['similarity']} mos {srow['dnsmos_ovrl']}",
                flush=True,
            )
    sets = sorted({r["set"] for r in rows})
    model_sum, stock_sum = summary(rows), summary(stock_rows)
    result = {
        "command": "python bench/zero_shot.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "checkpoint": str(os.environ.get("VOICEBOX_CHECKPOINT", "checkpoints/small")),
        "vocoder": models.vocoder_name,
        "threads": threads,
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "speakers": len(speakers),
        "sentences_per_speaker": args.sentences,
        "voicebox": model_sum,
        "nearest_stock_voice": stock_sum,
        "similarity_margin": round(model_sum["similarity"] - stock_sum["similarity"], 3),
        "by_set": {
            s: {
                "voicebox": summary([r for r in rows if r["set"] == s]),
                "nearest_stock_voice": summary([r for r in stock_rows if r["set"] == s]),
            }
            for s in sets
        },
        "rows": rows,
        "stock_rows": stock_rows,
        "seconds": round(time.time() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(args.out)
    print(
        json.dumps({k: result[k] for k in ("voicebox", "nearest_stock_voice", "similarity_margin")})
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
