"""Zero-shot reading on real voices the model never trained on, against the nearest stock voice.

Usage: .venv/bin/python bench/zero_shot.py [--speakers 0] [--sentences 2]
       [--checkpoint [NAME=]FOLDER ...] [--out bench/results/zero_shot.json]
Several --checkpoint values are compared side by side in one run (default: the shipped one).

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
from itertools import zip_longest
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import SPEECH, mono16k, nearest_stock, rtf_call, score, stock_embeddings, summary  # noqa: E402
from voicebox.audio import Audio, load  # noqa: E402
from voicebox.model.features import MEL  # noqa: E402

EVAL_SETS = ("eval_librispeech_test_other10", "eval_libritts_test10", "eval_vctk42")
SENTENCES = [
    "The children counted twelve small stones near the river before dinner.",
    "A quiet student repaired the broken clock while everyone was asleep.",
    "Our neighbour described the yellow kite to the captain.",
    "The teacher found a map of the valley behind the school.",
    "Please bring the green basket to the kitchen after lunch.",
    "He opened the window and listened to the rain on the roof.",
]


def make_prompt(clips: list[tuple[Audio, str]]) -> tuple[Audio, str, set[int]] | None:
    """A 3-6 s prompt with its words: one clip of that length; else short clips joined (VCTK); else
    a long clip cut after the last word that ends by 6 s (forced alignment). Returns the clips used."""
    from voicebox.model.align import align_words

    for k, (audio, text) in enumerate(clips):
        if 3.0 <= audio.duration <= 6.0:
            return audio, text, {k}
    order = sorted(range(len(clips)), key=lambda k: clips[k][0].duration)
    pieces, texts, used, total = [], [], set(), 0.0
    gap = np.zeros(int(0.25 * MEL.rate), np.float32)
    for k in order[:-1]:  # keep the longest clip as the other utterance
        audio, text = clips[k]
        if total + audio.duration > 6.0:
            break
        pieces += [audio.samples[0], gap]
        texts.append(text.rstrip(".") + ".")
        used.add(k)
        total += audio.duration + 0.25
        if total >= 3.0:
            return Audio(np.concatenate(pieces[:-1])[None], MEL.rate), " ".join(texts), used
    for k in order:
        audio, text = clips[k]
        if audio.duration > 6.0 and len(clips) > 1:
            try:
                _, _, words = align_words(audio, text)
            except Exception:  # noqa: BLE001 - try the next clip
                continue
            kept = [w for w in words if w.end <= 6.0]
            if kept and kept[-1].end >= 3.0:
                end = int((kept[-1].end + 0.1) * MEL.rate)
                cut = Audio(audio.samples[:, :end], MEL.rate)
                return cut, " ".join(w.text for w in kept), {k}
    return None


def eval_speakers(limit: int = 0) -> list[dict]:
    """One dict per eval speaker: prompt (3–6 s, with transcript) and another utterance of theirs."""
    per_set: list[list[dict]] = []
    for name in EVAL_SETS:
        out: list[dict] = []
        per_set.append(out)
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
            made = make_prompt(clips)
            if made is None:
                continue
            prompt, prompt_text, used = made
            others = [c for k, c in enumerate(clips) if k not in used]
            if not others:
                continue
            out.append(
                {
                    "name": spk,
                    "set": name,
                    "prompt": prompt,
                    "prompt_text": prompt_text,
                    "other": max(others, key=lambda c: c[0].duration)[0],
                }
            )
    mixed = [v for group in zip_longest(*per_set) for v in group if v is not None]
    # round-robin over the sets: a small limit sees all three
    return mixed[:limit] if limit else mixed


def run_checkpoint(folder: str, speakers: list[dict], sentences: int, seed: int, log) -> list[dict]:  # noqa: ANN001
    """Zero-shot rows for every speaker and sentence with the checkpoint in `folder`."""
    from voicebox.model import sample

    os.environ["VOICEBOX_CHECKPOINT"] = folder
    sample.load_models.cache_clear()
    first = speakers[0]
    sample.zero_shot(SENTENCES[0], first["prompt"], first["prompt_text"], nfe=2)  # warm-up
    rows = []
    for i, v in enumerate(speakers):
        for k in range(sentences):
            text = SENTENCES[(i + k) % len(SENTENCES)]
            out, secs = rtf_call(
                sample.zero_shot, text, v["prompt"], v["prompt_text"], nfe=16, seed=seed
            )
            row = {"speaker": v["name"], "set": v["set"], "text": text}
            row["rtf"] = round(secs / max(out.duration, 1e-6), 3)
            row.update(score(out, text, v["other"]))
            rows.append(row)
            log(
                f"{v['name']}: sim {row['similarity']} mos {row['dnsmos_ovrl']} rtf {row['rtf']} {row['hyp']!r}"
            )
    return rows


def stock_rows(speakers: list[dict], sentences: int, log) -> list[dict]:  # noqa: ANN001
    """The baseline: each sentence read by the bundled voice nearest to the prompt."""
    from voicebox.engines import tts

    stock = stock_embeddings()
    rows = []
    for i, v in enumerate(speakers):
        name = nearest_stock(v["prompt"], stock)
        for k in range(sentences):
            text = SENTENCES[(i + k) % len(SENTENCES)]
            row = {"speaker": v["name"], "set": v["set"], "stock_voice": name}
            row.update(score(tts.synthesize(text, name, lang="en"), text, v["other"]))
            rows.append(row)
        log(f"stock {v['name']} {name}: sim {row['similarity']} mos {row['dnsmos_ovrl']}")
    return rows


def rtf_only(folder: str, speakers: list[dict], args, threads: int, load: float) -> None:  # noqa: ANN001
    """Real-time factor of whole zero-shot calls (alignment, ODE at NFE 16, vocoder), no scoring."""
    from voicebox.model import sample

    os.environ["VOICEBOX_CHECKPOINT"] = folder
    sample.load_models.cache_clear()
    first = speakers[0]
    sample.zero_shot(SENTENCES[0], first["prompt"], first["prompt_text"], nfe=2)  # warm-up
    spent = spoken = 0.0
    for i, v in enumerate(speakers):
        t0 = time.perf_counter()
        out = sample.zero_shot(SENTENCES[i % len(SENTENCES)], v["prompt"], v["prompt_text"], seed=0)
        spent += time.perf_counter() - t0
        spoken += out.duration
    result = {
        "command": "python bench/zero_shot.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": threads,
        "load_average_at_start": load,
        "vocoder": sample.load_models(None).vocoder_name,
        "calls": len(speakers),
        "rtf": round(spent / spoken, 3),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


def by_set(rows: list[dict]) -> dict:
    """Summary per eval set."""
    return {
        s: summary([r for r in rows if r["set"] == s]) for s in sorted({r["set"] for r in rows})
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speakers", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--sentences", type=int, default=2)
    parser.add_argument(
        "--checkpoint", action="append", help="[NAME=]FOLDER; repeat to compare (default: shipped)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "zero_shot.json"))
    parser.add_argument(
        "--rtf-only", action="store_true", help="time the model alone (idle machine) into --out"
    )
    args = parser.parse_args()
    threads = int(os.environ["VOICEBOX_THREADS"])
    torch.set_num_threads(threads)
    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:5.0f}s] {msg}", flush=True)

    speakers = eval_speakers(args.speakers)
    if not speakers:
        print(f"skipped: no eval sets under {SPEECH}")
        return
    from voicebox.model import checkpoint, sample

    specs = args.checkpoint or [str(checkpoint.find(None))]
    load_average = round(os.getloadavg()[0], 2)
    if args.rtf_only:
        rtf_only(specs[0].rpartition("=")[2], speakers, args, threads, load_average)
        return
    base = stock_rows(speakers, args.sentences, log)
    base_sum = summary(base)
    systems = {}
    for spec in specs:
        name, _, folder = spec.rpartition("=")
        rows = run_checkpoint(folder, speakers, args.sentences, args.seed, log)
        model_sum = summary(rows)
        systems[name or folder] = {
            "folder": folder,
            "vocoder": sample.load_models(None).vocoder_name,
            "summary": model_sum,
            "similarity_margin_over_stock": round(
                model_sum["similarity"] - base_sum["similarity"], 3
            ),
            "by_set": by_set(rows),
            "rows": rows,
        }
        log(f"{name or folder}: {model_sum} vs stock {base_sum}")
    result = {
        "command": "python bench/zero_shot.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": threads,
        "load_average_at_start": load_average,
        "speakers": len(speakers),
        "sentences_per_speaker": args.sentences,
        "prompt": "3-6 s utterance with its transcript; similarity measured to another utterance",
        "nearest_stock_voice": {"summary": base_sum, "by_set": by_set(base), "rows": base},
        "voicebox": systems,
        "seconds": round(time.time() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(args.out)
    print(
        json.dumps(
            {
                "stock": base_sum,
                **{
                    k: (v["summary"], v["similarity_margin_over_stock"]) for k, v in systems.items()
                },
            }
        )
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
