"""Spoken-consent benchmark: is the same speaker accepted and another speaker refused?

Usage: .venv/bin/python bench/consent.py [--per-speaker 6]
- real voices from ../shared/data/speech: LibriTTS test (10 speakers), LibriSpeech test-other
  (10 speakers) and VCTK (the two VoiceBank-DEMAND clean-test speakers), several utterances each
  with their transcripts
- genuine trial: one utterance of a speaker is the reference, another utterance of the same
  speaker, with its own transcript as the "statement", is the consent clip
- impostor trial: the same reference, with another speaker's clip reading its own transcript
  (the words match; only the voice gives it away)
- wrong-words trial: a genuine clip checked against a different utterance's transcript
Scores are exactly what voicebox.provenance.verify_spoken computes (whisper word error rate and
resemblyzer cosine on safety.voice_sample); the acceptance rule is the shipped thresholds. A sweep
over similarity thresholds shows the trade-off. Writes bench/results/consent.json; one thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from voicebox import provenance  # noqa: E402
from voicebox.audio import load  # noqa: E402
from voicebox.engines import speaker  # noqa: E402
from voicebox.engines.asr import transcribe_text  # noqa: E402
from voicebox.safety import voice_sample  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "speech"
RESULTS = ROOT / "bench" / "results" / "consent.json"
SETS = {
    "libritts_test": ("eval_libritts_test10", None),
    "librispeech_test_other": ("eval_librispeech_test_other10", None),
    "vctk_clean": ("eval_vctk42", "siplabiith"),  # real VCTK recordings, not converted voices
}


def utterances(per_speaker: int) -> dict[str, list[dict]]:
    """speaker -> [{path, text, set}], at most `per_speaker` each, speakers with two or more."""
    found: dict[str, list[dict]] = {}
    for name, (folder, source) in SETS.items():
        table = DATA / folder / "transcripts.tsv"
        if not table.exists():
            continue
        with open(table, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if source and source not in row.get("source", ""):
                    continue
                items = found.setdefault(row["speaker"], [])
                if len(items) < per_speaker:
                    items.append({"path": DATA / folder / row["file"], "text": row["text"]})
                    items[-1]["set"] = name
    return {k: v for k, v in found.items() if len(v) >= 2}


def measure(speakers: dict[str, list[dict]], log) -> None:  # noqa: ANN001
    """Fill each utterance's embedding (of its voice sample) and whisper transcript."""
    total = sum(len(v) for v in speakers.values())
    done = 0
    for items in speakers.values():
        for u in items:
            audio = load(u["path"])
            u["seconds"] = round(audio.duration, 2)
            u["embedding"] = speaker.embed(voice_sample(audio))
            u["heard"] = transcribe_text(audio)
            done += 1
            if done % 20 == 0:
                log(f"  {done}/{total} utterances")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return speaker.similarity(a, b)


