"""Benchmark word-level editing: the speaker's own voice, intelligibility, seams and speed.

Default run: real voices from ../shared/data/speech (the eval_* sets and the older prompt folders,
chosen by pitch so a man, a woman, a high voice and a noisy recording are all there; skipped when
absent). Each recording gets one word replaced, by the OLD matcher (tasks/edit.py and match.py as of
commit OLD_REV, loaded from git), the NEW matcher, and the Voicebox model (`--engine voicebox`) where
it runs. Per edit and column: the inserted span's median f0 against the speaker's (semitones; the
target is within 2), whisper WER of the edited recording and of 4 words either side of the edit, the
span's speaker similarity to the recording, seconds; and the WER of the untouched recording measured
the same way (whisper's re-reading of it against its own transcript). Where a true transcript exists, the
recording's correct transcript is also submitted (`--transcript`) to both versions: every edit that
yields is a false edit (the recogniser's own mistakes). `--synthetic` adds the older synthetic-speaker
rounds (replace two words, delete one, insert one). `--edits N` replaces N words per recording
(each in its own edit); `--respoken` also replaces one word per recording by itself, so what is
heard should be the untouched sentence: its WER has no odd sentence for whisper's language model
to fight, which a random replacement often makes. Writes bench/results/edit.json.

    flock /tmp/vb/cpu.lock env VOICEBOX_THREADS=1 .venv/bin/python bench/edit.py [--limit N]
        [--edits N] [--respoken] [--no-old] [--checkpoint NAME=FOLDER ...] [--any-word]

Seams: click_ratio is the largest sample step within 10 ms of a seam against the recording's
99.9th-percentile step. It also finds the new word's own fricatives: above 1 can be an /s/ beside
the seam, louder than the recording's (look at the samples before calling it a click).

Edits change a word for one that fits where it stands (SWAPS: noun for noun, adjective for
adjective), the edits a person makes; `--any-word` gives the older nonsense-prone ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from voicebox import provenance  # noqa: E402
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
    """Words as compared for WER: whisper's English normaliser, as in bench/model.py."""
    from model import norm_words

    return norm_words(text).split()


def compared(ref: str, hyp: str) -> tuple[list[str], list[str]]:
    """Both texts' words, with a compound one side writes as one word and the other as two joined
    ("box car" and "boxcar", "out-gaze" and "outgaze"): whisper spells the same sound either way
    from one decode to the next, which is no word misheard."""

    def join(words: list[str], other: set[str]) -> list[str]:
        out: list[str] = []
        for w in words:
            if out and out[-1] not in other and w not in other and out[-1] + w in other:
                out[-1] += w
            else:
                out.append(w)
        return out

    r, h = words_of(ref), words_of(hyp)
    return join(r, set(h)), join(h, set(r))


def wer(ref: str, hyp: str) -> float:
    import jiwer

    r, h = compared(ref, hyp)
    return float(jiwer.wer(" ".join(r), " ".join(h)))


def local_wer(ref: str, hyp: str, new: str, before: str) -> float:
    """WER over the edited sentence's neighbourhood: 4 reference words either side of the edit."""
    import difflib

    import jiwer

    r, h = compared(ref, hyp)
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


