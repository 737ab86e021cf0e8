"""The Voicebox model against the nearest stock voice: zero-shot reading, infilling, vocoder.

Usage: .venv/bin/python bench/model.py [--quick] [--checkpoint checkpoints/small]
       [--vocoder runs/small-vocoder] [--out bench/results/model.json]

Zero-shot: held-out synthetic speakers (never trained on; prompt and target synthesised with the
`voicebox.model.training.synth` recipe) and real voices from ../shared/data/speech. Each target sentence is read
by (a) the model, prompted with 3–6 s of the voice, and (b) the baseline: the one bundled voice (no blend)
whose resemblyzer embedding is nearest to the prompt, read by its own engine. Scores: whisper tiny.en WER
(pooled), speaker similarity of the output to ANOTHER clip of the same speaker (not the prompt), DNSMOS
OVRL, and RTF of the whole call (alignment of the prompt + ODE + vocoder) at NFE 8/16/32.
Infilling: a 1–2 s run of words in the middle of a sentence is masked and regenerated (respeak); WER of the masked
words, similarity of the span to its context, seam smoothness (spectral jump across each seam divided by
the original's jump at the same frames: 1.0 = as smooth as the original). Vocoder copy-synthesis runs
bench/vocoder.py. Skips the real voices cleanly when the shared data folder is absent.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from voicebox.audio import Audio, load  # noqa: E402
from voicebox.model.features import MEL, audio_to_mel  # noqa: E402

SPEECH = ROOT.parent / "shared" / "data" / "speech"
PARTS = ("audio", "duration", "vocoder")


# ---------------------------------------------------------------- helpers


def norm_words(text: str) -> str:
    """Text as compared for WER: whisper's English normaliser (the usual one for TTS WER: case,
    punctuation, numbers, British and American spellings alike, so "neighbour" read right is not
    an error), after our own normaliser has spelled out what the reader was asked to say."""
    from voicebox.text import normalize

    spoken = normalize(text).replace("-", " ")
    return " ".join(_whisper_normalizer()(spoken).split())


@functools.cache
def _whisper_normalizer():  # noqa: ANN202 - whisper_normalizer's EnglishTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def mono16k(audio: Audio) -> Audio:
    """The clip as 16 kHz mono."""
    x = audio.to_rate(MEL.rate) if audio.rate != MEL.rate else audio
    return Audio(x.mono()[None], MEL.rate)


def snapshot(
    audio_dir: Path, vocoder_dir: Path | None, duration_dir: Path | None = None
) -> tuple[Path, dict[str, int]]:
    """Copy the parts (the training run keeps rewriting them) into one folder the model can load."""
    folder = Path(tempfile.mkdtemp(prefix="vb-bench-ckpt-"))
    steps: dict[str, int] = {}
    for part in PARTS:
        src_dir = {"vocoder": vocoder_dir, "duration": duration_dir}.get(part) or audio_dir
        src = src_dir / f"{part}.pt"
        if src.is_file():
            shutil.copy2(src, folder / src.name)
            data = torch.load(folder / src.name, map_location="cpu", weights_only=True)
            steps[part] = int(data.get("step", -1))
    return folder, steps


def rtf_call(fn, *args, **kwargs) -> tuple[Audio, float]:  # noqa: ANN001
    """Run fn and return (audio, wall seconds)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- voices


