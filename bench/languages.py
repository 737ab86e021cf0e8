"""Languages benchmark: how intelligible each offered language is, and how well we hear languages.

Usage: .venv/bin/python bench/languages.py [--quick]

Measures, on one engine thread:
- english_voices: every English candidate (heart, piper_joe, the Kokoro packs, two blends) reading
  SENTENCES_EN, scored by WER (the mean of whisper tiny.en's and base's, so one recogniser's
  quirks do not pick the voice) and DNSMOS OVRL; the ranking picks the default English
  voice and the OpenAI names (voicebox.tasks.read.english_ranking / openai_voices);
- languages: per language offered, the read -> transcribe round trip through whisper base
  (multilingual, language forced): WER, and CER (the headline for ja and zh), synthesis RTF, the
  voice used, and whether whisper base detects the language of the reading; for Japanese every
  Kokoro pack is tried and the best one becomes the Japanese default;
- detection_real: language detection on real recordings in ../shared/data (the Mandarin AISHELL
  prompt, English LibriTTS / LJ prompts), skipped when that folder is absent;
- english_recogniser: WER of tiny.en and base on the real English eval sets (a sample of each).

Writes bench/results/languages.json (everything) and src/voicebox/data/languages.json (the figures
the library reads: the English ranking and the per-language round trips, shown by `voicebox voices`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from voicebox.audio import Audio, load  # noqa: E402
from voicebox.engines import asr, quality, tts  # noqa: E402
from voicebox.tasks import read as reading  # noqa: E402
from voicebox.text import normalize  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "speech"
RESULTS = ROOT / "bench" / "results" / "languages.json"
LIBRARY_DATA = ROOT / "src" / "voicebox" / "data" / "languages.json"

SENTENCES_EN = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "Mr. Brown lives at 221 Baker St. with his 3 cats.",
    "The ticket costs $42.50, about 15% more than last year.",
]
ENGLISH_CANDIDATES = [
    "heart",
    "piper_joe",
    "jm_kumo",
    "jf_nezumi",
    "jf_alpha",
    "jf_gongitsune",
    "jf_tebukuro",
    "jm_kumo(3)+jf_nezumi(1)",
    "jf_nezumi(2)+jm_kumo(1)",
]
# Three short everyday sentences per language (the same three ideas in each).
SENTENCES = {
    "en": [
        "The dog plays in the garden with a red ball.",
        "Tomorrow we will take the train to London.",
        "The weather is very nice today.",
    ],
    "ja": [
        "犬が庭で赤いボールで遊んでいます。",
        "明日は電車で東京へ行きます。",
        "今日はとても良い天気です。",
    ],
    "zh": ["小狗在花园里玩红色的球。", "明天我们坐火车去北京。", "今天天气非常好。"],
    "de": [
        "Der Hund spielt im Garten mit einem roten Ball.",
        "Morgen fahren wir mit dem Zug nach Berlin.",
        "Das Wetter ist heute sehr schön.",
    ],
    "fr": [
        "Le chien joue dans le jardin avec une balle rouge.",
        "Demain nous prendrons le train pour Paris.",
        "Il fait très beau aujourd'hui.",
    ],
    "es": [
        "El perro juega en el jardín con una pelota roja.",
        "Mañana vamos a tomar el tren a Madrid.",
        "Hoy hace muy buen tiempo.",
    ],
    "it": [
        "Il cane gioca in giardino con una palla rossa.",
        "Domani prenderemo il treno per Roma.",
        "Oggi il tempo è molto bello.",
    ],
    "pt": [
        "O cachorro brinca no jardim com uma bola vermelha.",
        "Amanhã vamos pegar o trem para Lisboa.",
        "Hoje o tempo está muito bonito.",
    ],
    "ru": [
        "Собака играет в саду с красным мячом.",
        "Завтра мы поедем на поезде в Москву.",
        "Сегодня очень хорошая погода.",
    ],
    "nl": [
        "De hond speelt in de tuin met een rode bal.",
        "Morgen nemen we de trein naar Amsterdam.",
        "Het weer is vandaag erg mooi.",
    ],
    "pl": [
        "Pies bawi się w ogrodzie czerwoną piłką.",
        "Jutro pojedziemy pociągiem do Warszawy.",
        "Dzisiaj jest bardzo ładna pogoda.",
    ],
    "tr": [
        "Köpek bahçede kırmızı bir topla oynuyor.",
        "Yarın trenle Ankara'ya gideceğiz.",
        "Bugün hava çok güzel.",
    ],
    "hi": [
        "कुत्ता बगीचे में लाल गेंद से खेल रहा है।",
        "कल हम ट्रेन से दिल्ली जाएंगे।",
        "आज मौसम बहुत अच्छा है।",
    ],
    "ko": [
        "강아지가 정원에서 빨간 공을 가지고 놀아요.",
        "내일 우리는 기차를 타고 서울에 갑니다.",
        "오늘은 날씨가 아주 좋아요.",
    ],
    "ar": [
        "الكلب يلعب في الحديقة بكرة حمراء.",
        "غدا سنركب القطار إلى القاهرة.",
        "الطقس جميل جدا اليوم.",
    ],
}
CER_LANGS = ("ja", "zh")
ENGLISH_SETS = {
    "eval_librispeech_test_other10": 16,
    "eval_libritts_test10": 12,
    "eval_vctk42": 16,
}


# ---------------------------------------------------------------- scoring


def english_words(text: str) -> list[str]:
    """Both sides the same way: our normaliser (digits spoken), lower case, no punctuation."""
    spoken = normalize(text).lower().replace("-", " ")
    return re.sub(r"[^a-z0-9' ]+", " ", spoken).split()


def plain(text: str) -> str:
    """Lower case, punctuation and symbols removed (any script), spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" or ch == " " else " " for ch in text)
    return " ".join(kept.split())


