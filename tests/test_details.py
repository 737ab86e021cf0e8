"""The small things a user notices (issue 12, item 9): a short clone reference warns, batch speaks the
same flags as the commands, an interrupted batch says how to resume and its rerun tidies up, formats
clean cannot write say what they became, `transcribe -` reads a pipe, and /v1/models lists models.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from voicebox.audio import Audio, save
from voicebox.errors import VoiceboxWarning

CLI = [sys.executable, "-c", "from voicebox.cli import main; main()"]
ENV = {**os.environ, "VOICEBOX_THREADS": "1", "OMP_NUM_THREADS": "1"}


def voicebox(*args: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 300)
    kwargs.setdefault("env", ENV)
    return subprocess.run(CLI + list(args), capture_output=True, text=True, **kwargs)


def noise_files(folder: Path, n: int, seconds: float = 3.0, rate: int = 16_000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(folder / f"f{i}.wav", 0.05 * rng.standard_normal(int(seconds * rate)), rate)


# ---------------------------------------------------------------- a short clone reference


def test_a_reference_under_3_s_warns_and_a_longer_one_does_not(speech_fixture: Audio):
    from voicebox.safety import accept_reference

    rate = speech_fixture.rate
    short = Audio(speech_fixture.samples[:, : int(2.5 * rate)], rate)
    enough = Audio(speech_fixture.samples[:, : int(5 * rate)], rate)
    with pytest.warns(VoiceboxWarning, match=r"only 2\.5 s long.*3-10 s"):
        accepted = accept_reference(short)
    assert accepted.audio.duration == pytest.approx(2.5, abs=0.01)  # used, not refused
    with warnings.catch_warnings():
        warnings.simplefilter("error", VoiceboxWarning)
        accept_reference(enough)


def test_the_cli_prints_a_voicebox_warning_once_as_one_line(monkeypatch):
    import voicebox.cli as cli

    out = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=out, width=200))
    monkeypatch.setattr(cli, "_shown", set())
    for _ in range(2):  # the command and the task both check the same reference
        cli._show_warning(VoiceboxWarning("the reference voice is short"), VoiceboxWarning, "x", 1)
    assert out.getvalue() == "warning: the reference voice is short\n"


# ---------------------------------------------------------------- one vocabulary


def test_batch_clean_speaks_the_clean_commands_flags(tmp_path):
    shown = voicebox("batch", "clean", "--help", env={**ENV, "COLUMNS": "200"})
    assert shown.returncode == 0
    assert "--engine" in shown.stdout and "in dB" in shown.stdout
    assert "--denoiser" not in shown.stdout and "0-100" not in shown.stdout
    assert "--runner" in shown.stdout

    noise_files(tmp_path / "in", 1)
    old = voicebox("batch", "clean", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-d", "gate")
    assert old.returncode == 0, old.stderr
    assert "--denoiser gate is now --engine gate" in old.stderr
    done = [json.loads(line) for line in (tmp_path / "o" / "report.jsonl").read_text().splitlines()]
    assert [r["status"] for r in done] == ["ok"]

    bad = voicebox("batch", "clean", str(tmp_path / "in"), "-o", str(tmp_path / "p"), "-e", "x")
    assert bad.returncode == 2 and "unknown denoise engine 'x'" in bad.stderr
    bad = voicebox(
        "batch", "clean", str(tmp_path / "in"), "-o", str(tmp_path / "p"), "--strength", "-3"
    )
    assert bad.returncode == 2 and "in dB" in bad.stderr
    assert not (tmp_path / "p").exists()  # refused before any work


# ---------------------------------------------------------------- interrupted, then resumed


def test_an_interrupted_batch_says_how_to_resume_and_its_rerun_tidies_up(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    noise_files(src, 8, seconds=4.0)
    args = [str(src), "-o", str(out), "--engine", "rnnoise", "--workers", "1"]
    proc = subprocess.Popen(
        CLI + ["batch", "clean", *args], stderr=subprocess.PIPE, text=True, env=ENV
    )
    done = out / ".voicebox-job" / "done.jsonl"
    deadline = time.monotonic() + 120
    while not (done.exists() and done.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, "no item finished"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    finished = len(done.read_text().splitlines())
    assert 1 <= finished < 8

    # What a run killed outright (kill -9) leaves behind: its lock and half-written files.
    (out / ".voicebox-job" / "lock").write_text("pid 999999")
    stale = [
        out / ".f7.wav.k2j4h5g6.wav",  # tempfile.mkstemp's naming
        out / ".f6.wav.vbtmp-abcd-999999-deadbeef.wav",  # audio.temp_file's naming
        out / ".voicebox-job" / ".done.jsonl.999999.tmp",
    ]
    for path in stale:
        path.write_bytes(b"partial")
    again = voicebox("batch", "clean", *args)
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in rows) == ["ok"] * (8 - finished) + ["skipped"] * finished
    assert "removed 3 temporary file(s)" in again.stderr
    assert not any(path.exists() for path in stale)
    assert not (out / ".voicebox-job" / "lock").exists()
    assert sorted(p.name for p in out.glob("*.wav")) == [f"f{i}.wav" for i in range(8)]


# ---------------------------------------------------------------- formats clean cannot write


def test_formats_clean_cannot_write_are_refused_or_announced(tmp_path):
    rng = np.random.default_rng(1)
    audio = Audio((0.05 * rng.standard_normal(32_000)).astype(np.float32), 16_000)
    (tmp_path / "in").mkdir()
    save(audio, tmp_path / "in" / "talk.m4a")
    save(audio, tmp_path / "in" / "memo.opus")

    named = voicebox("clean", str(tmp_path / "in" / "talk.m4a"), "-o", str(tmp_path / "x.m4a"))
    assert named.returncode == 2, named.stderr
    assert "clean cannot write m4a" in named.stderr and "x.wav" in named.stderr
    assert not (tmp_path / "x.m4a").exists()

    folder = voicebox("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-e", "rnnoise")
    assert folder.returncode == 0, folder.stderr
    assert f"clean cannot write m4a; wrote WAV to {tmp_path / 'out' / 'in' / 'talk.wav'}" in (
        folder.stderr.replace("\n", "")
    )
    assert "clean cannot write opus" in folder.stderr
    assert (tmp_path / "out" / "in" / "memo.wav").exists()

    batch = voicebox(
        "batch", "clean", str(tmp_path / "in"), "-o", str(tmp_path / "b"), "-e", "gate"
    )
    assert batch.returncode == 0, batch.stderr
    flat = " ".join(batch.stderr.split())
    assert "clean cannot write m4a; wrote 1 file(s) as WAV (talk.wav)" in flat
    assert "clean cannot write opus; wrote 1 file(s) as WAV (memo.wav)" in flat


# ---------------------------------------------------------------- transcribe reads a pipe


def test_transcribe_dash_reads_standard_input(tmp_path, speech_fixture: Audio):
    save(speech_fixture, tmp_path / "talk.flac")
    with open(tmp_path / "talk.flac", "rb") as f:
        piped = voicebox("transcribe", "-", stdin=f)
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.split()) >= 10, piped.stdout
    empty = voicebox("transcribe", "-", stdin=subprocess.DEVNULL)
    assert empty.returncode == 2 and "standard input is empty" in empty.stderr
    junk = voicebox("transcribe", "-", input="not audio\n" * 100)
    assert junk.returncode == 2, junk.stderr
    assert "standard input: not a readable audio file" in junk.stderr
    assert "voicebox-stdin" not in junk.stderr  # never the private spool's path


# ---------------------------------------------------------------- /v1/models


def test_models_lists_the_speech_and_transcription_ids(tmp_path):
    from fastapi.testclient import TestClient

    from voicebox.server.app import create_app
    from voicebox.server.settings import Settings

    with TestClient(create_app(Settings(work_dir=str(tmp_path / "work")))) as client:
        listed = client.get("/v1/models")
        assert listed.status_code == 200
        body = listed.json()
        assert body["object"] == "list"
        ids = [m["id"] for m in body["data"]]
        assert {"tts-1", "whisper-1", "voicebox"} <= set(ids)
        for card in body["data"]:
            assert card["object"] == "model" and card["owned_by"] == "voicebox"
            assert isinstance(card["created"], int)
        assert client.get("/v1/models/whisper-1").json()["id"] == "whisper-1"
        missing = client.get("/v1/models/gpt-7")
        assert missing.status_code == 404 and "GET /v1/models" in missing.json()["error"]["message"]
