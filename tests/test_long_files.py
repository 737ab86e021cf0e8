"""Long inputs in bounded memory: chunked recognition and windowed mark detection give what the
whole-signal paths give, long text streams its first sentence at once, and memory stays flat."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from helpers import synthesise

SHORT = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."


def _words(transcript) -> list[str]:  # noqa: ANN001 - a Transcript
    return [re.sub(r"[^a-z']", "", w.text.lower()) for w in transcript.words]


def test_chunker_cuts_where_the_whole_signal_is_cut() -> None:
    from voicebox.tasks.transcribe import RATE, Chunker, chunk_bounds

    rng = np.random.default_rng(1)
    for n in (0, 5, 30 * RATE, 30 * RATE + 1, 95 * RATE + 17, 170 * RATE):
        level = np.repeat(rng.random(n // 3200 + 1), 3200)[:n]
        x = (rng.standard_normal(n) * level).astype(np.float32)
        chunker, got, i = Chunker(), [], 0
        while i < n:
            step = int(rng.integers(1, 15 * RATE))
            got += [(s, s + len(p)) for s, p in chunker.feed(x[i : i + step])]
            i += step
        got += [(s, s + len(p)) for s, p in chunker.finish()]
        assert got == chunk_bounds(x, RATE)


def test_long_file_transcribed_in_chunks_gives_the_short_files_words(tmp_path: Path) -> None:
    from voicebox.tasks.transcribe import transcribe, transcribe_file

    short = synthesise(SHORT)
    rate = short.rate
    quiet = np.zeros(int(14 * rate), np.float32)
    x = short.samples[0]
    long = np.concatenate([x, quiet, x, quiet, x])  # ~50 s: cut into two or more pieces
    path = tmp_path / "long.flac"
    sf.write(path, long, rate)
    alone = _words(transcribe(short))
    chunked = transcribe_file(path)
    import jiwer

    # whisper may hear a word differently in a piece than alone: the words agree, not bit for bit
    assert jiwer.wer(" ".join(alone * 3), " ".join(_words(chunked))) <= 0.1
    starts = [
        w.start for w, text in zip(chunked.words, _words(chunked), strict=True) if text == alone[0]
    ]
    onset = (len(x) + len(quiet)) / rate
    assert min(abs(t - onset) for t in starts) < 0.6, "times on the file's clock"
    assert abs(chunked.duration - len(long) / rate) < 0.01


def test_mark_found_in_a_long_file_by_windows(tmp_path: Path) -> None:
    from voicebox import provenance, watermark
    from voicebox.audio import Audio, stream_mono

    speech = synthesise(SHORT)
    marked = provenance.mark(speech)
    clip = synthesise("Rice is often served in round bowls.").samples[0]
    plain = np.resize(clip, 120 * speech.rate).astype(np.float32)  # 2 minutes, unmarked
    at = 70.0
    a = int(at * speech.rate)
    plain[a : a + marked.frames] = marked.samples[0]
    path = tmp_path / "long.wav"
    sf.write(path, plain, speech.rate, subtype="FLOAT")
    alone = provenance.detect(marked)
    expected, blocks = stream_mono(path, watermark.RATE)
    found, seconds = watermark.analyse_blocks(
        blocks, expected, accept=provenance._known_version, flips=4, piece_periods=30
    )
    assert abs(seconds - 120.0) < 0.01
    assert found.z >= found.threshold and found.payload is not None
    assert provenance.Payload.unpack(found.payload) == alone.payload
    assert found.spans and all(
        at - 1.5 < s.start and s.end < at + speech.duration + 1.5 for s in found.spans
    )
    unmarked = Audio(plain[: a - speech.rate], speech.rate)
    assert not provenance.detect(unmarked).marked


def test_long_text_streams_its_first_sentence_at_once() -> None:
    from voicebox.text import MAX_SENTENCE_CHARS, iter_sentences

    words = "alpha beta gamma delta kappa lambda".split()
    run_on = " ".join(words[i % 6] for i in range(9000))  # 50,000 characters, no punctuation
    one_line = ("This is one sentence of a very long book, which goes on. " * 18000).strip()
    for text in (run_on, one_line):
        started = time.perf_counter()
        pieces = iter_sentences(iter([text]))
        first = next(pieces)
        assert time.perf_counter() - started < 3.0, "the first sentence must not wait for the rest"
        lengths = [len(first.spoken)] + [len(p.spoken) for p in pieces]
        assert max(lengths) <= MAX_SENTENCE_CHARS
        assert sum(lengths) > 0.9 * len(text)


PEAK_SCRIPT = """
import resource, sys
from voicebox.{module} import {function}
{function}(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_memory_stays_flat_on_a_ten_minute_file(tmp_path: Path) -> None:
    rate = 48_000
    path = tmp_path / "ten.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 2, subtype="FLOAT") as f:
        for _ in range(60):  # 10 minutes of 48 kHz stereo (230 MB as float32 in memory)
            f.write((0.05 * rng.standard_normal((10 * rate, 2))).astype(np.float32))
    env = dict(os.environ, VOICEBOX_THREADS="1", OMP_NUM_THREADS="1")
    base = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, voicebox.provenance, voicebox.tasks.transcribe;"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    floor = int(base.stdout.split()[-1]) // 1024
    script = PEAK_SCRIPT.format(module="provenance", function="detect")
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.split()[-1]) // 1024
    assert peak - floor < 200, f"detect on 10 minutes took {peak} MB (imports alone {floor} MB)"
