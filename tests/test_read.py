"""Reading aloud: intelligibility (whisper WER), blends, speed, pitch, timing files, streaming, hostile input."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebox.errors import InputError
from voicebox.tasks import read as reading

VOICEBOX = Path(sys.executable).parent / "voicebox"

# Ten varied sentences: numbers, dates, money, abbreviations, units, a URL, a phone number.
SENTENCES = [
    "The museum opens at 9:30 am on Saturdays.",
    "Dr. Lee bought 3 books for $27.45 yesterday.",
    "Our team finished 3rd in the 2019 championship.",
    "The bridge is 1,200 meters long and 40 years old.",
    "Please visit openlibrary.org to borrow a copy.",
    "Mrs. Garcia moved to 18 Elm St. last spring.",
    "Prices rose by 12% between January 5, 2020 and May 2022.",
    "The storm brought winds of 90 km per hour to the coast.",
    "A small coffee costs £2.80 at the corner shop.",
    "Call me at 555-867-5309 after dinner.",
    "We planted 250 trees along the river bank.",
]


def spoken_words(text: str) -> str:
    """The same normalisation on both sides of the WER: spoken form, lower case, no punctuation."""
    from voicebox.text import normalize

    text = normalize(text).lower().replace("-", " ")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


@pytest.fixture(scope="module")
def speech() -> reading.Speech:
    return reading.read(" ".join(SENTENCES))


def test_default_voice_is_intelligible(speech: reading.Speech) -> None:
    import jiwer

    from voicebox.engines.asr import transcribe_text

    assert speech.voice == reading.DEFAULT_VOICES["en"]
    hypothesis = transcribe_text(speech.audio)
    error = jiwer.wer(spoken_words(" ".join(SENTENCES)), spoken_words(hypothesis))
    assert error <= 0.10, f"WER {error:.3f}: {hypothesis}"


def test_sentence_and_word_timings(speech: reading.Speech) -> None:
    assert [s.text for s in speech.sentences] == SENTENCES
    previous_end = 0.0
    for sentence in speech.sentences:
        assert sentence.start >= previous_end
        assert sentence.end > sentence.start
        assert sentence.words[0].start == pytest.approx(sentence.start, abs=0.002)
        assert sentence.words[-1].end == pytest.approx(sentence.end, abs=0.002)
        for a, b in zip(sentence.words, sentence.words[1:], strict=False):
            assert a.end == pytest.approx(b.start, abs=0.002) and b.end > b.start
        previous_end = sentence.end
    gaps = [b.start - a.end for a, b in zip(speech.sentences, speech.sentences[1:], strict=False)]
    assert all(g == pytest.approx(reading.GAP_SECONDS, abs=0.01) for g in gaps)
    assert speech.sentences[-1].end == pytest.approx(speech.audio.duration, abs=0.01)
    assert " ".join(w.text for w in speech.words).startswith("The museum opens at nine thirty")


def test_speed_changes_duration() -> None:
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    normal = reading.read(text, voice="piper_joe").audio.duration
    fast = reading.read(text, voice="piper_joe", speed=1.5).audio.duration
    assert 0.55 < fast / normal < 0.8


def _median_f0(x: np.ndarray, rate: int) -> float:
    import librosa

    f0 = librosa.yin(x, fmin=60, fmax=500, sr=rate, frame_length=2048)
    voiced = f0[(f0 > 65) & (f0 < 480)]
    return float(np.median(voiced))


def test_pitch_moves_f0_and_keeps_duration() -> None:
    text = "Rice is often served in round bowls."
    audio = reading.read(text, voice="espeak:en-us").audio
    x = audio.samples[0]
    up = reading.shift_pitch(x, audio.rate, 4.0)
    down = reading.shift_pitch(x, audio.rate, -3.0)
    assert up.size == x.size == down.size
    f0 = _median_f0(x, audio.rate)
    assert 1.15 < _median_f0(up, audio.rate) / f0 < 1.4  # four semitones up is x1.26
    assert 0.75 < _median_f0(down, audio.rate) / f0 < 0.92  # three down is x0.84
    shifted = reading.read(text, voice="espeak:en-us", pitch=4.0).audio
    assert shifted.duration == pytest.approx(audio.duration, rel=0.03)


def test_blend_lies_between_its_parents() -> None:
    from voicebox.engines import tts
    from voicebox.engines.speaker import embed, similarity

    text = "The quick brown fox jumps over the lazy dog."
    alpha = reading.read(text, voice="jf_alpha").audio
    kumo = reading.read(text, voice="jm_kumo").audio
    mix = reading.read(text, blend="jf_alpha:0.5,jm_kumo:0.5")
    assert mix.voice == "jf_alpha:0.50,jm_kumo:0.50"
    e_alpha, e_kumo, e_mix = embed(alpha), embed(kumo), embed(mix.audio)
    apart = similarity(e_alpha, e_kumo)
    assert similarity(e_mix, e_alpha) > apart and similarity(e_mix, e_kumo) > apart
    # weights are normalised: a pack alone at any weight is that pack
    packs = tts._kokoro().packs
    assert np.allclose(tts._blend({"jm_kumo": 3.0}), packs["jm_kumo"])
    assert np.allclose(
        tts._blend({"jm_kumo": 3.0, "jf_alpha": 1.0}),
        0.75 * packs["jm_kumo"] + 0.25 * packs["jf_alpha"],
    )


def test_japanese_reads_with_a_kokoro_voice() -> None:
    speech = reading.read("今日はいい天気ですね。散歩に行きましょう。", lang="ja")
    assert speech.voice == reading.DEFAULT_VOICES["ja"]
    assert len(speech.sentences) == 2
    assert 1.5 < speech.audio.duration < 8.0
    assert np.abs(speech.audio.samples).max() > 0.1


def test_other_languages_read_with_espeak() -> None:
    speech = reading.read("Bonjour, je m'appelle Marie.", voice="espeak:fr")
    assert 1.0 < speech.audio.duration < 5.0
    assert reading.choose_voice(None, None, "de")[1] == "espeak:de"


def test_voices_and_languages() -> None:
    ids = {v.id for v in reading.voices()}
    assert {"piper_joe", "jm_kumo", "jf_alpha", "espeak:en-us", "espeak:fr-fr"} <= ids
    japanese = {v.id for v in reading.voices("ja")}
    assert "jf_alpha" in japanese and "espeak:ja" in japanese and "piper_joe" not in japanese


@pytest.mark.parametrize(
    "spec",
    ["", "jf_alpha:x", "jf_alpha:-1", "nobody:1", "piper_joe:1", "jf_alpha:0,jm_kumo:0"],
)
def test_bad_blends_are_refused(spec: str) -> None:
    with pytest.raises(InputError):
        reading.parse_blend(spec)


@pytest.mark.parametrize(
    "weights", [{}, {"jf_alpha": -1.0}, {"jf_alpha": float("nan")}, {"x": 1.0}]
)
def test_bad_blend_dicts_are_refused_before_synthesis(weights: dict) -> None:
    with pytest.raises(InputError):
        reading.read("hello", blend=weights or {"jf_alpha": 0.0})


def test_parse_blend() -> None:
    assert reading.parse_blend("jf_alpha:0.6, jm_kumo:0.4") == {"jf_alpha": 0.6, "jm_kumo": 0.4}
    assert reading.parse_blend("jm_kumo") == {"jm_kumo": 1.0}


def test_read_stream_yields_timed_chunks() -> None:
    lines = iter(["First sentence here.\n", "Second one follows.\n", "\n", "A new paragraph.\n"])
    total = 0
    for chunk, timing in reading.read_stream(lines, voice="espeak:en-us"):
        assert timing.start == pytest.approx(total / chunk.rate + (0.25 if total else 0), abs=0.01)
        total += chunk.frames
        assert timing.end == pytest.approx(total / chunk.rate, abs=0.001)
    assert total > 0


def test_read_stream_starts_a_long_first_sentence_with_its_first_clause() -> None:
    text = (
        "The old lighthouse stood on the cliff, its white paint faded by years of salt and wind. "
    )
    text += "It was old."
    assert len(text.split(". ")[0]) > reading.QUICK_START_CHARS
    parts = list(reading.read_stream(text, voice="espeak:en-us"))
    assert [t.text for _, t in parts] == [
        "The old lighthouse stood on the cliff,",
        "its white paint faded by years of salt and wind.",
        "It was old.",
    ]
    (_, first), (_, second), (_, third) = parts
    assert second.start - first.end == pytest.approx(reading.CLAUSE_GAP_SECONDS, abs=0.001)
    assert third.start - second.end == pytest.approx(reading.GAP_SECONDS, abs=0.001)
    whole = reading.read(text, voice="espeak:en-us")  # read() keeps whole sentences
    assert len(whole.sentences) == 2


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VOICEBOX), *args], input=stdin, capture_output=True, timeout=300, check=False
    )


def test_cli_writes_audio_subtitles_and_timings(tmp_path: Path) -> None:
    out, srt, vtt, js = (tmp_path / n for n in ("a.wav", "a.srt", "b.vtt", "a.json"))
    text = "Hello there. It is 5 pm. Goodbye!"
    proc = run("read", text, "-o", str(out), "--subtitles", str(srt), "--timings", str(js))
    assert proc.returncode == 0, proc.stderr.decode()
    info = sf.info(str(out))
    cues = re.findall(
        r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)\n", srt.read_text()
    )
    assert [c[3] for c in cues] == ["Hello there.", "It is 5 pm.", "Goodbye!"]
    doc = json.loads(js.read_text())
    assert doc["voice"] == reading.default_voice("en") and doc["rate"] == info.samplerate
    assert doc["duration"] == pytest.approx(info.duration, abs=0.01)
    assert [w["text"] for w in doc["sentences"][1]["words"]] == ["It", "is", "five", "p", "m"]
    proc = run("read", text, "-o", str(tmp_path / "b.flac"), "--subtitles", str(vtt))
    assert proc.returncode == 0, proc.stderr.decode()
    assert vtt.read_text().startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_cli_streams_wav_to_stdout() -> None:
    proc = run("read", "-", "-o", "-", "--voice", "espeak:en-us", stdin=b"One. Two. Three.\n")
    assert proc.returncode == 0, proc.stderr.decode()
    data = proc.stdout
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    channels, rate = struct.unpack("<HI", data[22:28])
    assert (channels, rate) == (1, 22050)
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    samples = np.frombuffer(data[44:], dtype="<i2")
    assert samples.size > rate  # over a second of speech
    assert np.abs(samples).max() > 3000


def test_cli_voices(tmp_path: Path) -> None:
    proc = run("voices", "--lang", "ja", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    ids = [v["id"] for v in json.loads(proc.stdout)]
    assert "jf_alpha" in ids and "piper_joe" not in ids
    proc = run("voices", "--lang", "cy", "--preview", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr.decode()
    assert sf.info(str(tmp_path / "p" / "espeak_cy.wav")).duration > 0.5


def cli(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture, *args: str):
    """Run the CLI in this process (no start-up cost); returns (exit code, stderr)."""
    from voicebox.cli import main

    monkeypatch.setattr(sys, "argv", ["voicebox", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capfd.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   ### !!! ... "], "nothing to read"),
        (["hello", "--voice", "nobody"], "unknown voice"),
        (["hello", "--blend", "jf_alpha:abc"], "not a number"),
        (["hello", "--voice", "jm_kumo", "--blend", "jf_alpha"], "either a voice or a blend"),
        (["hello", "--speed", "0"], "speed must be"),
        (["hello", "--pitch", "40"], "pitch must be"),
        (["hello", "--lang", "xx-nowhere"], "no voice for language"),
        (["hello", "--voice", "piper_joe", "--lang", "ja"], "English only"),
        (["hello", "--subtitles", "x.txt"], "must be .srt or .vtt"),
        ([], "nothing to read"),
    ],
)
def test_cli_refuses_bad_input(monkeypatch, capfd, tmp_path: Path, args, message) -> None:
    code, stderr = cli(monkeypatch, capfd, "read", *args, "-o", str(tmp_path / "out.wav"))
    assert code == 2, stderr
    assert message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_bad_files(monkeypatch, capfd, tmp_path: Path) -> None:
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    before = binary.read_bytes()
    for args, message in [
        (["-f", str(binary)], "binary"),
        (["-f", str(empty)], "nothing to read"),
        (["-f", str(tmp_path / "missing.txt")], "no such file"),
        (["-f", str(tmp_path)], "directory"),
        (["hi", "-f", str(empty)], "not both"),
        (["hello", "-o", str(tmp_path / "no" / "dir.wav")], "does not exist"),
    ]:
        if "-o" not in args:
            args = [*args, "-o", str(tmp_path / "o.wav")]
        code, stderr = cli(monkeypatch, capfd, "read", *args)
        assert code == 2 and message in stderr, stderr
    assert binary.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.txt", "empty.txt"]


def test_real_cli_reports_one_line() -> None:
    proc = run("read", "!!!", "-o", "x.wav")
    assert proc.returncode == 2
    assert (
        proc.stderr.decode().strip()
        == "error: nothing to read: the text has no words (only spaces or symbols)"
    )