def held_out_voices(n: int, seed: int) -> list[dict]:
    """Held-out synthetic speakers: a 3–6 s prompt, another clip, and a new target sentence each."""
    from voicebox.model.training.synth import Speaker, _synthesize, generated_sentence, pad_silence

    recipe = json.loads((ROOT / "data" / "synth-v1" / "corpus.json").read_text())
    speakers = [Speaker(**s) for s in recipe["speakers"] if s.get("held_out")][:n]
    rng = np.random.default_rng(seed)
    out = []
    for spk in speakers:
        prompt = None
        for _ in range(8):  # a prompt of 3–6 s
            text = generated_sentence(rng)
            x = pad_silence(_synthesize(spk, text), rng)
            if 3.0 <= x.size / MEL.rate <= 6.0:
                prompt = (x, text)
                break
        if prompt is None:
            prompt = (x, text)
        other_text = generated_sentence(rng)
        other = pad_silence(_synthesize(spk, other_text), rng)
        target = generated_sentence(rng)
        out.append(
            {
                "name": spk.name,
                "kind": "synthetic held-out",
                "prompt": Audio(prompt[0][None], MEL.rate),
                "prompt_text": prompt[1],
                "other": Audio(other[None], MEL.rate),
                "target": target,
                "speaker": spk,
            }
        )
    return out


def real_voices(limit: int) -> list[dict]:
    """Real voices: LJ Speech (prompt from the prompt set, another LJ clip as reference) and the
    LibriSpeech excerpts (first ~5 s as prompt, the last ~5 s as the other clip)."""
    if not SPEECH.is_dir():
        return []
    targets = [
        "The children counted twelve small stones near the river before dinner.",
        "A quiet student repaired the broken clock while everyone was asleep.",
        "Our neighbour described the yellow kite to the captain.",
        "The teacher found a map of the valley behind the school.",
    ]
    out = []
    lj_prompt = (
        SPEECH / "prompts_libritts_lj_aishell" / "ljspeech" / "prompts" / "LJ049-0124_24K.wav"
    )
    lj_other = SPEECH / "ljspeech_sample"
    if lj_prompt.is_file() and (lj_other / "transcripts.tsv").is_file():
        row = (lj_other / "transcripts.tsv").read_text().splitlines()[1]
        out.append(
            {
                "name": "ljspeech",
                "kind": "real",
                "prompt": mono16k(load(lj_prompt)),
                "prompt_text": "In addition, the proposed legislation will insure.",
                "other": mono16k(load(lj_other / row.split("\t")[0])),
                "target": targets[0],
            }
        )
    for k, path in enumerate(sorted((SPEECH / "librispeech_excerpts").glob("*.ogg"))):
        audio = mono16k(load(path))
        x = audio.samples[0]
        cut = 5 * MEL.rate
        if x.size < 2 * cut:
            continue
        out.append(
            {
                "name": f"librispeech-{path.stem.split('-')[0]}",
                "kind": "real",
                "prompt": Audio(x[:cut][None], MEL.rate),
                "prompt_text": None,  # whisper transcribes it, as a user without a transcript would
                "other": Audio(x[-cut:][None], MEL.rate),
                "target": targets[(k + 1) % len(targets)],
            }
        )
    return out[:limit]


# ---------------------------------------------------------------- baseline


def stock_embeddings() -> dict[str, np.ndarray]:
    """Resemblyzer embedding of every bundled single voice reading one probe sentence."""
    from voicebox.engines import speaker, tts

    probe = "The old farmer carried a wooden box to the station in the morning."
    names = list(tts.KOKORO_VOICES) + [tts.PIPER_VOICE]
    return {n: speaker.embed(tts.synthesize(probe, n, lang="en")) for n in names}


def nearest_stock(prompt: Audio, stock: dict[str, np.ndarray]) -> str:
    """The bundled voice whose embedding is nearest (cosine) to the prompt's."""
    from voicebox.engines import speaker

    e = speaker.embed(prompt)
    return max(stock, key=lambda n: float(np.dot(stock[n], e)))


# ---------------------------------------------------------------- scoring


def score(audio: Audio, ref_text: str, other: Audio) -> dict:
    """Whisper transcript, similarity to the other clip, DNSMOS OVRL."""
    from voicebox.engines import asr, speaker
    from voicebox.engines.quality import dnsmos

    a16 = mono16k(audio)
    hyp = asr.transcribe_text(a16)
    return {
        "ref": norm_words(ref_text),
        "hyp": norm_words(hyp),
        "similarity": round(float(speaker.similarity(a16, other)), 3),
        "dnsmos_ovrl": round(float(dnsmos(a16)["ovrl"]), 3),
        "seconds": round(a16.duration, 2),
    }