OLD_REV = "32c27af"  # the last commit with the embedding-only matcher (issue 12 item 2)
REPLACEMENTS = ("garden", "yellow", "window", "morning", "silver", "river", "market", "letter")
# The edits a person makes: a word changed for one that fits where it stands (noun for noun, same
# number, an adjective for an adjective, a past tense for a past tense), so the edited sentence is
# one a speaker could have said and whisper's language model is not fighting it. `--any-word` keeps
# the older edits (any confident word for one of REPLACEMENTS). "little" is left out: "tried a little"
# is an adverb there as often as not.
SWAPS = {
    **dict.fromkeys(("man", "boy"), "woman"),
    "woman": "man",
    "men": "women",
    "women": "men",
    "girl": "boy",
    "father": "mother",
    "mother": "father",
    "brother": "sister",
    "sister": "brother",
    "son": "daughter",
    "daughter": "son",
    "king": "queen",
    "queen": "king",
    "friend": "neighbour",
    "day": "night",
    "night": "day",
    "morning": "night",
    "evening": "afternoon",
    "year": "month",
    "years": "months",
    "months": "years",
    "week": "month",
    "weeks": "days",
    "days": "weeks",
    "hour": "instant",
    "hours": "minutes",
    "minutes": "hours",
    "house": "cottage",
    "room": "hall",
    "door": "gate",
    "window": "door",
    "garden": "field",
    "field": "garden",
    "road": "path",
    "street": "road",
    "city": "town",
    "town": "city",
    "river": "stream",
    "sea": "lake",
    "water": "milk",
    "tree": "bush",
    "trees": "bushes",
    "horse": "mule",
    "dog": "cat",
    "cat": "dog",
    "bird": "duck",
    "book": "letter",
    "letter": "note",
    "table": "desk",
    "chair": "bench",
    "bed": "couch",
    "hand": "foot",
    "hands": "feet",
    "head": "face",
    "face": "head",
    "eyes": "ears",
    "heart": "mind",
    "mind": "heart",
    "voice": "tone",
    "miles": "yards",
    "feet": "yards",
    "money": "gold",
    "gold": "silver",
    "silver": "gold",
    "food": "bread",
    "fire": "lamp",
    "ship": "boat",
    "boat": "ship",
    "land": "ground",
    "world": "country",
    "country": "world",
    "people": "children",
    "children": "people",
    "church": "school",
    "school": "church",
    "good": "fine",
    "great": "large",
    "small": "little",
    "large": "huge",
    "big": "large",
    "old": "aged",
    "young": "youthful",
    "long": "short",
    "short": "long",
    "new": "fresh",
    "black": "white",
    "white": "black",
    "red": "blue",
    "blue": "red",
    "green": "brown",
    "dark": "pale",
    "cold": "warm",
    "warm": "cold",
    "happy": "glad",
    "strange": "curious",
    "poor": "rich",
    "rich": "poor",
    "beautiful": "lovely",
    "quiet": "calm",
    "said": "cried",
    "looked": "glanced",
    "walked": "ran",
    "came": "went",
    "went": "came",
    "took": "grabbed",
    "gave": "sent",
    "told": "warned",
    "two": "three",
    "three": "four",
    "four": "five",
    "five": "six",
    "six": "seven",
    "ten": "twelve",
    "first": "last",
    "last": "first",
    "second": "third",
    "hundred": "thousand",
    "thousand": "hundred",
    "always": "never",
    "never": "always",
    "often": "seldom",
    "slowly": "quickly",
    "quickly": "slowly",
    "very": "quite",
}
CONSENT = "Benchmark only: public corpus recordings, edited in memory to measure the model."


def old_edit(rev: str = OLD_REV):  # noqa: ANN201 - the old tasks.edit.edit function
    """tasks/edit.py and tasks/match.py as of `rev`, loaded from git as private modules, so the old
    matcher runs exactly as it was beside the new one (its voice profiles in their own cache file)."""
    import importlib.util
    import subprocess

    from voicebox.config import cache_dir

    def load_module(name: str, path: str, patch: tuple[str, str] | None = None):  # noqa: ANN202
        code = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if patch:
            code = code.replace(*patch)
        spec = importlib.util.spec_from_loader(f"voicebox.tasks.{name}", loader=None)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = "voicebox.tasks"
        sys.modules[spec.name] = module
        exec(compile(code, f"{rev}:{path}", "exec"), module.__dict__)
        return module

    old_match = load_module("_old_match", "src/voicebox/tasks/match.py")
    old_match._profile_file = lambda: cache_dir() / f"voice_profiles_{rev}.json"
    old = load_module(
        "_old_edit",
        "src/voicebox/tasks/edit.py",
        ("from . import match", "from . import _old_match as match"),
    )
    return old.edit


def _tsv(folder: Path) -> list[dict]:
    import csv

    path = folder / "transcripts.tsv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _f0(audio: Audio) -> float:
    from voicebox.tasks.match import median_f0

    return median_f0(audio.mono(), audio.rate)


