"""Every command run the way a person runs it: in a terminal (a pseudo-terminal, so stdout and stderr
are TTYs and rich draws its live progress bars), checked for exit code 0, its output and no traceback.

The suite's other CLI tests redirect stderr, which hides the progress bar, and so hid a crash that hit
every `clean` and `transcribe` in a real terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SPEECH = "The weather is warm and sunny today. We will walk to the park after lunch."
CHAPTER = (
    "The first sentence is short.\n"
    "Here comes the second one, a little longer.\n\n"
    "A third sentence starts a new paragraph. And a fourth ends it.\n"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
CLI = [sys.executable, "-c", "from voicebox.cli import main; main()"]


def _take_terminal() -> None:
    """In the child, after setsid: make the pty its controlling terminal, so Ctrl-C reaches it."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_terminal(
    args: list[str],
    cwd: Path,
    timeout: float = 180,
    columns: int = 120,
    ctrl_c_when: Callable[[], bool] | None = None,
) -> tuple[int, str]:
    """Run `voicebox ARGS` with stdin, stdout and stderr on a fresh pseudo-terminal; return its
    exit code and everything it drew (ANSI codes removed, carriage returns as line breaks).
    `ctrl_c_when`: type Ctrl-C once it returns True (the terminal sends SIGINT to the job)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("VOICEBOX_PROGRESS", "COLUMNS")}
    env.update(TERM="xterm-256color", VOICEBOX_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        CLI + args,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own session, with the pty as controlling terminal
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"voicebox {' '.join(args)} ran over {timeout:.0f} s")
            if ctrl_c_when is not None and ctrl_c_when():
                os.write(master, b"\x03")
                ctrl_c_when = None
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed its side
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "\n")
    return code, text


def assert_clean_run(code: int, text: str) -> None:
    """Exit 0 and nothing a user should never see."""
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "error:" not in text, text[-3000:]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with a short recording (bundled voice, light noise), a 40 s one and a text file."""
    from voicebox.audio import save
    from voicebox.tasks.read import read

    folder = tmp_path_factory.mktemp("terminal")
    speech = read(SPEECH, voice="piper_joe").audio
    rng = np.random.default_rng(0)
    x = speech.samples[0]
    noisy = x + 0.01 * rng.standard_normal(x.size).astype(np.float32)
    sf.write(folder / "talk.wav", noisy, speech.rate)
    reps = int(np.ceil(40 * speech.rate / x.size))
    long = np.tile(noisy, reps)[: 40 * speech.rate]
    sf.write(folder / "long.wav", long, speech.rate)
    (folder / "chapter.txt").write_text(CHAPTER, encoding="utf-8")
    (folder / "in").mkdir()
    save(speech, folder / "in" / "a.wav")
    return folder


def percentages(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"(\d{1,3})%", text)]


def test_clean_in_a_terminal_shows_progress_through_the_file(work):
    code, text = run_in_terminal(["clean", "long.wav", "-o", "long-clean.wav"], work)
    assert_clean_run(code, text)
    assert (work / "long-clean.wav").stat().st_size > 0
    seen = percentages(text)
    assert len(set(seen)) >= 3, f"the bar did not move through the file: {sorted(set(seen))}"
    assert seen == sorted(seen), seen  # forward only
    assert 100 in seen and min(seen) < 100
    assert re.search(r"40/40 s", text), text[-2000:]
    assert "cleaned long.wav" in text


def test_clean_and_transcribe_short_files(work):
    code, text = run_in_terminal(["clean", "talk.wav", "-o", "talk-clean.wav"], work)
    assert_clean_run(code, text)
    assert (work / "talk-clean.wav").stat().st_size > 0

    code, text = run_in_terminal(["transcribe", "talk.wav"], work)
    assert_clean_run(code, text)
    assert "park" in text.lower() and "100%" in text, text[-2000:]

    code, text = run_in_terminal(["transcribe", "talk.wav", "-o", "talk.srt"], work)
    assert_clean_run(code, text)
    assert "-->" in (work / "talk.srt").read_text()


