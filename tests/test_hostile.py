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


# ---------------------------------------------------------------- issue 16: cut files, disks, paths


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([exe, "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def _speechlike(seconds: float = 4.0, rate: int = 22_050) -> np.ndarray:
    """A voiced, syllable-modulated tone: not silence anywhere, so stale samples would show."""
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 700), 1))
    return (0.2 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def cut_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MP3 and FLAC files, whole and cut (to 1 KB and to half), plus a cut WAV."""
    folder = tmp_path_factory.mktemp("cut")
    wav = folder / "whole.wav"
    sf.write(wav, _speechlike(), 22_050, subtype="PCM_16")
    files = {}
    for ext in ("mp3", "flac"):
        whole = folder / f"whole.{ext}"
        _ffmpeg("-i", str(wav), str(whole))
        data = whole.read_bytes()
        (folder / f"k1.{ext}").write_bytes(data[:1024])
        (folder / f"half.{ext}").write_bytes(data[: len(data) // 2])
        files.update({f"whole.{ext}": whole, f"k1.{ext}": folder / f"k1.{ext}"})
        files[f"half.{ext}"] = folder / f"half.{ext}"
    return files


def claimed_whole(files: dict[str, Path], name: str) -> int:
    """Frames of the uncut file the cut one came from."""
    return _ffmpeg_frames(files["whole." + name.split(".")[1]])


def _ffmpeg_frames(path: Path) -> int:
    """How many samples ffmpeg decodes from a file (the reference for "what actually decodes")."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "quiet", "-i", str(path), "-f", "f32le", "-"]
    cmd[-1:-1] = ["-ac", "1"]
    return len(subprocess.run(cmd, capture_output=True).stdout) // 4


@pytest.mark.parametrize("name", ["k1.mp3", "half.mp3", "half.flac", "k1.flac", "whole.mp3"])
def test_cut_files_stream_and_load_what_decodes(cut_files: dict[str, Path], name: str) -> None:
    from voicebox.audio import load, stream
    from voicebox.errors import AudioError

    path = cut_files[name]
    try:
        whole = load(path)
    except AudioError as exc:  # fails clearly, and then streaming must fail the same way
        assert str(path) in str(exc)
        with pytest.raises(AudioError):
            _, _, _, blocks = stream(path, 1.0)
            list(blocks)
        return
    _, _, _, blocks = stream(path, 1.0)
    streamed = np.concatenate(list(blocks), axis=1)
    assert streamed.shape == whole.samples.shape
    np.testing.assert_array_equal(streamed, whole.samples)
    assert abs(whole.frames - _ffmpeg_frames(path)) <= 1152  # one MP3 frame of decoder slack
    if name.startswith(("k1", "half")):
        assert whole.frames < 0.6 * claimed_whole(cut_files, name)


def test_clean_of_cut_mp3_and_flac_is_as_long_as_what_decodes(
    cut_files: dict[str, Path], tmp_path: Path
) -> None:
    from voicebox.audio import load

    for name in ("k1.mp3", "half.mp3", "half.flac"):
        out = tmp_path / f"{name}.wav"
        proc = subprocess.run(
            [str(VOICEBOX), "clean", str(cut_files[name]), "-o", str(out), "--no-guard"],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, VOICEBOX_THREADS="1"),
        )
        assert proc.returncode == 0, proc.stderr
        for noise in ("Xing", "libmpg123", "Traceback", "LibsndfileError", "lost sync"):
            assert noise not in proc.stderr, proc.stderr
        assert sf.info(str(out)).frames == load(cut_files[name]).frames