def real_voices(limit: int, need: int = 0) -> list[dict]:
    """A spread of real voices: per set, the lowest- and highest-pitched speakers (one recording of
    4-16 s each, with at least `need` words SWAPS has a substitute for), the LJ prompt, the highest
    prompt voice and a noisy VoiceBank+DEMAND recording."""
    picked: list[dict] = []

    def by_speaker(folder: Path, take: tuple[str, ...]) -> None:
        first: dict[str, dict] = {}
        for row in _tsv(folder):
            if row["speaker"] in first or not (folder / row["file"]).is_file():
                continue
            if _swappable(row["text"]) < need:
                continue
            audio = load(folder / row["file"])
            if 4.0 <= audio.duration <= 16.0:
                first[row["speaker"]] = {"audio": audio, "text": row["text"], "name": row["file"]}
        voices = sorted(first.items(), key=lambda kv: _f0(kv[1]["audio"]))
        ends = {"low": voices[: max(1, limit // 2)], "high": voices[-max(1, limit - limit // 2) :]}
        for which in take:
            for speaker_id, v in ends[which]:
                picked.append({"set": folder.name, "speaker": speaker_id, "pitch": which, **v})

    for name, take in (
        ("eval_libritts_test10", ("low", "high")),
        ("eval_librispeech_test_other10", ("low", "high")),
        ("eval_vctk42", ("high",)),
    ):
        if (DATA / name).is_dir():
            by_speaker(DATA / name, take)
    lj = DATA / "prompts_libritts_lj_aishell"
    for row in _tsv(lj):
        if (
            "ljspeech" in row["file"]
            and (lj / row["file"]).is_file()
            and _swappable(row["text"]) >= need
        ):
            audio = load(lj / row["file"])
            picked.append(
                {
                    "set": lj.name,
                    "speaker": "ljspeech",
                    "pitch": "female",
                    "audio": audio,
                    "text": row["text"],
                    "name": row["file"],
                }
            )
            break
    prompts = sorted((DATA / "prompts_vctk_librispeech").glob("*.mp3"))
    if prompts:
        clips = sorted(((load(f), f) for f in prompts), key=lambda c: _f0(c[0]))
        audio, path = clips[-1]
        picked.append(
            {
                "set": "prompts_vctk_librispeech",
                "speaker": path.stem,
                "pitch": "highest",
                "audio": audio,
                "text": None,
                "name": path.name,
            }
        )
    noisy = ROOT.parent / "shared" / "data" / "denoise" / "voicebank_demand_pairs" / "noisy"
    for path in sorted(noisy.glob("*.wav"))[:1]:
        picked.append(
            {
                "set": "voicebank_demand noisy",
                "speaker": "p287",
                "pitch": "noisy",
                "audio": load(path),
                "text": None,
                "name": path.name,
            }
        )
    return picked


def _target_words(src, n: int, any_word: bool = False) -> list[str]:
    """Up to `n` confidently heard, unique words with a natural substitute (SWAPS; with `any_word`,
    any of 4+ letters), the nearest the recording's middle first, none next to another (each edit's
    neighbours are the recording's own words)."""
    keys = [normalize(w.text) for w in src.words]
    order = sorted(range(len(keys)), key=lambda i: abs(i - 0.5 * len(keys)))
    picked: list[int] = []
    for i in order:
        k = keys[i]
        fits = len(k) >= 4 if any_word else k in SWAPS and _article_fits(keys, i, SWAPS[k])
        ok = fits and keys.count(k) == 1 and src.words[i].probability >= 0.8
        if ok and "'" not in k and all(abs(i - j) > 2 for j in picked):
            picked.append(i)
    return [keys[i] for i in picked[:n]]


def _article_fits(keys: list[str], i: int, new: str) -> bool:
    """Whether `new` may stand at keys[i] after its article ("a" before a consonant, "an" a vowel)."""
    if i == 0 or keys[i - 1] not in ("a", "an"):
        return True
    return (keys[i - 1] == "an") == (new[0] in "aeiou")


def _swappable(text: str | None) -> int:
    """How many distinct SWAPS words a transcript holds (recordings with more are picked first)."""
    return len({normalize(w) for w in (text or "").split()} & SWAPS.keys())


def _measure(
    result, audio: Audio, reference: np.ndarray, speaker_f0: float, new: str, old: str
) -> dict:
    from voicebox.tasks.match import median_f0, semitones_between

    out = result.audio
    step = result.plan.steps[0]
    a, b = round(step.out_start * out.rate), round(step.out_end * out.rate)
    span = Audio(out.samples[:, a:b], out.rate)
    f0 = median_f0(span.mono(), out.rate)
    # The words the speaker said at the cut: a stressed word sits above their median, so the span is
    # also compared with what was there (the model follows the context's prosody, stock tuning the median).
    was = median_f0(
        audio.mono()[round(step.cut_start * audio.rate) : round(step.cut_end * audio.rate)],
        audio.rate,
    )
    heard = asr.transcribe_text(out)
    return {
        "voice": step.voice,
        "span_f0": round(f0, 1),
        "f0_gap_st": round(semitones_between(speaker_f0, f0), 2) if f0 > 0 else None,
        "word_f0": round(was, 1),
        "f0_gap_word_st": round(semitones_between(was, f0), 2) if f0 > 0 and was > 0 else None,
        # the largest sample step within 10 ms of a seam against the recording's 99.9th percentile
        "click_ratio": round(click_ratio(audio, out, result.plan), 3),
        "wer": round(wer(result.plan.edited_text, heard), 3),
        "wer_local": round(local_wer(result.plan.edited_text, heard, new, old), 3),
        "similarity": round(speaker.similarity(speaker.embed(span), reference), 3),
        "heard": heard,
    }


def _false_edits(run, audio: Audio, src, truth: str) -> dict:
    """What submitting the recording's true transcript does: how many edits it makes (all false)."""
    try:
        plan = run(audio, transcript=truth, source=src, plan_only=True).plan
    except Exception as exc:  # noqa: BLE001 - the old code refuses some; that is the finding
        return {"error": str(exc)}
    return {"edits": len(plan.steps), "kept": len(getattr(plan, "kept", []))}


def compare_voice(
    item: dict,
    n: int,
    old_run,
    models: dict[str, str | None],
    which: int = 0,
    src=None,
    same: bool = False,
    any_word: bool = False,
) -> dict:
    """One word (the `which`-th target) replaced by the old matcher (unless `old_run` is None), the
    new one and the model (one column per checkpoint in `models`: column name → folder, None the
    shipped one), side by side; with `same`, replaced by itself (spoken anew: what is heard should be
    the untouched sentence, with no odd word for whisper's language model to fight)."""
    audio = item["audio"]
    src = src or transcribe(audio)
    row = {k: item[k] for k in ("set", "speaker", "pitch", "name")}
    row["duration"] = round(audio.duration, 2)
    row["speaker_f0"] = speaker_f0 = round(_f0(audio), 1)
    targets = _target_words(src, which + 1, any_word)
    if len(targets) <= which:
        row["skipped"] = "no confidently heard unique word with a substitute"
        return row
    word = targets[which]
    new = next(r for r in REPLACEMENTS[n % len(REPLACEMENTS) :] + REPLACEMENTS if r != word)
    new = word if same else new if any_word else SWAPS[word]
    row["edit"] = [word, new]
    # The untouched recording measured the same way: whisper's re-reading of it against its own
    # transcript (the WER an edit is compared with: within 0.05 of it is the bar).
    row["untouched_wer"] = round(wer(src.text, asr.transcribe_text(audio)), 3)
    reference = speaker.embed(audio)
    columns = {"old": old_run, "new": edit} if old_run is not None else {"new": edit}
    for name in models:
        columns[name] = lambda *a, **k: edit(
            *a, engine="voicebox", consent=provenance.Consent(CONSENT), **k
        )
    for name, run in columns.items():
        if name in models:
            _use_checkpoint(models[name])
        t = time.perf_counter()
        try:
            result = run(audio, replace=[(word, new)], source=src)
        except Exception as exc:  # noqa: BLE001 - a column that cannot run says why
            row[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        row[name] = _measure(result, audio, reference, speaker_f0, new, word)
        row[name]["seconds"] = round(time.perf_counter() - t, 2)
    if item.get("text") and old_run is not None:
        row["true_transcript"] = {
            "old": _false_edits(old_run, audio, src, item["text"]),
            "new": _false_edits(edit, audio, src, item["text"]),
        }
    brief = {k: {m: v for m, v in row[k].items() if m != "heard"} for k in columns if k in row}
    print(
        f"  {row['set']}/{row['speaker']} ({row['pitch']}, f0 {speaker_f0}): {json.dumps(brief)}",
        flush=True,
    )
    if "true_transcript" in row:
        print(f"    true transcript: {json.dumps(row['true_transcript'])}", flush=True)
    return row


def _use_checkpoint(folder: str | None) -> None:
    """Point the model engine at `folder` (None: the shipped checkpoint) for the next column (the
    loaded model is cached per name, so the cache is cleared when the folder changes)."""
    from voicebox.model import sample

    if os.environ.get("VOICEBOX_CHECKPOINT") != folder:
        sample.load_models.cache_clear()
    if folder is None:
        os.environ.pop("VOICEBOX_CHECKPOINT", None)
    else:
        os.environ["VOICEBOX_CHECKPOINT"] = folder


def voice_summary(rows: list[dict]) -> dict:
    untouched = [r["untouched_wer"] for r in rows if "untouched_wer" in r]
    out: dict = (
        {"untouched": {"wer_mean": round(float(np.mean(untouched)), 3)}} if untouched else {}
    )
    columns = [c for c in ("old", "new") if any(c in r for r in rows)]
    columns += sorted({c for r in rows for c in r if c.startswith("model")})
    for col in columns:
        ok = [r[col] for r in rows if isinstance(r.get(col), dict) and "wer" in r[col]]
        if not ok:
            if any(col in r for r in rows):
                out[col] = {"errors": sum(1 for r in rows if "error" in r.get(col, {}))}
            continue
        gaps = [abs(c["f0_gap_st"]) for c in ok if c["f0_gap_st"] is not None]
        word_gaps = [abs(c["f0_gap_word_st"]) for c in ok if c.get("f0_gap_word_st") is not None]
        out[col] = {
            "edits": len(ok),
            "f0_gap_st_mean_abs": round(float(np.mean(gaps)), 2) if gaps else None,
            "within_2_st": sum(g <= 2.0 for g in gaps),
            "f0_gap_to_word_st_mean_abs": round(float(np.mean(word_gaps)), 2)
            if word_gaps
            else None,
            "wer_mean": round(float(np.mean([c["wer"] for c in ok])), 3),
            "wer_local_mean": round(float(np.mean([c["wer_local"] for c in ok])), 3),
            "similarity_mean": round(float(np.mean([c["similarity"] for c in ok])), 3),
            "click_ratio_max": max(c["click_ratio"] for c in ok),
            "seconds_mean": round(float(np.mean([c["seconds"] for c in ok])), 2),
        }
    for col in ("old", "new"):
        runs = [r["true_transcript"][col] for r in rows if "true_transcript" in r]
        if runs:
            out[f"true_transcript_{col}"] = {
                "recordings": len(runs),
                "refused": sum("error" in t for t in runs),
                "false_edits": sum(t.get("edits", 0) for t in runs),
                "no_edit": sum(t.get("edits") == 0 for t in runs),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2, help="speakers per end of each eval set")
    parser.add_argument("--old-rev", default=OLD_REV, help="commit whose matcher is the OLD column")
    parser.add_argument("--no-model", action="store_true", help="leave out the model column")
    parser.add_argument("--no-old", action="store_true", help="leave out the OLD matcher column")
    parser.add_argument(
        "--checkpoint",
        action="append",
        help="NAME=FOLDER: a model column per checkpoint, side by side (default: the shipped one)",
    )
    parser.add_argument(
        "--any-word",
        action="store_true",
        help="the older edits: any confident word replaced by one of REPLACEMENTS",
    )
    parser.add_argument("--edits", type=int, default=1, help="words replaced per recording")
    parser.add_argument(
        "--respoken", action="store_true", help="also one word per recording replaced by itself"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="also the synthetic-speaker rounds"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    result: dict = {
        "command": "bench/edit.py " + " ".join(sys.argv[1:]),
        "old_rev": args.old_rev,
        "threads": os.environ.get("VOICEBOX_THREADS", "1"),
    }
    voices = real_voices(args.limit, 0 if args.any_word else args.edits)
    if not voices:
        print(f"no real speech under {DATA}; skipping real voices", file=sys.stderr)
    old_run = None if args.no_old else old_edit(args.old_rev)
    models: dict[str, str | None] = {}
    if not args.no_model:
        for spec in args.checkpoint or []:
            name, _, folder = spec.rpartition("=")
            models[f"model_{name or Path(folder).name}"] = folder
        models = models or {"model": None}
    rows, respoken = [], []
    for n, item in enumerate(voices):
        src = transcribe(item["audio"])
        for which in range(args.edits):
            rows.append(
                compare_voice(item, n + which, old_run, models, which, src, any_word=args.any_word)
            )
        if args.respoken:
            respoken.append(
                compare_voice(item, n, old_run, models, 0, src, same=True, any_word=args.any_word)
            )
    result["voices"] = {"summary": voice_summary(rows), "recordings": rows}
    if respoken:
        result["respoken"] = {"summary": voice_summary(respoken), "recordings": respoken}
    if args.synthetic:
        synthetic = []
        for voice, text in SYNTHETIC.items():
            print(f"synthetic speaker {voice}", flush=True)
            audio = tts.synthesize(text, voice)
            noise = np.random.default_rng(0).standard_normal(audio.samples.shape) * 0.002
            audio = Audio((audio.samples + noise).astype(np.float32), audio.rate)
            synthetic.append(run_recording(f"synthetic/{voice}", audio, exclude=[voice]))
        result["synthetic"] = {"summary": summary(synthetic), "recordings": synthetic}
    result["seconds_total"] = round(time.perf_counter() - t0, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["voices"]["summary"], indent=2))
    if respoken:
        print(json.dumps(result["respoken"]["summary"], indent=2))


if __name__ == "__main__":
    main()
