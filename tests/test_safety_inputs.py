"""Never destroy an input, and a reference voice must be a voice (issue 16, items 1 and 5).

Every command, batch and the server's work folder refuse an output that is the same file as an
input (by inode: the same path, a symlink or a hard link) with exit code 2 and one line, before
any work, leaving the input's bytes as they were. A zero-shot reference is checked before any
heavy work: silence is refused, a long one trimmed to its best seconds from a bounded read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from helpers import synthesise
from voicebox import safety
from voicebox.audio import Audio, save
from voicebox.errors import InputError

VOICEBOX = shutil.which("voicebox") or str(Path(sys.executable).parent / "voicebox")
CONSENT = "I, Test Speaker, agree to voicebox cloning my voice for these tests."


@pytest.fixture(scope="module")
def speech() -> Audio:
    return synthesise("The gold ring was found near the old silver mine.")


@pytest.fixture
def wav(speech: Audio, tmp_path: Path) -> Path:
    path = tmp_path / "x.wav"
    save(speech, path, subtype="PCM_16")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VOICEBOX_THREADS": "1", "VOICEBOX_CACHE": str(cwd or ".") + "/cache"}
    return subprocess.run(
        [VOICEBOX, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def assert_refused(proc: subprocess.CompletedProcess, inp: Path, before: bytes) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    message = proc.stderr.strip()
    assert "\n" not in message and "same file as the input" in message, message
    assert "Traceback" not in proc.stderr
    assert inp.read_bytes() == before


def test_refuse_overwrite_by_inode(tmp_path: Path) -> None:
    a = tmp_path / "a.wav"
    a.write_bytes(b"RIFF")
    link, hard = tmp_path / "link.wav", tmp_path / "hard.wav"
    link.symlink_to(a)
    os.link(a, hard)
    for out in (a, link, hard, tmp_path / "." / "a.wav"):
        with pytest.raises(InputError, match="same file as the input"):
            safety.refuse_overwrite([out], [a])
    safety.refuse_overwrite([tmp_path / "new.wav", "-", None], [a, "-", None])  # fine
    with pytest.raises(InputError):
        safety.refuse_overwrite([a], [link])  # the input named through a symlink


def test_edit_transcribe_and_read_like_refuse_their_input(wav: Path, tmp_path: Path) -> None:
    before = wav.read_bytes()
    for args in (
        ["edit", str(wav), "--replace", "gold", "silver", "-o", str(wav)],
        ["transcribe", str(wav), "-o", str(wav)],
        ["read", "Hi.", "--engine", "voicebox", "--like", str(wav), "--consent", CONSENT]
        + ["-o", str(wav)],
        ["infill", "hello there", "--context", str(wav), "-o", str(wav)],
    ):
        assert_refused(run_cli(*args, cwd=tmp_path), wav, before)


def test_clean_and_edit_refuse_through_symlink_and_hard_link(wav: Path, tmp_path: Path) -> None:
    before = wav.read_bytes()
    link, hard = tmp_path / "link.wav", tmp_path / "hard.wav"
    link.symlink_to(wav)
    os.link(wav, hard)
    assert_refused(run_cli("clean", str(wav), "-o", str(link), cwd=tmp_path), wav, before)
    assert_refused(run_cli("clean", str(link), "-o", str(hard), cwd=tmp_path), wav, before)
    edit = ["edit", str(wav), "--replace", "gold", "silver", "-o", str(hard)]
    assert_refused(run_cli(*edit, cwd=tmp_path), wav, before)
    assert hard.read_bytes() == before and link.is_symlink()


def test_batch_refuses_an_output_that_is_an_input(wav: Path, tmp_path: Path) -> None:
    from voicebox.batch.runner import run_batch

    before = wav.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    os.link(wav, out / "x.wav")  # the output folder holds a hard link to the input
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "x.wav", "output": "x.wav"}) + "\n")
    with pytest.raises(InputError, match="same file as the input"):
        run_batch("clean", str(manifest), out, workers=1)
    proc = run_cli("batch", "clean", str(manifest), "-o", str(out), "-q", cwd=tmp_path)
    assert_refused(proc, wav, before)


def test_server_work_folder_never_writes_over_an_upload(tmp_path: Path) -> None:
    from voicebox.server.jobs import Job
    from voicebox.server.work import write_bytes

    upload = tmp_path / "edit.wav"
    upload.write_bytes(b"uploaded")
    job = Job("0" * 32, "edit", tmp_path, inputs=[upload])
    with pytest.raises(InputError, match="same file as the input"):
        write_bytes(job, b"result", "wav", "edit.wav")
    assert upload.read_bytes() == b"uploaded"
    assert write_bytes(job, b"result", "wav", "other.wav").path.read_bytes() == b"result"


# ---------------------------------------------------------------- references that are voices


def test_silence_and_noise_are_not_a_voice(tmp_path: Path) -> None:
    silent = Audio(np.zeros(22050 * 5, np.float32), 22050)
    with pytest.raises(InputError, match="digital silence"):
        safety.accept_reference(silent)
    save(silent, tmp_path / "silent.wav")
    with pytest.raises(InputError, match="digital silence"):
        safety.accept_reference(tmp_path / "silent.wav")
    hiss = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.01
    with pytest.raises(InputError, match="s of speech"):
        safety.accept_reference(Audio(hiss, 16000))
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000 * 5) / 16000).astype(np.float32)
    with pytest.raises(InputError, match="s of speech"):
        safety.accept_reference(Audio(tone, 16000))


def test_a_short_reference_is_used_as_given(speech: Audio) -> None:
    ref = safety.accept_reference(speech, "The gold ring was found near the old silver mine.")
    assert ref.audio is speech and ref.window is None and ref.speech_seconds > 1.5


def test_a_long_reference_is_trimmed_fast_with_bounded_memory(tmp_path: Path) -> None:
    voice = synthesise(
        "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    ).to_rate(44100)
    gap = np.zeros((1, 44100 * 2), np.float32)  # pauses, so the window has somewhere to choose
    unit = np.concatenate([voice.samples, gap], axis=1)
    reps = int(300 / (unit.shape[1] / 44100)) + 1
    path = tmp_path / "five-minutes.wav"
    save(Audio(np.tile(unit, (1, reps)), 44100), path, subtype="PCM_16")
    full_decode = reps * unit.shape[1] * 4  # bytes of float32 samples if decoded whole
    tracemalloc.start()
    started = time.perf_counter()
    ref = safety.accept_reference(path)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ref.source_seconds > 290 and ref.window is not None
    assert 3.0 <= ref.audio.duration <= safety.TRIM_S
    assert ref.speech_seconds >= 3.0 and ref.scanned_seconds == safety.SCAN_S
    assert peak < full_decode / 2, (peak, full_decode)
    assert seconds < 15, seconds
    with pytest.raises(InputError, match="transcript"):
        safety.accept_reference(path, "some words")  # which words fall in the window is unknown


def test_read_like_refuses_a_silent_reference_before_recording_consent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from helpers import save_tiny_checkpoint
    from voicebox import provenance
    from voicebox.cli import app
    from voicebox.model import sample
    from voicebox.model.config import load_config

    root = Path(__file__).resolve().parents[1]
    ckpt = save_tiny_checkpoint(load_config(root / "configs" / "tiny.yaml"), tmp_path / "ckpt")
    monkeypatch.setenv("VOICEBOX_CHECKPOINT", str(ckpt))
    monkeypatch.setenv("VOICEBOX_CACHE", str(tmp_path / "cache"))
    sample.load_models.cache_clear()
    silent = tmp_path / "silent.wav"
    save(Audio(np.zeros(16000 * 4, np.float32), 16000), silent)
    out = tmp_path / "out.wav"
    args = ["read", "Hello.", "--engine", "voicebox", "--like", str(silent), "-o", str(out)]
    run = CliRunner().invoke(app, [*args, "--consent", CONSENT])
    sample.load_models.cache_clear()
    assert isinstance(run.exception, InputError) and "silence" in str(run.exception)
    assert not out.exists() and provenance.ledger() == []  # no consent recorded for nothing