def error_rates(refs: list[str], hyps: list[str], lang: str) -> dict[str, float]:
    import jiwer

    if lang == "en":
        ref = [" ".join(english_words(r)) for r in refs]
        hyp = [" ".join(english_words(h)) or "<empty>" for h in hyps]
    else:
        ref = [plain(r) for r in refs]
        hyp = [plain(h) or "<empty>" for h in hyps]
    nospace = [r.replace(" ", "") for r in ref], [h.replace(" ", "") or "-" for h in hyp]
    return {
        "wer": round(float(jiwer.wer(ref, hyp)), 4),
        "cer": round(float(jiwer.cer(*nospace)), 4),
    }


def transcribe(audio: Audio, lang: str, model: str = "base") -> str:
    """Whisper's text for a clip, with the English model chosen explicitly (tiny.en or base)."""
    segments = asr.recognize(audio, words=False, language=lang, model=model)
    return " ".join(s.text for s in segments).strip()


def gender_of(spec: str) -> str:
    weights = reading._blend_weights(spec) if reading.is_combination(spec) else {spec: 1.0}
    votes: dict[str, float] = {}
    for name, weight in weights.items():
        gender = next(v.gender for v in tts.list_voices() if v.id == name)
        votes[gender] = votes.get(gender, 0.0) + weight
    return max(votes, key=lambda g: votes[g])


# ---------------------------------------------------------------- sections


def english_voices(sentences: list[str]) -> list[dict]:
    rows = []
    for spec in ENGLISH_CANDIDATES:
        reading.read(sentences[0], voice=spec, lang="en")  # warm-up: RTF without model loading
        hyps, second, scores, cpu, seconds = [], [], [], 0.0, 0.0
        for sentence in sentences:
            t = time.process_time()
            speech = reading.read(sentence, voice=spec, lang="en")
            cpu += time.process_time() - t
            seconds += speech.audio.duration
            hyps.append(transcribe(speech.audio, "en", "tiny.en"))
            second.append(transcribe(speech.audio, "en", "base"))
            scores.append(quality.dnsmos(speech.audio)["ovrl"])
        tiny, base = error_rates(sentences, hyps, "en"), error_rates(sentences, second, "en")
        row = {
            "voice": spec,
            "gender": gender_of(spec),
            "wer": round((tiny["wer"] + base["wer"]) / 2, 4),
            "wer_tiny_en": tiny["wer"],
            "wer_base": base["wer"],
            "dnsmos": round(float(np.mean(scores)), 3),
            "rtf": round(cpu / seconds, 4),
            "hypotheses": hyps,
        }
        print(f"  {spec:26s} {row['gender']:6s} WER {row['wer']:.3f} OVRL {row['dnsmos']:.2f}")
        rows.append(row)
    return rows