def test_symlink_loop_unreadable_and_absurd_samples(tmp_path: Path, monkeypatch) -> None:
    from voicebox.audio import load
    from voicebox.errors import AudioError

    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    with pytest.raises(AudioError, match="symlink loop"):
        load(loop)
    proc = _run(str(loop), "-o", str(tmp_path / "o.wav"))
    _assert_clean_failure(proc)
    assert proc.returncode == 2 and "symlink loop" in proc.stderr
    huge = tmp_path / "huge.wav"
    x = _tone()
    x[100:200] = 1e30
    sf.write(huge, x, RATE, subtype="FLOAT")
    proc = _run(str(huge), "-o", str(tmp_path / "o.wav"))
    _assert_clean_failure(proc)
    assert "RuntimeWarning" not in proc.stderr and "corrupt" in proc.stderr
    plain = tmp_path / "plain.wav"
    sf.write(plain, _tone(), RATE)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: m != os.R_OK and real_access(p, m))
    with pytest.raises(AudioError, match="permission denied") as info:
        load(plain)  # (a mode-000 file; root reads anything, so the check is faked here)
    assert info.value.exit_code == 2


def test_outputs_get_umask_permissions_and_commit_together(tmp_path: Path) -> None:
    from voicebox.audio import Audio, Outputs, save
    from voicebox.errors import AudioError

    old = os.umask(0o022)
    try:
        save(Audio(_tone(), RATE), tmp_path / "a.wav")
        assert stat.S_IMODE((tmp_path / "a.wav").stat().st_mode) == 0o644
        os.umask(0o077)
        save(Audio(_tone(), RATE), tmp_path / "b.flac")
        assert stat.S_IMODE((tmp_path / "b.flac").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    with pytest.raises(RuntimeError), Outputs() as outputs:
        outputs.reserve(tmp_path / "c.wav").write_bytes(b"audio")
        raise RuntimeError("the subtitles failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.flac"]
    with pytest.raises(AudioError, match="does not exist"), Outputs() as outputs:
        outputs.reserve(tmp_path / "d.wav").write_bytes(b"audio")
        outputs.reserve(tmp_path / "missing" / "d.srt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.flac"]


def test_full_disk_is_named(tmp_path: Path) -> None:
    from voicebox.audio import atomic_path
    from voicebox.errors import AudioError

    with pytest.raises(AudioError, match=r"^no space left on /"), atomic_path(tmp_path / "o.txt"):
        with open("/dev/full", "wb") as full:  # the kernel's always-full device: ENOSPC
            full.write(b"x" * 10)
            full.flush()
    assert list(tmp_path.iterdir()) == []


def test_full_disk_through_the_cli(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tiny tmpfs needs privileges")
    try:
        src = tmp_path / "speech.wav"
        sf.write(src, _tone(8.0), RATE)
        proc = _run(str(src), "-o", str(tiny / "out.wav"), "--no-guard")
        _assert_clean_failure(proc)
        assert proc.returncode == 2
        assert f"no space left on {tiny}" in proc.stderr
        assert list(tiny.iterdir()) == []
    finally:
        subprocess.run(["umount", str(tiny)], check=False)


def test_rerun_removes_its_own_stale_temps(tmp_path: Path) -> None:
    from voicebox.audio import TEMP_TAG, Audio, _host_tag, save

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.wav{TEMP_TAG}{_host_tag()}-{dead.pid}-0badf00d.wav"
    live = tmp_path / f".out.wav{TEMP_TAG}{_host_tag()}-{os.getpid()}-0000cafe.wav"
    other = tmp_path / f".other.wav{TEMP_TAG}{_host_tag()}-{dead.pid}-12345678.wav"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    save(Audio(_tone(), RATE), tmp_path / "out.wav")
    assert not stale.exists(), "a killed run's temp file is removed by the rerun"
    assert live.exists() and other.exists(), "a live run's and other outputs' temps stay"


def test_killed_clean_leaves_a_temp_the_rerun_removes(tmp_path: Path) -> None:
    import signal
    import time

    src = tmp_path / "long.wav"
    sf.write(src, np.tile(_tone(10.0), 12), RATE)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = dict(os.environ, VOICEBOX_THREADS="1")
    cmd = [str(VOICEBOX), "clean", str(src), "-o", str(out_dir / "o.wav"), "--no-guard"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not any(out_dir.iterdir()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list(out_dir.iterdir())
    assert left and all(p.name.startswith(".o.wav") for p in left)
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=300).returncode == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["o.wav"]


def test_text_files_in_utf16_are_read() -> None:
    from voicebox.cli.read import _text_encoding

    text = "Hello there. This is text.\n"
    assert _text_encoding(text.encode("utf-16")) == "utf-16"
    assert _text_encoding(text.encode("utf-16-le")) == "utf-16-le"
    assert _text_encoding(text.encode("utf-16-be")) == "utf-16-be"
    assert _text_encoding(text.encode("utf-8")) == "utf-8-sig"
    assert _text_encoding(bytes(range(256)) * 4) is None


def test_utf16_file_and_unwritable_subtitles_through_read(tmp_path: Path) -> None:
    env = dict(os.environ, VOICEBOX_THREADS="1")
    src = tmp_path / "in.txt"
    src.write_text("Good morning.\n", encoding="utf-16")
    out = tmp_path / "o.wav"
    bad = [str(VOICEBOX), "read", "-f", str(src), "-o", str(out)]
    proc = subprocess.run(
        [*bad, "--subtitles", str(tmp_path / "no" / "o.srt")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"], "no audio left behind"
    proc = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(out)).duration > 0.3


def test_streamed_wav_uses_unknown_sizes() -> None:
    from voicebox.audio import wav_stream_header
    from voicebox.cli import read as cli_read
    from voicebox.server import streaming

    header = wav_stream_header(24_000)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", header[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", header[24:28])[0] == 24_000
    assert streaming.wav_header(24_000) == header == cli_read.wav_stream_header(24_000)


# ---------------------------------------------------------------- issue 16: server answers


def _server(tmp_path: Path, **settings: object):  # noqa: ANN202 - a TestClient
    from fastapi.testclient import TestClient

    from voicebox.server.app import create_app
    from voicebox.server.backend import Backend
    from voicebox.server.settings import Settings

    settings.setdefault("work_dir", str(tmp_path / "work"))
    return TestClient(create_app(Settings(workers=1, **settings), Backend()))


def test_server_raw_audio_body_is_415_not_413(tmp_path: Path) -> None:
    body = _wav_header(1, RATE, 2 * RATE * 4) + bytes(2 * RATE * 4)  # 4 s: over the JSON limit
    with _server(tmp_path, max_text_chars=1000) as client:
        for route in ("/v1/audio/clean", "/v1/audio/transcriptions", "/v1/jobs"):
            response = client.post(route, content=body, headers={"content-type": "audio/wav"})
            assert response.status_code == 415, (route, response.text)
            assert "multipart/form-data" in response.json()["error"]["message"]


def test_server_oversized_chunked_json_is_413(tmp_path: Path) -> None:
    def chunks():  # no content-length: the server must count what streams in
        yield b'{"model": "tts-1", "voice": "alloy", "input": "'
        for _ in range(64):
            yield b"a" * 65536
        yield b'"}'

    with _server(tmp_path, max_text_chars=1000) as client:
        response = client.post(
            "/v1/audio/speech", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413, response.text
    assert "over" in response.json()["error"]["message"]


def test_server_job_without_its_recording_is_refused_before_accepting(tmp_path: Path) -> None:
    with _server(tmp_path) as client:
        for task in ("clean", "transcribe", "edit"):
            params = {"replace": [["a", "b"]]} if task == "edit" else {}
            response = client.post("/v1/jobs", json={"task": task, "params": params})
            assert response.status_code == 400, (task, response.text)
            assert "'file'" in response.json()["error"]["message"]
        broken = {"file": ("x.wav", b"RIFF....WAVEnot really audio", "audio/wav")}
        response = client.post("/v1/jobs", data={"task": "clean"}, files=broken)
        assert response.status_code == 400, response.text
        assert client.get("/v1/jobs").json()["data"] == []
