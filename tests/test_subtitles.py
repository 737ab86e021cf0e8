"""Subtitles: cues of at most 2 lines of 42 characters and 7 s, every word kept in order."""

from __future__ import annotations

import re

import numpy as np
import pytest

from voicebox import subtitles
from voicebox.engines.asr import Segment, Word
from voicebox.tasks.read import SentenceTiming, Timing, subtitle_cues, to_srt, to_vtt, word_times
from voicebox.tasks.transcribe import Transcript

LONG = (
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow; "
    "the rainbow is a division of white light into many beautiful colors, which take the shape "
    "of a long round arch, with its path high above, and its two ends apparently beyond the "
    "horizon, where there is, according to legend, a boiling pot of gold at one end."
)


def timed_words(text: str, start: float = 0.0, seconds_per_char: float = 0.058) -> list[Word]:
    """Words timed as a steady reader would say them (with a short gap between words)."""
    rng = np.random.default_rng(0)
    out, t = [], start
    for token in text.split():
        length = len(token) * seconds_per_char * float(rng.uniform(0.8, 1.2))
        out.append(Word(token, t, t + length, 0.9))
        t += length + 0.05
    return out


def check(cues: list[subtitles.Cue], words: list[str]) -> None:
    assert cues
    for cue in cues:
        assert 1 <= len(cue.lines) <= subtitles.MAX_LINES, cue
        assert all(0 < len(line) <= subtitles.MAX_LINE_CHARS for line in cue.lines), cue
        assert cue.end - cue.start <= subtitles.MAX_CUE_SECONDS + 1e-9, cue
        assert cue.end > cue.start
    assert all(a.end <= b.start + 1e-9 for a, b in zip(cues, cues[1:], strict=False))
    shown = " ".join(line for cue in cues for line in cue.lines).split()
    assert shown == words  # in order, none lost, none added


def test_long_sentence_is_cut_into_readable_cues() -> None:
    words = timed_words(LONG)
    assert words[-1].end > 17  # one cue today: 17 s and ~300 characters on one line
    cues = subtitles.cues([subtitles.pieces(words)])
    check(cues, LONG.split())
    assert len(cues) >= 4
    # breaks fall after punctuation where the text offers it
    ends = [cue.lines[-1][-1] for cue in cues[:-1]]
    assert sum(e in ",;." for e in ends) >= len(ends) // 2


def test_cues_follow_the_word_times() -> None:
    words = timed_words(LONG)
    cues = subtitles.cues([subtitles.pieces(words)])
    i = 0
    for cue in cues:
        n = len(cue.text.split())
        assert cue.start == pytest.approx(words[i].start)
        assert cue.end == pytest.approx(words[i + n - 1].end)
        i += n


def test_a_cue_never_spans_two_groups() -> None:
    first, second = timed_words("Hello there."), timed_words("Goodbye now.", start=2.0)
    cues = subtitles.cues([subtitles.pieces(first), subtitles.pieces(second)])
    assert [c.text for c in cues] == ["Hello there.", "Goodbye now."]


def test_overlong_word_and_slow_word_keep_the_limits() -> None:
    words = [
        Word("a" * 100, 0.0, 2.0, 0.9),
        Word("slow", 2.0, 14.0, 0.9),  # a recogniser's 12 s word still makes a ≤ 7 s cue
        Word("end.", 14.0, 14.5, 0.9),
    ]
    cues = subtitles.cues([subtitles.pieces(words)])
    for cue in cues:
        assert all(len(line) <= subtitles.MAX_LINE_CHARS for line in cue.lines)
        assert cue.end - cue.start <= subtitles.MAX_CUE_SECONDS + 1e-9
    assert "".join(" ".join(c.lines) for c in cues).replace(" ", "") == "a" * 100 + "slowend."


def test_transcript_subtitles_split_by_word_times() -> None:
    words = timed_words(LONG)
    segment = Segment(LONG, words[0].start, words[-1].end, words)
    plain = Segment("Short one without word times.", 30.0, 32.0, [])
    transcript = Transcript([segment, plain], 32.0)
    check(transcript.cues(), LONG.split() + plain.text.split())
    srt = transcript.to_srt()
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == len(transcript.cues())
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(n)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
        assert 1 <= len(lines[2:]) <= 2
    vtt = transcript.to_vtt()
    assert vtt.startswith("WEBVTT\n\n") and vtt.count(" --> ") == len(blocks)


def test_read_subtitles_show_the_written_text_on_the_spoken_times() -> None:
    written = "On March 3rd, Dr. Smith paid $12.50 for " + LONG
    spoken = "On March third, Doctor Smith paid twelve dollars and fifty cents for " + LONG
    words = word_times(spoken, 1.0, 24.0, "en")
    timing = SentenceTiming(written, 1.0, 24.0, spoken, words)
    short = SentenceTiming("It is 5 pm.", 24.5, 25.5, "It is five p m.", [])
    short.words = [
        Timing(w, 24.5 + i * 0.2, 24.7 + i * 0.2) for i, w in enumerate("It is five p m".split())
    ]
    cues = subtitle_cues([timing, short])
    check(cues, written.split() + short.text.split())
    assert cues[-1].text == "It is 5 pm."
    assert cues[-1].start == pytest.approx(24.5) and cues[-1].end == pytest.approx(25.5)
    # "$12.50" stands for five spoken words: the cue holding it ends no earlier than "cents" does
    with_money = next(c for c in cues if "$12.50" in c.text)
    cents = next(w for w in words if w.text == "cents")
    assert with_money.end >= cents.end - 1e-6
    assert to_srt([timing, short]).count(" --> ") == len(cues)
    assert to_vtt([timing, short]).startswith("WEBVTT\n\n00:00:01.000 --> ")


def test_punctuation_given_as_a_word_joins_the_word_before() -> None:
    first = [Word("one", 0.0, 0.3, 0.9), Word("end", 0.4, 0.8, 0.9), Word(".", 0.8, 0.9, 0.9)]
    lone = [Word(".", 1.0, 1.2, 0.9)]  # a recognised segment holding only a full stop
    cues = subtitles.cues([subtitles.pieces(first), subtitles.pieces(lone)])
    assert [c.text for c in cues] == ["one end.."]