def round_trip(lang: str, voice: str, sentences: list[str]) -> dict:
    reading.read(sentences[0], voice=voice, lang=lang)  # warm-up: RTF without model loading
    hyps, detected, cpu, seconds = [], [], 0.0, 0.0
    for sentence in sentences:
        t = time.process_time()
        speech = reading.read(sentence, voice=voice, lang=lang)
        cpu += time.process_time() - t
        seconds += speech.audio.duration
        hyps.append(transcribe(speech.audio, lang, "base"))
        code, probability, _ = asr.detect_language(speech.audio)
        detected.append({"language": code, "probability": round(probability, 3)})
    rates = error_rates(sentences, hyps, lang)
    row = {
        "voice": voice,
        "engine": "espeak" if voice.startswith(tts.ESPEAK_PREFIX) else _engine(voice),
        **rates,
        "metric": "cer" if lang in CER_LANGS else "wer",
        "rtf": round(cpu / seconds, 4),
        "detected": detected,
        "detection_accuracy": round(
            sum(d["language"] == lang for d in detected) / len(detected), 3
        ),
        "hypotheses": hyps,
    }
    print(
        f"  {lang} {voice:14s} WER {rates['wer']:.3f} CER {rates['cer']:.3f} "
        f"RTF {row['rtf']:.3f} detected {[d['language'] for d in detected]}"
    )
    return row


def _engine(voice: str) -> str:
    return next(v.engine for v in tts.list_voices() if v.id == voice)


def measure_language(lang: str, english_default: str, quick: bool) -> dict:
    """One language's round trip; Japanese tries every Kokoro pack and keeps the best."""
    sentences = SENTENCES[lang]
    if lang == "ja":
        packs = list(tts.KOKORO_VOICES)[: 2 if quick else None]
        tried = [round_trip(lang, pack, sentences) for pack in packs]
        best = min(tried, key=lambda r: (r["cer"], r["rtf"]))
        best["candidates"] = {r["voice"]: r["cer"] for r in tried}
        return best
    if lang == "en":
        return round_trip(lang, english_default, sentences)
    return round_trip(lang, tts.ESPEAK_PREFIX + lang, sentences)


def languages(english_default: str, quick: bool) -> dict[str, dict]:
    picked = [lang for lang in SENTENCES if not quick or lang in ("en", "ja", "de", "zh")]
    return {lang: measure_language(lang, english_default, quick) for lang in picked}


