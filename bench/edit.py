"""Benchmark word-level editing: intelligibility, voice match, seam smoothness and speed.

(a) synthesised speakers (a bundled voice, excluded from the insert voices) and (b) real voices from
../shared/data/speech (LibriSpeech excerpts, LJ Speech; skipped when absent). For each recording:
replace two words, delete one, insert one. Reports whisper WER of the edited recording against the
edited text (whole recording, and locally: 4 words either side of the edit), speaker similarity of
the replaced span to the speaker's untouched speech with nearest-voice matching vs the plain default
voice, the seam click ratio (largest step within 10 ms of a seam / 99.9th percentile step of the
untouched audio; <= 1 means no click) and seconds per edit. Writes bench/results/edit.json.

    .venv/bin/python bench/edit.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from voicebox.audio import Audio, load  # noqa: E402
from voicebox.engines import asr, speaker, tts  # noqa: E402
from voicebox.tasks.edit import edit, normalize  # noqa: E402
from voicebox.tasks.transcribe import transcribe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speech"
OUT = ROOT / "bench" / "results" / "edit.json"
DEFAULT_VOICE = "piper_joe"
FALLBACK_DEFAULT = "jm_kumo"
REPLACEMENT = "a quiet evening by the river"
INSERTION = "really"

SYNTHETIC = {
    "piper_joe": "The old man walked slowly to the market near the station. He bought fresh bread, "
    "a jar of honey and two bright oranges for his daughter before the rain began.",
    "jf_nezumi": "Every morning the baker opened his small shop at six. The smell of warm bread "
    "drifted along the narrow street, and the neighbours came early to buy their loaves.",
    "jm_kumo": "Our team finished the bridge project a week ahead of schedule. The engineers checked "
    "every cable twice, and the city council thanked them at a short ceremony in the park.",
}


def words_of(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(ref: str, hyp: str) -> float:
    import jiwer

    return float(jiwer.wer(" ".join(words_of(ref)), " ".join(words_of(hyp))))


def local_wer(ref: str, hyp: str, new: str, before: str) -> float:
    """WER over the edited sentence's neighbourhood: 4 reference words either side of the edit."""
    import difflib

    import jiwer

    r, h = words_of(ref), words_of(hyp)
    target = words_of(new) or words_of(before)
    at = next((i for i in range(len(r)) if r[i : i + len(target)] == target), None)
    if at is None or not new:  # a deletion: look where the removed words were
        b = words_of(before)
        at = next((i for i in range(len(r)) if r[i : i + len(b)] == b), len(r) // 2)
    lo, hi = max(0, at - 4), min(len(r), at + len(words_of(new)) + 4)
    ops = difflib.SequenceMatcher(None, r, h, autojunk=False)
    mapping = {}
    for _tag, i1, i2, j1, j2 in ops.get_opcodes():
        for k in range(i1, i2 + 1):
            mapping.setdefault(k, j1 + min(k - i1, j2 - j1))
    return float(jiwer.wer(" ".join(r[lo:hi]), " ".join(h[mapping[lo] : mapping[hi]]) or "-"))


def click_ratio(orig: Audio, out: Audio, plan) -> float:
    limit = float(np.percentile(np.abs(np.diff(orig.samples[0])), 99.9))
    near = int(0.01 * out.rate)
    worst = 0.0
    for s in plan.steps:
        for t in (s.out_start, s.out_end):
            i = round(t * out.rate)
            w = out.samples[0, max(0, i - near) : i + near]
            if len(w) > 1:
                worst = max(worst, float(np.abs(np.diff(w)).max()))
    return worst / max(limit, 1e-9)


def pick_edits(src) -> dict:
    """Unique, mid-recording phrases to replace (two words), delete (one) and insert after."""
    keys = [normalize(w.text) for w in src.words]
    n = len(keys)

    def unique_at(frac: float, length: int) -> str | None:
        order = sorted(range(n - length + 1), key=lambda i: abs(i - frac * n))
        for i in order:
            gram = keys[i : i + length]
            if any(len(g) < 3 for g in gram) or not all(gram):
                continue
            if sum(keys[j : j + length] == gram for j in range(n - length + 1)) == 1:
                return " ".join(gram)
        return None

    return {
        "replace": unique_at(0.45, 2),
        "delete": unique_at(0.75, 1),
        "insert": unique_at(0.2, 1),
    }


def _new_old(kwargs: dict) -> tuple[str, str]:
    """(new words, words they replace or follow) of a one-edit request, for local WER."""
    if "replace" in kwargs:
        old, new = kwargs["replace"][0]
        return new, old
    if "delete" in kwargs:
        return "", kwargs["delete"][0]
    phrase, new = kwargs["insert_after"][0]
    return new, phrase


def similarity_of_span(out: Audio, step, reference: np.ndarray) -> float:
    a, b = round(step.out_start * out.rate), round(step.out_end * out.rate)
    return speaker.similarity(speaker.embed(Audio(out.samples[:, a:b], out.rate)), reference)


def run_recording(name: str, audio: Audio, exclude: list[str]) -> dict:
    src = transcribe(audio)
    picks = pick_edits(src)
    reference = speaker.embed(audio)
    default = DEFAULT_VOICE if DEFAULT_VOICE not in exclude else FALLBACK_DEFAULT
    row: dict = {"name": name, "duration": round(audio.duration, 2), "source": src.text}
    jobs = {
        "replace": dict(replace=[(picks["replace"], REPLACEMENT)]),
        "delete": dict(delete=[picks["delete"]]),
        "insert": dict(insert_after=[(picks["insert"], INSERTION)]),
    }
    for kind, kwargs in jobs.items():
        if picks[kind] is None:
            row[kind] = {"skipped": "no unique phrase"}
            continue
        t = time.perf_counter()
        result = edit(audio, source=src, exclude_voices=exclude, **kwargs)
        seconds = time.perf_counter() - t
        heard = asr.transcribe_text(result.audio)
        entry = {
            "edit": {k: v for k, v in kwargs.items()},
            "edited_text": result.plan.edited_text,
            "heard": heard,
            "wer": round(wer(result.plan.edited_text, heard), 3),
            "wer_local": round(local_wer(result.plan.edited_text, heard, *_new_old(kwargs)), 3),
            "click_ratio": round(click_ratio(audio, result.audio, result.plan), 3),
            "seconds": round(seconds, 2),
            "voice": result.plan.voice,
            "speed": round(result.plan.speed or 0, 3),
            "semitones": round(result.plan.semitones or 0, 2),
        }
        if kind == "replace":
            step = result.plan.steps[0]
            entry["similarity_matched"] = round(
                similarity_of_span(result.audio, step, reference), 3
            )
            plain = edit(audio, source=src, voice=default, **kwargs)
            entry["default_voice"] = default
            entry["similarity_default"] = round(
                similarity_of_span(plain.audio, plain.plan.steps[0], reference), 3
            )
            entry["wer_default"] = round(
                wer(plain.plan.edited_text, asr.transcribe_text(plain.audio)), 3
            )
        row[kind] = entry
        brief = {k: v for k, v in entry.items() if k not in ("edit", "edited_text", "heard")}
        print(f"  {name} {kind}: {json.dumps(brief)}", flush=True)
    return row


def real_recordings(limit: int) -> list[tuple[str, Audio]]:
    out = []
    libri = DATA / "librispeech_excerpts"
    if libri.is_dir():
        for path in sorted(libri.glob("*.ogg"))[:limit]:
            out.append((f"librispeech/{path.stem}", load(path)))
    lj = DATA / "ljspeech_sample" / "wavs"
    if lj.is_dir():
        files = sorted(lj.glob("*.wav"))
        # LJ clips are short: join consecutive pairs into ~10 s recordings.
        for i in range(0, min(len(files), 2 * limit), 2):
            parts = [load(p) for p in files[i : i + 2]]
            gap = np.zeros((1, parts[0].rate // 3), np.float32)
            x = np.concatenate([parts[0].samples, gap, *[p.samples for p in parts[1:]]], axis=1)
            out.append((f"ljspeech/{files[i].stem}+1", Audio(x, parts[0].rate)))
    return out


def summary(rows: list[dict]) -> dict:
    def collect(key: str, kind: str | None = None) -> list[float]:
        vals = []
        for r in rows:
            for k in [kind] if kind else ["replace", "delete", "insert"]:
                if isinstance(r.get(k), dict) and key in r[k]:
                    vals.append(r[k][key])
        return vals

    def mean(v: list[float]) -> float | None:
        return round(float(np.mean(v)), 3) if v else None

    return {
        "edits": len(collect("wer")),
        "wer_mean": mean(collect("wer")),
        "wer_replace": mean(collect("wer", "replace")),
        "wer_delete": mean(collect("wer", "delete")),
        "wer_insert": mean(collect("wer", "insert")),
        "wer_local_mean": mean(collect("wer_local")),
        "wer_local_max": max(collect("wer_local"), default=None),
        "similarity_matched_mean": mean(collect("similarity_matched", "replace")),
        "similarity_default_mean": mean(collect("similarity_default", "replace")),
        "matched_wins": sum(
            r["replace"]["similarity_matched"] > r["replace"]["similarity_default"]
            for r in rows
            if "similarity_matched" in r.get("replace", {})
        ),
        "click_ratio_max": max(collect("click_ratio"), default=None),
        "click_ratio_mean": mean(collect("click_ratio")),
        "seconds_per_edit_mean": mean(collect("seconds")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3, help="real recordings per corpus")
    args = parser.parse_args()
    t0 = time.perf_counter()
    synthetic = []
    for voice, text in SYNTHETIC.items():
        print(f"synthetic speaker {voice}", flush=True)
        audio = tts.synthesize(text, voice)
        noise = np.random.default_rng(0).standard_normal(audio.samples.shape) * 0.002
        audio = Audio((audio.samples + noise).astype(np.float32), audio.rate)
        synthetic.append(run_recording(f"synthetic/{voice}", audio, exclude=[voice]))
    real = []
    recordings = real_recordings(args.limit)
    if not recordings:
        print(f"no real speech under {DATA}; skipping real voices", file=sys.stderr)
    for name, audio in recordings:
        print(f"real {name}", flush=True)
        real.append(run_recording(name, audio, exclude=[]))
    result = {
        "command": "bench/edit.py " + " ".join(sys.argv[1:]),
        "threads": os.environ.get("VOICEBOX_THREADS", "1"),
        "seconds_total": round(time.perf_counter() - t0, 1),
        "synthetic": {"summary": summary(synthetic), "recordings": synthetic},
        "real": {"summary": summary(real), "recordings": real},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k]["summary"] for k in ("synthetic", "real")}, indent=2))


if __name__ == "__main__":
    main()
