"""Hostile inputs through the real CLI: one clear line, non-zero exit, nothing left behind, input intact."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

VOICEBOX = Path(sys.executable).parent / "voicebox"
RATE = 16_000


def _wav_header(channels: int, rate: int, data_bytes: int, bits: int = 16) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def truncated(folder: Path) -> Path:
    path = folder / "truncated.wav"
    sf.write(path, _tone(), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def empty(folder: Path) -> Path:
    path = folder / "empty.wav"
    path.write_bytes(b"")
    return path


def text(folder: Path) -> Path:
    path = folder / "notes.wav"
    path.write_text("this is not audio, just some words in a file\n" * 20)
    return path


def nan(folder: Path) -> Path:
    path = folder / "nan.wav"
    x = _tone()
    x[RATE // 2 : RATE // 2 + 100] = np.nan
    sf.write(path, x, RATE, subtype="FLOAT")
    return path


def zero_channels(folder: Path) -> Path:
    path = folder / "zero_channels.wav"
    path.write_bytes(_wav_header(0, RATE, 3200) + bytes(3200))
    return path


def megahertz(folder: Path) -> Path:
    path = folder / "megahertz.wav"
    path.write_bytes(_wav_header(1, 1_000_000, 32000) + _tone(1.0)[:16000].astype("<i2").tobytes())
    return path


def directory(folder: Path) -> Path:
    path = folder / "a_folder"
    path.mkdir()
    (path / "readme.txt").write_text("no audio here")
    return path


CASES = {
    "truncated": truncated,
    "empty": empty,
    "text": text,
    "nan": nan,
    "zero_channels": zero_channels,
    "megahertz": megahertz,
    "directory": directory,
}


def _digest(path: Path) -> str:
    if path.is_dir():
        return ",".join(sorted(p.name + _digest(p) for p in path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VOICEBOX_THREADS="1", COLUMNS="200")
    return subprocess.run(
        [str(VOICEBOX), "clean", *args], capture_output=True, text=True, timeout=120, env=env
    )


def _assert_clean_failure(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("error:"), lines[0]
    assert len(lines[0]) > len("error: ") + 10
    assert proc.stdout == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input(tmp_path: Path, case: str) -> None:
    src_dir = tmp_path / "in"
    out_dir = tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    src = CASES[case](src_dir)
    before = _digest(src)
    proc = _run(str(src), "-o", str(out_dir / "cleaned.wav"))
    _assert_clean_failure(proc)
    assert list(out_dir.iterdir()) == [], "no output or temporary file may be left"
    assert _digest(src) == before, "input must not change"
    assert sorted(p.name for p in src_dir.iterdir()) == [src.name]


def test_unwritable_output_folder(tmp_path: Path) -> None:
    src = tmp_path / "speech.wav"
    sf.write(src, _tone(), RATE)
    before = _digest(src)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    # root ignores permission bits; /proc refuses new files from everyone
    target = Path("/proc") if os.geteuid() == 0 else locked
    try:
        proc = _run(str(src), "-o", str(target / "voicebox_out.wav"))
        _assert_clean_failure(proc)
        assert "not writable" in proc.stderr
        assert not (target / "voicebox_out.wav").exists()
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(stat.S_IRWXU)
    assert _digest(src) == before


def test_missing_output_folder(tmp_path: Path) -> None:
    src = tmp_path / "speech.wav"
    sf.write(src, _tone(), RATE)
    proc = _run(str(src), "-o", str(tmp_path / "nowhere" / "out.wav"))
    _assert_clean_failure(proc)
    assert not (tmp_path / "nowhere").exists()


def test_refuses_to_overwrite_input(tmp_path: Path) -> None:
    src = tmp_path / "speech.wav"
    sf.write(src, _tone(), RATE)
    before = _digest(src)
    proc = _run(str(src), "-o", str(src))
    _assert_clean_failure(proc)
    assert "overwrite" in proc.stderr
    folder_proc = _run(str(src), str(src), "-o", str(tmp_path))
    _assert_clean_failure(folder_proc)
    assert _digest(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]


def test_unknown_engine_and_bad_strength(tmp_path: Path) -> None:
    src = tmp_path / "speech.wav"
    sf.write(src, _tone(), RATE)
    _assert_clean_failure(_run(str(src), "-o", str(tmp_path / "o.wav"), "--engine", "magic"))
    _assert_clean_failure(_run(str(src), "-o", str(tmp_path / "o.wav"), "--strength", "-3"))
    _assert_clean_failure(_run(str(src), "-o", str(tmp_path / "o.wav"), "--loudness", "12"))
    _assert_clean_failure(_run(str(src), "-o", str(tmp_path / "o.xyz")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]