def pooled_wer(rows: list[dict]) -> float | None:
    """Word error rate pooled over every row's words."""
    import jiwer

    refs = [r["ref"] for r in rows if r.get("ref")]
    hyps = [r["hyp"] for r in rows if r.get("ref")]
    if not refs:
        return None
    return round(float(jiwer.wer(refs, hyps)), 3)


def summary(rows: list[dict]) -> dict:
    """Pooled WER and mean similarity / DNSMOS / RTF of some rows."""
    out: dict = {"n": len(rows), "wer": pooled_wer(rows)}
    for key in ("similarity", "dnsmos_ovrl", "rtf"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = round(float(np.mean(vals)), 3) if vals else None
    return out


# ---------------------------------------------------------------- zero-shot


def zero_shot_bench(voices: list[dict], nfes: list[int], seed: int, log) -> dict:  # noqa: ANN001
    from voicebox.engines import speaker, tts
    from voicebox.model import sample

    stock = stock_embeddings()
    if voices:  # warm-up: one-off loading (g2p, aligner, networks) is not part of the RTF
        sample.zero_shot(voices[0]["target"], voices[0]["prompt"], voices[0]["prompt_text"], nfe=2)
    model_rows, stock_rows, rtf_rows = [], [], []
    for i, v in enumerate(voices):
        sample._align(v["prompt"], v["prompt_text"])  # warm: loading is not part of the RTF
        t_align = time.perf_counter()
        sample._align(v["prompt"], v["prompt_text"])
        t_align = time.perf_counter() - t_align
        for nfe in nfes:
            if nfe != 16 and i > 0:
                continue  # RTF at other NFEs on the first voice only (shared CPU)
            out, secs = rtf_call(
                sample.zero_shot, v["target"], v["prompt"], v["prompt_text"], nfe=nfe, seed=seed
            )
            row = {"voice": v["name"], "kind": v["kind"], "nfe": nfe}
            row["rtf"] = round(secs / max(out.duration, 1e-6), 3)
            row["rtf_without_prompt_alignment"] = round(
                max(secs - t_align, 0.0) / max(out.duration, 1e-6), 3
            )
            if nfe == 16 or len(nfes) == 1:
                row.update(score(out, v["target"], v["other"]))
                model_rows.append(row)
            rtf_rows.append(row)
            log(f"zero-shot {v['name']} nfe {nfe}: {row}")
        name = nearest_stock(v["prompt"], stock)
        base, secs = rtf_call(tts.synthesize, v["target"], name, lang="en")
        row = {"voice": v["name"], "kind": v["kind"], "stock_voice": name}
        row["rtf"] = round(secs / max(base.duration, 1e-6), 3)
        row.update(score(base, v["target"], v["other"]))
        row["prompt_vs_other_similarity"] = round(
            float(speaker.similarity(v["prompt"], v["other"])), 3
        )
        stock_rows.append(row)
        log(f"stock {v['name']}: {row}")
    kinds = sorted({r["kind"] for r in model_rows})
    by_kind = {
        k: {
            "voicebox": summary([r for r in model_rows if r["kind"] == k]),
            "nearest_stock_voice": summary([r for r in stock_rows if r["kind"] == k]),
        }
        for k in kinds
    }
    rtf = {}
    for nfe in nfes:
        vals = [r for r in rtf_rows if r["nfe"] == nfe]
        if vals:
            rtf[f"nfe{nfe}"] = {
                "rtf": round(float(np.mean([r["rtf"] for r in vals])), 3),
                "rtf_without_prompt_alignment": round(
                    float(np.mean([r["rtf_without_prompt_alignment"] for r in vals])), 3
                ),
                "n": len(vals),
            }
    return {
        "by_kind": by_kind,
        "rtf_with_vocoder": rtf,
        "voicebox_rows": model_rows,
        "stock_rows": stock_rows,
        "rtf_rows": rtf_rows,
    }


# ---------------------------------------------------------------- infilling


def seam_jump(out: Audio, orig: Audio, seams: list[float]) -> float | None:
    """Mean log-mel jump across each seam in `out` divided by the original's at the same frames."""
    mo, mi = audio_to_mel(out), audio_to_mel(orig)
    n = min(mo.shape[0], mi.shape[0])
    ratios = []
    for s in seams:
        f = int(round(s * MEL.fps))
        if 1 <= f < n - 1:
            jo = float((mo[f + 1] - mo[f - 1]).abs().mean())
            ji = float((mi[f + 1] - mi[f - 1]).abs().mean())
            # typical jump in the original near there, so a near-silent seam does not blow up
            base = float((mi[max(1, f - 10) : f + 10] - mi[max(0, f - 11) : f + 9]).abs().mean())
            ratios.append(jo / max(ji, base, 1e-3))
    return round(float(np.mean(ratios)), 3) if ratios else None


def span_wer(ref: str, hyp: str, first: int, last: int) -> tuple[int, int]:
    """(errors, words) counted on reference words first..last (inclusive) of a jiwer alignment."""
    import jiwer

    ref_words = ref.split()
    result = jiwer.process_words(ref, hyp)
    errors = 0
    for chunk in result.alignments[0]:
        if chunk.type == "equal":
            continue
        if chunk.type == "insert":
            if first <= chunk.ref_start_idx <= last + 1:
                errors += chunk.hyp_end_idx - chunk.hyp_start_idx
            continue
        lo, hi = max(chunk.ref_start_idx, first), min(chunk.ref_end_idx, last + 1)
        errors += max(0, hi - lo)
    return errors, min(last, len(ref_words) - 1) - first + 1


def choose_span(timings: list, lo: float = 1.0, hi: float = 2.0) -> tuple[int, int] | None:
    """Word indices (first, last) of a 1–2 s run of words nearest the middle of the sentence."""
    best = None
    mid = (timings[0].start + timings[-1].end) / 2
    for a in range(1, len(timings) - 1):
        for b in range(a, len(timings) - 1):
            length = timings[b].end - timings[a].start
            if lo <= length <= hi:
                centre = (timings[a].start + timings[b].end) / 2
                cost = abs(centre - mid)
                if best is None or cost < best[0]:
                    best = (cost, a, b)
    return (best[1], best[2]) if best else None


def infill_bench(items: list[tuple[str, Audio, str]], seed: int, log) -> dict:  # noqa: ANN001
    from voicebox.engines import asr, speaker
    from voicebox.model import sample
    from voicebox.model.align import align_words

    rows = []
    errs = words = 0
    for name, audio, text in items:
        _, _, timings = align_words(audio, text)
        span = choose_span(timings)
        if span is None:
            log(f"infill {name}: no 1-2 s run of words, skipped")
            continue
        a, b = span
        start, end = timings[a].start, timings[b].end
        out, secs = rtf_call(  # the path `clean --infill` and `edit --engine voicebox` take
            sample.respeak, audio, start, end, None, context_text=text, seed=seed
        )
        ref = norm_words(text)
        hyp = norm_words(asr.transcribe_text(out))
        # span word indices in the normalised reference (aligner words are the transcript's words)
        span_ref = norm_words(" ".join(w.text for w in timings[a : b + 1])).split()
        before = len(norm_words(" ".join(w.text for w in timings[:a])).split())
        e, n = span_wer(ref, hyp, before, before + len(span_ref) - 1)
        errs, words = errs + e, words + n
        x = out.samples[0]
        i0, i1 = int(start * MEL.rate), int(end * MEL.rate)
        span_audio = Audio(x[i0:i1][None], MEL.rate)
        ctx = Audio(np.concatenate([x[:i0], x[i1:]])[None], MEL.rate)
        orig = audio.samples[0]
        orig_span = Audio(orig[i0:i1][None], MEL.rate)
        orig_ctx = Audio(np.concatenate([orig[:i0], orig[i1:]])[None], MEL.rate)
        row = {
            "item": name,
            "masked_words": " ".join(span_ref),
            "masked_seconds": round(end - start, 2),
            "span_word_errors": e,
            "span_words": n,
            "sentence_ref": ref,
            "sentence_hyp": hyp,
            "span_context_similarity": round(float(speaker.similarity(span_audio, ctx)), 3),
            "original_span_context_similarity": round(
                float(speaker.similarity(orig_span, orig_ctx)), 3
            ),
            "seam_jump_ratio": seam_jump(out, audio, [start, end]),
            "length_change_s": round(out.duration - audio.duration, 3),
            "rtf": round(secs / max(out.duration, 1e-6), 3),
        }
        rows.append(row)
        log(f"infill {name}: {row}")
    jumps = [r["seam_jump_ratio"] for r in rows if r["seam_jump_ratio"] is not None]
    return {
        "span_wer": round(errs / words, 3) if words else None,
        "span_context_similarity": round(
            float(np.mean([r["span_context_similarity"] for r in rows])), 3
        )
        if rows
        else None,
        "original_span_context_similarity": round(
            float(np.mean([r["original_span_context_similarity"] for r in rows])), 3
        )
        if rows
        else None,
        "seam_jump_ratio": round(float(np.mean(jumps)), 3) if jumps else None,
        "rows": rows,
    }


def infill_items(voices: list[dict], limit: int, seed: int) -> list[tuple[str, Audio, str]]:
    """Sentences with known text: held-out synthetic speakers' other clips and LJ Speech files."""
    from voicebox.model.training.synth import _synthesize, pad_silence

    rng = np.random.default_rng(seed + 1)
    out = []
    texts = [
        "The young pilot painted the heavy door under the bridge, because it was raining.",
        "His uncle borrowed an empty bottle at the station, and said nothing at all.",
    ]
    synthetic = [v for v in voices if "speaker" in v]
    for k, v in enumerate(synthetic[: max(1, limit // 2)]):
        text = texts[k % len(texts)]
        x = pad_silence(_synthesize(v["speaker"], text), rng)
        out.append((v["name"], Audio(x[None], MEL.rate), text))
    lj = SPEECH / "ljspeech_sample" / "transcripts.tsv"
    if lj.is_file():
        want = max(1, limit - len(out))
        for row in lj.read_text().splitlines()[2:]:
            file, _, text = row.split("\t")
            audio = mono16k(load(lj.parent / file))
            if 3.5 <= audio.duration <= 10:  # room for a 1-2 s span with context on both sides
                out.append((Path(file).stem, audio, text))
                want -= 1
            if want == 0:
                break
    return out[:limit]


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few sentences (shared CPU)")
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "small"))
    parser.add_argument(
        "--vocoder", default="", help="folder with vocoder.pt (default: the checkpoint's, if any)"
    )
    parser.add_argument(
        "--duration", default="", help="folder with duration.pt (default: --checkpoint)"
    )
    parser.add_argument(
        "--targets", type=int, default=0, help="sentences per voice (0: 1 quick, 3 full)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "model.json"))
    parser.add_argument("--skip-vocoder-bench", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["VOICEBOX_THREADS"]))
    started = time.time()
    folder, steps = snapshot(
        Path(args.checkpoint),
        Path(args.vocoder) if args.vocoder else None,
        Path(args.duration) if args.duration else None,
    )
    os.environ["VOICEBOX_CHECKPOINT"] = str(folder)

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.0f}s] {msg}", flush=True)

    log(f"checkpoint snapshot {folder}: steps {steps}")
    n_held, n_real, n_infill = (2, 2, 2) if args.quick else (4, 4, 4)
    nfes = [8, 16, 32]
    speakers = held_out_voices(n_held, args.seed) + real_voices(n_real)
    targets = args.targets or (1 if args.quick else 3)
    from voicebox.model import sample
    from voicebox.model.training.synth import generated_sentence

    rng = np.random.default_rng(args.seed + 2)  # more sentences per voice: a steadier WER
    voices = [
        v if k == 0 else {**v, "target": generated_sentence(rng)}
        for v in speakers
        for k in range(targets)
    ]
    defaults = inspect.signature(sample.zero_shot).parameters

    vocoder_name = sample.load_models(None).vocoder_name
    result: dict = {
        "command": "python bench/model.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "checkpoint": {"audio": args.checkpoint, "vocoder": args.vocoder, "steps": steps},
        "vocoder_used": vocoder_name,
        "threads": int(os.environ["VOICEBOX_THREADS"]),
        "load_average_at_start": round(os.getloadavg()[0], 2),  # RTFs are only fair near 0
        "settings": {
            "nfe": defaults["nfe"].default,
            "guidance": defaults["guidance"].default,
            "solver": defaults["solver"].default,
            "duration_scale": defaults["duration_scale"].default,
            "seed": args.seed,
            "sentences_per_voice": targets,
        },
    }
    result["zero_shot"] = zero_shot_bench(voices, nfes, args.seed, log)
    if vocoder_name == "vocoder":  # is the vocoder or the mel model the weak link?
        gl = Path(tempfile.mkdtemp(prefix="vb-bench-gl-"))
        for part in ("audio", "duration"):
            if (folder / f"{part}.pt").is_file():
                shutil.copy2(folder / f"{part}.pt", gl / f"{part}.pt")
        os.environ["VOICEBOX_CHECKPOINT"] = str(gl)
        sample.load_models.cache_clear()
        rows = []
        for v in voices:
            out = sample.zero_shot(v["target"], v["prompt"], v["prompt_text"], seed=args.seed)
            row = {"voice": v["name"], "kind": v["kind"], **score(out, v["target"], v["other"])}
            rows.append(row)
            log(f"zero-shot griffin-lim {v['name']}: {row}")
        kinds = sorted({r["kind"] for r in rows})
        result["zero_shot_griffin_lim"] = {
            "note": "same model and seeds at NFE 16, mels through Griffin-Lim (32 it.) instead",
            "by_kind": {k: summary([r for r in rows if r["kind"] == k]) for k in kinds},
            "rows": rows,
        }
        os.environ["VOICEBOX_CHECKPOINT"] = str(folder)
        sample.load_models.cache_clear()
        shutil.rmtree(gl, ignore_errors=True)
    result["infill"] = infill_bench(infill_items(speakers, n_infill, args.seed), args.seed, log)
    if not args.skip_vocoder_bench:
        voc_out = Path(tempfile.mkdtemp(prefix="vb-bench-voc-")) / "vocoder.json"
        cmd = [
            sys.executable,
            str(ROOT / "bench" / "vocoder.py"),
            "--vocoder",
            str(folder),
            "--limit",
            "2" if args.quick else "8",
            "--out",
            str(voc_out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if voc_out.is_file():
            result["vocoder_copy_synthesis"] = json.loads(voc_out.read_text())
        else:
            result["vocoder_copy_synthesis"] = {"error": proc.stderr[-500:]}
        log("vocoder copy-synthesis done")
    result["seconds"] = round(time.time() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    tmp.replace(args.out)
    shutil.rmtree(folder, ignore_errors=True)
    log(f"wrote {args.out}")
    print(
        json.dumps({k: result["zero_shot"][k] for k in ("by_kind", "rtf_with_vocoder")}, indent=1)
    )
    print(json.dumps({k: v for k, v in result["infill"].items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