def test_read_text_and_read_file_move_with_the_sentences(work):
    code, text = run_in_terminal(["read", "Hello there. How are you?", "-o", "hello.wav"], work)
    assert_clean_run(code, text)
    assert sf.info(str(work / "hello.wav")).duration > 1.0

    code, text = run_in_terminal(["read", "-f", "chapter.txt", "-o", "chapter.flac"], work)
    assert_clean_run(code, text)
    assert sf.info(str(work / "chapter.flac")).duration > 3.0
    counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) sentences", text)]
    assert counts, text[-2000:]
    totals = {b for _, b in counts}
    assert totals == {4}, counts  # the file's sentences, known from the start
    done = sorted({a for a, _ in counts})
    assert done[0] < 4 and done[-1] == 4, counts  # not "4/4" from the first draw


def test_edit_plan_detect_and_voices(work):
    code, text = run_in_terminal(
        ["edit", "talk.wav", "-o", "edited.wav", "--replace", "park", "beach", "--plan"], work
    )
    assert_clean_run(code, text)
    assert "park" in text and "beach" in text, text[-2000:]
    assert not (work / "edited.wav").exists()  # --plan writes no audio

    code, text = run_in_terminal(["detect", "talk.wav"], work)
    assert_clean_run(code, text)
    assert "talk.wav" in text

    code, text = run_in_terminal(["voices", "--lang", "en"], work)
    assert_clean_run(code, text)
    assert "piper_joe" in text


def test_batch_clean_in_a_terminal(work):
    code, text = run_in_terminal(
        ["batch", "clean", "in", "-o", "batch-out", "--engine", "rnnoise", "--workers", "1"], work
    )
    assert_clean_run(code, text)
    assert (work / "batch-out" / "a.wav").stat().st_size > 0
    assert "1/1" in text and "batch summary" in text, text[-2000:]
    assert not (work / "batch-out" / ".voicebox-job" / "lock").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["data", "--help"],
        ["train", "--help"],
        ["train-adapter", "--help"],
        ["serve", "--help"],
        ["infill", "--help"],
    ],
    ids=lambda c: c[0],
)
def test_heavy_commands_answer_help_in_a_terminal(work, command):
    code, text = run_in_terminal(command, work)
    assert_clean_run(code, text)
    assert "Usage" in text


def test_ctrl_c_stops_a_batch_with_a_resume_hint_and_the_rerun_finishes(work, tmp_path):
    rng = np.random.default_rng(3)
    for i in range(6):
        sf.write(tmp_path / f"n{i}.wav", 0.05 * rng.standard_normal(4 * 16_000), 16_000)
    out = work / "batch-ctrl-c"
    done = out / ".voicebox-job" / "done.jsonl"
    args = ["batch", "clean", str(tmp_path), "-o", str(out), "-e", "rnnoise", "-j", "1"]
    code, text = run_in_terminal(
        args, work, ctrl_c_when=lambda: done.exists() and bool(done.read_text().strip())
    )
    assert code == 130, text[-2000:]
    assert "interrupted: rerun the same command to resume" in text
    assert "Traceback" not in text
    code, text = run_in_terminal(args, work)
    assert_clean_run(code, text)
    assert sorted(p.name for p in out.glob("*.wav")) == [f"n{i}.wav" for i in range(6)]
    assert not (out / ".voicebox-job" / "lock").exists()


def test_the_bar_draws_unknown_and_known_totals(monkeypatch):
    """Unknown totals (a pipe being read) count without a percentage; known ones show both."""
    import importlib
    import io

    from rich.console import Console

    app = importlib.import_module("voicebox.cli.app")  # the module; `voicebox.cli.app` is the app

    out = io.StringIO()
    monkeypatch.setattr(app, "err", Console(file=out, force_terminal=True, width=100))
    monkeypatch.setenv("VOICEBOX_PROGRESS", "1")
    with app.progress_bar("reading", unit="sentences") as bar:
        bar(3, 0)  # total not known yet
        drawn_unknown = ANSI.sub("", out.getvalue())
        bar(float("nan"), 10)
        bar(4, 10)
        bar(12, 10)  # overshoot is held at the total
    drawn = ANSI.sub("", out.getvalue())
    assert "3 sentences" in drawn_unknown and "%" not in drawn_unknown.split("reading")[-1]
    assert " 40% " in drawn and "4/10 sentences" in drawn and "10/10 sentences" in drawn
    assert "12/10" not in drawn
