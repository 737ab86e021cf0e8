"""Cross-lingual voice transfer: real unseen speakers' voices reading languages our model cannot.

Usage: .venv/bin/python bench/crosslingual.py [--speakers 12] [--langs ja] [--espeak de]
       [--out bench/results/crosslingual.json]

Prompts: 3-6 s of real speakers from the eval_* sets in ../shared/data/speech (English: LibriSpeech
test-other, LibriTTS test-clean, VCTK; never trained on), as many men as women by median f0, plus
the Mandarin AISHELL prompt (similarity to the prompt only: it has no second utterance). Target
languages: every language a bundled natural voice reads besides English (tasks/crosslingual.py
`languages()`); `--espeak` languages, which only espeak-ng speaks, are measured the same way but
reported apart (read_like refuses them). Per speaker and language two sentences are read, side by
side, by
  (a) plain: the language's default voice (tasks/read.py default_voice),
  (b) nearest: the native voice or Kokoro blend nearest the prompt (register, then embedding),
  (p) pitch only: (b) moved by PSOLA to the prompt's median f0 (no warp, no vocoder): an ablation,
  (w) warped: (b) through the HiFi-GAN warp the grid likes best, then PSOLA: an ablation (the
      route without its "no warp" option),
  (c) re-voiced: the library route itself (crosslingual.speak: the best of no warp and the
      grid's warps, chosen on the first 3 s by similarity to the prompt, then PSOLA).
Scores: resemblyzer similarity to the prompt (what the warp is chosen by, so (c) is flattered) and
to ANOTHER utterance of the same speaker (held out: the honest figure), whisper base round-trip
WER/CER with the language forced (CER for ja/zh), DNSMOS OVRL, and (c)'s RTF on the threads of
VOICEBOX_THREADS (default 1). Skips cleanly without the shared data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from languages import CER_LANGS, SENTENCES, error_rates, transcribe  # noqa: E402
from model import SPEECH, mono16k  # noqa: E402
from voicebox import dsp  # noqa: E402
from voicebox.audio import Audio, load  # noqa: E402
from voicebox.engines import speaker, tts  # noqa: E402
from voicebox.engines.quality import dnsmos  # noqa: E402
from voicebox.tasks import crosslingual, match  # noqa: E402
from voicebox.tasks import read as reading  # noqa: E402
from voicebox.text import sentences  # noqa: E402

OUT = ROOT / "bench" / "results" / "crosslingual.json"
MALE_BELOW_HZ = 165.0
"""Median f0 under this: counted a man's voice (adult male speech centres near 85-155 Hz)."""
CONDITIONS = ("plain", "nearest", "pitch_only", "warped", "revoiced")
AISHELL = SPEECH / "prompts_libritts_lj_aishell" / "aishell1" / "prompts" / "ch_24k.wav"