def detection_real() -> list[dict]:
    folder = DATA / "prompts_libritts_lj_aishell"
    if not folder.is_dir():
        return []
    rows = []
    with open(folder / "transcripts.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            expected = "zh" if row["speaker"].startswith("aishell") else "en"
            audio = load(folder / row["file"])
            code, probability, top = asr.detect_language(audio)
            rows.append(
                {
                    "file": row["file"],
                    "expected": expected,
                    "detected": code,
                    "probability": round(probability, 3),
                    "top": [[c, round(p, 3)] for c, p in top[:3]],
                }
            )
            print(f"  {row['file']}: {code} {probability:.3f} (expected {expected})")
    return rows


def english_recogniser(quick: bool) -> dict:
    out: dict = {}
    for name, count in ENGLISH_SETS.items():
        folder = DATA / name
        if not folder.is_dir():
            continue
        with open(folder / "transcripts.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        count = 4 if quick else count
        step = max(1, len(rows) // count)
        sample = rows[::step][:count]
        refs = [r["text"] for r in sample]
        audios = [load(folder / r["file"]) for r in sample]
        seconds = sum(a.duration for a in audios)
        entry: dict = {"utterances": len(sample), "audio_s": round(seconds, 1)}
        for model in ("tiny.en", "base"):
            t = time.process_time()
            hyps = [transcribe(a, "en", model) for a in audios]
            cpu = time.process_time() - t
            entry[model] = {
                "wer": error_rates(refs, hyps, "en")["wer"],
                "rtf": round(cpu / seconds, 4),
            }
        print(f"  {name}: tiny.en {entry['tiny.en']} base {entry['base']}")
        out[name] = entry
    sets = list(out.values())
    if sets:
        weights = [e["utterances"] for e in sets]
        out["mean"] = {
            model: round(float(np.average([e[model]["wer"] for e in sets], weights=weights)), 4)
            for model in ("tiny.en", "base")
        }
        out["mean"]["rtf"] = {
            model: round(float(np.mean([e[model]["rtf"] for e in sets])), 4)
            for model in ("tiny.en", "base")
        }
    return out


def summarise(english: list[dict], langs: dict[str, dict], real: list[dict]) -> dict:
    reading._MEASURED = {"english_voices": english}  # the ranking below uses these figures
    readings = [(lang, d) for lang, r in langs.items() for d in r["detected"]]
    correct = [d["probability"] for lang, d in readings if d["language"] == lang]
    correct += [r["probability"] for r in real if r["detected"] == r["expected"]]
    return {
        "default_english_voice": reading.english_ranking()[0],
        "openai_voices": reading.openai_voices(),
        "detection_accuracy_readings": round(
            sum(d["language"] == lang for lang, d in readings) / max(1, len(readings)), 3
        ),
        "detection_accuracy_real": round(
            sum(r["detected"] == r["expected"] for r in real) / len(real), 3
        )
        if real
        else None,
        "lowest_correct_probability": round(min(correct), 3) if correct else None,
    }


def library_figures(doc: dict) -> dict:
    """The part of the results the library reads (src/voicebox/data/languages.json)."""
    keys = ("voice", "engine", "wer", "cer", "metric", "rtf", "detection_accuracy")
    return {
        "source": "bench/languages.py (bench/results/languages.json)",
        "english_recogniser": {
            k: doc["english_recogniser"][k] for k in ("mean",) if k in doc["english_recogniser"]
        },
        "english_voices": [
            {k: r[k] for k in ("voice", "gender", "wer", "dnsmos", "rtf")}
            for r in doc["english_voices"]
        ],
        "languages": {lang: {k: r[k] for k in keys} for lang, r in doc["languages"].items()},
    }


def write(doc: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if not doc["quick"]:  # the library's figures come from full runs only
        LIBRARY_DATA.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(library_figures(doc), ensure_ascii=False, indent=1) + "\n"
        LIBRARY_DATA.write_text(text, encoding="utf-8")
    print(json.dumps(doc["summary"], ensure_ascii=False, indent=1))
    print(f"wrote {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few items of each section")
    parser.add_argument(
        "--langs",
        help="re-measure only these languages (comma list, e.g. en,de) and merge them into the "
        "existing results (the English default is taken from the stored voice figures)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    if args.langs:
        doc = json.loads(RESULTS.read_text(encoding="utf-8"))
        reading._MEASURED = {"english_voices": doc["english_voices"]}
        default = reading.english_ranking()[0]
        for lang in args.langs.split(","):
            doc["languages"][lang.strip()] = measure_language(lang.strip(), default, doc["quick"])
        doc["summary"] = summarise(doc["english_voices"], doc["languages"], doc["detection_real"])
        doc.setdefault("remeasured", []).append(
            {"langs": args.langs, "wall_s": round(time.perf_counter() - started, 1)}
        )
        write(doc)
        return

    print("english voices")
    english = english_voices(SENTENCES_EN[:3] if args.quick else SENTENCES_EN)
    reading._MEASURED = {"english_voices": english}
    default = reading.english_ranking()[0]
    print(f"  -> default English voice {default}; OpenAI names {reading.openai_voices()}")
    print("languages (read -> whisper base)")
    langs = languages(default, args.quick)
    print("language detection on real recordings")
    real = detection_real()
    print("English recogniser on real speech")
    recogniser = english_recogniser(args.quick)
    write(
        {
            "what": "voices and languages: English candidates by whisper WER (mean of tiny.en and "
            "base) and DNSMOS; per language the read -> whisper base round trip (WER, CER for "
            "ja/zh), synthesis RTF (CPU s per audio s, 1 thread) and language detection; "
            "detection on real clips; tiny.en vs base WER on real English eval sets",
            "quick": args.quick,
            "threads": os.environ.get("VOICEBOX_THREADS"),
            "load_average_1min": {
                "start": round(load_start, 2),
                "end": round(os.getloadavg()[0], 2),
            },
            "wall_s": round(time.perf_counter() - started, 1),
            "summary": summarise(english, langs, real),
            "english_voices": english,
            "languages": langs,
            "detection_real": real,
            "english_recogniser": recogniser,
        }
    )


if __name__ == "__main__":
    main()