def trials(speakers: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Genuine, impostor and wrong-words trials with their two scores."""
    names = sorted(speakers)
    out: dict[str, list[dict]] = {"genuine": [], "impostor": [], "wrong_words": []}
    for s in names:
        items = speakers[s]
        for i, ref in enumerate(items):
            for j, clip in enumerate(items):
                if i == j:
                    continue
                wer = provenance.word_error_rate(clip["text"], clip["heard"])
                sim = cosine(clip["embedding"], ref["embedding"])
                out["genuine"].append(_row(s, s, ref, clip, wer, sim))
                other = items[(j + 1) % len(items)] if len(items) > 2 else None
                if other is not None and other is not ref:
                    wrong = provenance.word_error_rate(other["text"], clip["heard"])
                    out["wrong_words"].append(_row(s, s, ref, clip, wrong, sim))
            for t in names:
                if t == s:
                    continue
                clip = speakers[t][(i + 1) % len(speakers[t])]
                wer = provenance.word_error_rate(clip["text"], clip["heard"])
                sim = cosine(clip["embedding"], ref["embedding"])
                out["impostor"].append(_row(s, t, ref, clip, wer, sim))
    return out


def _row(ref_speaker: str, clip_speaker: str, ref: dict, clip: dict, wer: float, sim: float):  # noqa: ANN202
    return {
        "set": ref["set"],
        "reference_speaker": ref_speaker,
        "clip_speaker": clip_speaker,
        "reference": ref["path"].name,
        "clip": clip["path"].name,
        "wer": round(wer, 4),
        "similarity": round(sim, 4),
    }


def accepted(row: dict, max_wer: float, min_sim: float) -> bool:
    return row["wer"] <= max_wer and row["similarity"] >= min_sim


def rates(found: dict[str, list[dict]], max_wer: float, min_sim: float) -> dict:
    """Acceptance of genuine trials, refusal of impostors and of wrong words, overall and per set."""

    def share(rows: list[dict], accept: bool) -> float | None:
        if not rows:
            return None
        hits = sum(accepted(r, max_wer, min_sim) == accept for r in rows)
        return round(hits / len(rows), 4)

    out = {
        "same_speaker_accepted": share(found["genuine"], True),
        "other_speaker_refused": share(found["impostor"], False),
        "wrong_words_refused": share(found["wrong_words"], False),
        "genuine_refused_for_words": round(
            float(np.mean([r["wer"] > max_wer for r in found["genuine"]])), 4
        ),
        "genuine_refused_for_voice": round(
            float(np.mean([r["similarity"] < min_sim for r in found["genuine"]])), 4
        ),
        "trials": {k: len(v) for k, v in found.items()},
        "by_set": {},
    }
    for name in SETS:
        part = {k: [r for r in v if r["set"] == name] for k, v in found.items()}
        if part["genuine"]:
            out["by_set"][name] = {
                "same_speaker_accepted": share(part["genuine"], True),
                "other_speaker_refused": share(part["impostor"], False),
                "trials": {k: len(v) for k, v in part.items()},
            }
    return out


def sweep(found: dict[str, list[dict]]) -> list[dict]:
    """Voice-only error rates over similarity thresholds (words ignored)."""
    gen = np.array([r["similarity"] for r in found["genuine"]])
    imp = np.array([r["similarity"] for r in found["impostor"]])
    rows = []
    for thr in np.arange(0.50, 0.951, 0.025):
        rows.append(
            {
                "min_similarity": round(float(thr), 3),
                "same_speaker_refused": round(float(np.mean(gen < thr)), 4),
                "other_speaker_accepted": round(float(np.mean(imp >= thr)), 4),
            }
        )
    return rows


def summary(values: list[float]) -> dict:
    x = np.array(values)
    return {
        "min": round(float(x.min()), 4),
        "p05": round(float(np.percentile(x, 5)), 4),
        "median": round(float(np.median(x)), 4),
        "p95": round(float(np.percentile(x, 95)), 4),
        "max": round(float(x.max()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-speaker", type=int, default=6, help="Utterances per speaker.")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="Recompute the rates of the stored trials at the current thresholds (no audio).",
    )
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    max_wer, min_sim = provenance.SPOKEN_MAX_WER, provenance.SPOKEN_MIN_SIMILARITY
    if args.rescore:
        result = json.loads(RESULTS.read_text(encoding="utf-8"))
        result["thresholds"] = {"max_wer": max_wer, "min_similarity": min_sim}
        result["rates"] = rates(result["trials"], max_wer, min_sim)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(json.dumps({k: result[k] for k in ("thresholds", "rates")}, indent=1))
        return
    speakers = utterances(args.per_speaker)
    if not speakers:
        raise SystemExit(f"no speech data under {DATA}")
    log(f"{len(speakers)} speakers, {sum(len(v) for v in speakers.values())} utterances")
    measure(speakers, log)
    found = trials(speakers)
    result = {
        "what": "spoken consent: whisper WER of the statement and resemblyzer cosine to the "
        "reference, on real voices (one utterance as reference, another as the consent clip)",
        "thresholds": {"max_wer": max_wer, "min_similarity": min_sim},
        "rates": rates(found, max_wer, min_sim),
        "similarity": {k: summary([r["similarity"] for r in v]) for k, v in found.items()},
        "wer": {k: summary([r["wer"] for r in v]) for k, v in found.items()},
        "sweep": sweep(found),
        "speakers": {s: [u["path"].name for u in v] for s, v in speakers.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "command": "flock /tmp/vb/cpu.lock .venv/bin/python bench/consent.py "
        f"--per-speaker {args.per_speaker}",
        "trials": found,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("thresholds", "rates", "similarity")}, indent=1))
    log(f"wrote {RESULTS} in {result['seconds']} s")


if __name__ == "__main__":
    main()