def pick_speakers(n: int) -> list[dict]:
    """n eval speakers, half men and half women by the prompt's median f0 (round-robin over the
    sets), each with a Speaker measurement of the prompt."""
    from zero_shot import eval_speakers

    pool = eval_speakers(3 * n)  # round-robin over the three sets
    men, women = [], []
    for v in pool:
        v["target"] = match.measure(v["prompt"], 0)
        v["gender"] = "male" if 0 < v["target"].f0 < MALE_BELOW_HZ else "female"
        (men if v["gender"] == "male" else women).append(v)
        if len(men) >= (n + 1) // 2 and len(women) >= n // 2:
            break
    return men[: (n + 1) // 2] + women[: n // 2]


def aishell_speaker() -> dict | None:
    """The Mandarin AISHELL prompt (no second utterance of that speaker: other is None)."""
    if not AISHELL.is_file():
        return None
    prompt = mono16k(load(AISHELL))
    target = match.measure(prompt, 0)
    gender = "male" if 0 < target.f0 < MALE_BELOW_HZ else "female"
    return {"name": "aishell1", "set": "aishell (zh prompt)", "prompt": prompt, "other": None,
            "target": target, "gender": gender}  # fmt: skip


def read_plain(text: str, voice: match.VoiceSpec, lang: str) -> Audio:
    """`text` read by one voice, sentence by sentence as `read` does (the voice's own rate)."""
    items = sentences(text, lang)
    chunks = list(reading._speak(reading._paced(items), voice, 1.0, 0.0, lang, None, len(items)))
    return Audio(np.concatenate([c.mono() for c, _ in chunks]), chunks[0][0].rate)


def score(audio: Audio, v: dict, text: str, lang: str) -> dict:
    """Similarities (prompt, held-out utterance), the recogniser's words and DNSMOS of one reading."""
    emb = speaker.embed(audio)
    row = {
        "sim_prompt": round(speaker.similarity(emb, v["target"].embedding), 4),
        "sim_other": None if v["other"] is None else round(speaker.similarity(emb, v["other"]), 4),
        "f0": round(dsp.median_f0(audio.samples[0], audio.rate), 1),
        "ref": text,
        "hyp": transcribe(audio, lang),
        "dnsmos_ovrl": round(float(dnsmos(audio)["ovrl"]), 3),
        "seconds": round(audio.duration, 2),
    }
    row.update(error_rates([text], [row["hyp"]], lang))
    return row


def run_language(lang: str, v: dict, index: int, voices: list[str] | None) -> dict:
    """The five conditions for one speaker and language. `voices` (espeak-only languages): the
    only voice there is, used as both plain and nearest."""
    pool = SENTENCES[lang]
    text = " ".join(pool[(index + k) % len(pool)] for k in range(2))
    target = v["target"]
    plain = reading.default_voice(lang) if voices is None else voices[0]
    nearest = crosslingual.nearest_native(target, lang) if voices is None else voices[0]
    out: dict = {"speaker": v["name"], "set": v["set"], "gender": v["gender"], "lang": lang}
    out["prompt_f0"] = round(target.f0, 1)
    out["voices"] = {"plain": plain, "nearest": match.voice_key(nearest)}
    plain_audio = read_plain(text, plain, lang)
    near_audio = (
        plain_audio if match.voice_key(nearest) == plain else read_plain(text, nearest, lang)
    )
    x, rate = near_audio.samples[0], near_audio.rate
    shift = crosslingual._semitones(x, rate, target.f0)
    pitched = Audio(dsp.pitch_shift(x, rate, shift), rate)
    started = time.process_time()
    if voices is None:
        items = sentences(text, lang)
        reader = reading.native_reader(items, lang)
        revoiced, _, route = crosslingual.speak(items, v["prompt"], lang, reader)
    else:  # the same route with the one voice there is (read_like refuses these languages)
        probe = x[: int(crosslingual.PROBE_SECONDS * rate)]
        route = crosslingual.plan(probe, rate, target, plain)
        revoiced = Audio(*crosslingual.revoice(x, rate, route))
    cpu = time.process_time() - started
    tried = route.tried
    best_warp = max((k for k in tried if k != "none"), key=lambda k: tried[k])
    warped_route = crosslingual.Route(route.voice, float(best_warp), 0.0, 0.0, {}, True)
    y = crosslingual.warp(x, rate, warped_route.warp)
    warped_route.semitones = crosslingual._semitones(y, crosslingual.RATE, target.f0)
    warped = Audio(dsp.pitch_shift(y, crosslingual.RATE, warped_route.semitones), crosslingual.RATE)
    out["route"] = route.describe()
    out["warp"], out["vocoded"], out["semitones"] = route.warp, route.vocoded, route.semitones
    out["probe_similarity_by_warp"] = tried
    out["pitch_only_semitones"] = round(shift, 2)
    out["warped_route"] = warped_route.describe()
    out["revoiced_cpu_rtf"] = round(cpu / max(revoiced.duration, 1e-6), 3)
    audios = (plain_audio, near_audio, pitched, warped, revoiced)
    for name, audio in zip(CONDITIONS, audios, strict=True):
        out[name] = score(audio, v, text, lang)
    return out


def summarise(rows: list[dict], lang: str) -> dict:
    """Per condition: mean similarities, pooled WER/CER, mean DNSMOS; by gender; how often the
    re-voiced reading beat the nearest voice on the held-out similarity."""
    metric = "cer" if lang in CER_LANGS else "wer"
    out: dict = {"metric": metric, "n": len(rows)}
    held = [r for r in rows if r["revoiced"]["sim_other"] is not None]
    for cond in CONDITIONS:
        refs = [r[cond]["ref"] for r in rows]
        hyps = [r[cond]["hyp"] for r in rows]
        rates = error_rates(refs, hyps, lang)
        out[cond] = {
            "sim_prompt": _mean(r[cond]["sim_prompt"] for r in rows),
            "sim_other": _mean(r[cond]["sim_other"] for r in held),
            "wer": rates["wer"],
            "cer": rates["cer"],
            "dnsmos_ovrl": _mean(r[cond]["dnsmos_ovrl"] for r in rows),
        }
        for gender in ("male", "female"):
            some = [r for r in held if r["gender"] == gender]
            out[cond][f"sim_other_{gender}"] = _mean(r[cond]["sim_other"] for r in some)
    out["revoiced_beats_nearest_held_out"] = (
        f"{sum(r['revoiced']['sim_other'] > r['nearest']['sim_other'] for r in held)}/{len(held)}"
    )
    out["revoiced_beats_plain_held_out"] = (
        f"{sum(r['revoiced']['sim_other'] > r['plain']['sim_other'] for r in held)}/{len(held)}"
    )
    out["warps"] = sorted(f"{r['warp']:.2f}" if r["vocoded"] else "none" for r in rows)
    out["revoiced_cpu_rtf"] = _mean(r["revoiced_cpu_rtf"] for r in rows)
    best = out["revoiced"]
    out["works"] = bool(
        best[metric] <= 0.25 and (best["sim_other"] or 0) > (out["plain"]["sim_other"] or 0)
    )
    out["works_rule"] = f"re-voiced {metric.upper()} <= 0.25 and held-out similarity above plain"
    return out


def _mean(values) -> float | None:  # noqa: ANN001
    vals = [float(x) for x in values if x is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=12, help="eval speakers (half men)")
    parser.add_argument("--langs", default=",".join(crosslingual.languages()))
    parser.add_argument("--espeak", default="de", help="espeak-only languages, reported apart")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if not SPEECH.is_dir():
        print(f"skipped: {SPEECH} not found")
        return
    started = time.perf_counter()
    speakers = pick_speakers(args.speakers)
    extra = aishell_speaker()
    print(
        f"{len(speakers)} speakers: " + ", ".join(f"{v['name']} ({v['gender']})" for v in speakers)
    )
    doc: dict = {"languages": {}, "espeak_only": {}}
    langs = [x for x in args.langs.split(",") if x]
    espeak = [x for x in args.espeak.split(",") if x]
    for lang, section in [(x, "languages") for x in langs] + [(x, "espeak_only") for x in espeak]:
        voices = None if section == "languages" else [tts.ESPEAK_PREFIX + lang]
        rows = []
        who = speakers + ([extra] if extra is not None and section == "languages" else [])
        for i, v in enumerate(who):
            row = run_language(lang, v, i, voices)
            rows.append(row)
            r = {c: row[c] for c in CONDITIONS}
            print(
                f"  {lang} {v['name']:14s} {v['gender']:6s} {row['route']:58s} "
                + " ".join(
                    f"{c[:5]} {r[c]['sim_other'] if r[c]['sim_other'] is not None else '-'}"
                    f"/{r[c]['cer' if lang in CER_LANGS else 'wer']:.2f}"
                    for c in CONDITIONS
                ),
                flush=True,
            )
        doc[section][lang] = {"summary": summarise(rows, lang), "rows": rows}
    doc = {
        "what": "cross-lingual voice transfer: prompt speakers' similarity (to the prompt, and to "
        "a held-out utterance) and whisper base round trip for (a) the language's default voice, "
        "(b) the nearest native voice, pitch-only (b), warped (b), (c) the re-voiced route of "
        "read_like",
        "threads": os.environ.get("VOICEBOX_THREADS"),
        "speakers": [
            {
                "name": v["name"],
                "set": v["set"],
                "gender": v["gender"],
                "f0": round(v["target"].f0, 1),
            }
            for v in speakers
        ],  # fmt: skip
        "warp_grid": list(crosslingual.WARP_GRID),
        "wall_s": round(time.perf_counter() - started, 1),
        **doc,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    for section in ("languages", "espeak_only"):
        for lang, got in doc[section].items():
            s = got["summary"]
            print(f"{section} {lang}: works={s['works']} ({s['works_rule']})")
            for c in CONDITIONS:
                print(f"  {c:10s} " + " ".join(f"{k} {s[c][k]}" for k in s[c]))
    print(f"wrote {args.out} in {doc['wall_s']} s")


if __name__ == "__main__":
    main()
