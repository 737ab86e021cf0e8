"""Batch jobs: planning, resume state, failures, kills mid-item, manifest options (local pool)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebox.audio import load, loudness
from voicebox.batch.jobs import JOB_DIR, Job, fingerprint
from voicebox.batch.manifest import Item, plan
from voicebox.batch.runner import run_batch
from voicebox.errors import InputError

RATE = 16_000
TEMP = re.compile(r"^\..+\.([a-z0-9_]{8}|vbtmp-[0-9a-f]{4}-\d+-[0-9a-f]{8})\.wav$")


def tone(path: Path, seconds: float = 1.0, freq: float = 220.0, seed: int = 0) -> Path:
    """A tone in light noise: something a denoiser changes but keeps the length of."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.03 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), RATE)
    return path


def report(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    return {r["output"]: r for r in rows}


def temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if TEMP.match(p.name)]


def assert_complete(src: Path, dst: Path) -> None:
    """The output is a whole, readable file as long as its input (clean keeps the length)."""
    assert load(dst).frames == sf.info(str(src)).frames, dst


# ---------------------------------------------------------------- planning


def test_plan_mirrors_tree_and_never_collides(tmp_path):
    src = tmp_path / "in"
    for rel in ("a.wav", "a.flac", "A.WAV", "sub/b.wav", ".hidden.wav", "notes.txt"):
        tone(src / rel) if rel.endswith((".wav", ".flac", ".WAV")) else (src / rel).write_text("x")
    out = src / "out"  # an output folder inside the input is never scanned as input
    tone(out / "old.wav")
    items = plan("transcribe", str(src), out)
    outputs = [i.output for i in items]
    assert len(outputs) == len({o.casefold() for o in outputs}) == 4
    # a.wav, a.flac and A.WAV all want a.json: each keeps its suffix, and case never collides
    assert set(outputs) == {"A.WAV.json", "a.flac.json", "a.wav-2.json", "sub/b.json"}
    cleaned = {Path(i.source).name: i.output for i in plan("clean", str(src), out)}
    assert cleaned["a.flac"] == "a.flac" and cleaned["b.wav"] == "sub/b.wav"
    globbed = plan("clean", str(src / "**" / "b.wav"), out)
    assert [i.output for i in globbed] == ["b.wav"]


def test_plan_reads_manifests_with_options(tmp_path):
    tone(tmp_path / "x.wav")
    csv = tmp_path / "m.csv"
    csv.write_text("path,output,replace,delete,occurrence\nx.wav,one,cat=>dog;red=>blue,um;uh,2\n")
    (item,) = plan("edit", str(csv), tmp_path / "out")
    assert item.output == "one.wav" and item.source == str(tmp_path / "x.wav")
    assert item.options == {
        "replace": [["cat", "dog"], ["red", "blue"]],
        "delete": ["um", "uh"],
        "occurrence": 2,
    }
    jsonl = tmp_path / "m.jsonl"
    rows = [{"text": "Hello there.", "voice": "joe", "speed": 1.2}, {"text": "Bye.", "id": "b"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b = plan("read", str(jsonl), tmp_path / "out", {"lang": "en"})
    assert a.options == {"text": "Hello there.", "voice": "joe", "speed": 1.2, "lang": "en"}
    assert a.output == "item-00001.wav" and b.output == "b.wav"
    csv.write_text("path,colour\nx.wav,red\n")
    with pytest.raises(InputError, match="unknown option 'colour'"):
        plan("clean", str(csv), tmp_path / "out")
    csv.write_text("path,output\nx.wav,same\nx.wav,same\n")
    with pytest.raises(InputError, match="same output"):
        plan("clean", str(csv), tmp_path / "out")
    csv.write_text("path,output\nx.wav,../escape\n")
    with pytest.raises(InputError, match="inside the output folder"):
        plan("clean", str(csv), tmp_path / "out")


def test_plan_extracts_archives_safely(tmp_path):
    tone(tmp_path / "x.wav")
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(tmp_path / "x.wav", "talks/x.wav")
        zf.write(tmp_path / "x.wav", "../evil.wav")
        zf.writestr("readme.md", "not audio")
    staging = tmp_path / "stage"
    (item,) = plan("clean", str(archive), tmp_path / "out", staging=staging)
    assert item.output == "talks/x.wav"
    assert Path(item.source).read_bytes() == (tmp_path / "x.wav").read_bytes()
    assert not (tmp_path / "evil.wav").exists()
    staged = Path(item.source).stat().st_mtime_ns
    (again,) = plan("clean", str(archive), tmp_path / "out", staging=staging)
    assert Path(again.source).stat().st_mtime_ns == staged  # reused, so a rerun can skip it


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        plan("clean", str(tmp_path / "missing"), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        plan("clean", str(tmp_path / "empty"), tmp_path / "out")
    tone(tmp_path / "in" / "a.wav")
    with pytest.raises(InputError, match="another folder"):
        run_batch("clean", str(tmp_path / "in"), tmp_path / "in")
    tone(tmp_path / "in" / "in" / "a.wav")  # mirrored into tmp_path, it would land on in/a.wav
    assert len(plan("clean", str(tmp_path / "in"), tmp_path)) == 2  # an output folder above is fine
    with pytest.raises(InputError, match="overwrite an input"):
        run_batch("clean", str(tmp_path / "in"), tmp_path)
    with pytest.raises(InputError, match="local or ray"):
        run_batch("clean", str(tmp_path / "in"), tmp_path / "out", engine="spark")


# ---------------------------------------------------------------- job state


def test_job_state_decides_what_is_done(tmp_path):
    src = tone(tmp_path / "a.wav")
    out = tmp_path / "out"
    item = Item("a.wav", str(src), {"engine": "gate"})
    with Job(out, "clean") as job:
        assert not job.is_done(item)
        (out / "a.wav").write_bytes(b"result")
        job.record(item, {"input": fingerprint(src)})
        assert job.is_done(item)
        assert not job.is_done(Item("a.wav", str(src), {"engine": "rnnoise"}))  # options changed
        with pytest.raises(InputError, match="another batch"):
            Job(out, "clean").open()  # the lock is held
    with pytest.raises(InputError, match="batch clean job"):
        Job(out, "transcribe").open()
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes: still done
    with open(out / JOB_DIR / "done.jsonl", "a") as f:
        f.write('{"key": "torn')  # a line cut by kill -9 is ignored
    with Job(out, "clean") as job:
        assert job.is_done(item)
        tone(src, seed=5)  # new content: redo
        assert not job.is_done(item)
        (out / ".a.wav.abcd1234.wav").write_bytes(b"half")
        (out / ".other.wav.abcd1234.wav").write_bytes(b"not ours")
        assert job.sweep_temporaries([item]) == 1
        assert (out / ".other.wav.abcd1234.wav").exists()


# ---------------------------------------------------------------- running


def test_corrupt_file_is_reported_and_the_rest_succeed(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    good = [tone(src / "a.wav"), tone(src / "deep" / "b.wav", freq=330)]
    (src / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    (src / "empty.flac").write_bytes(b"")
    summary = run_batch("clean", str(src), out, {"engine": "rnnoise"}, workers=2)
    rows = report(out)
    assert summary.exit_code == 1 and summary.status.done == 2 and summary.status.failed == 2
    assert rows["broken.wav"]["status"] == "failed" and "WAV" in rows["broken.wav"]["reason"]
    assert "empty" in rows["empty.flac"]["reason"] and "\n" not in rows["empty.flac"]["reason"]
    for path in good:
        assert_complete(path, out / path.relative_to(src))
    again = run_batch("clean", str(src), out, {"engine": "rnnoise"}, workers=1)
    assert (again.status.skipped, again.status.done, again.status.failed) == (2, 0, 2)
    assert again.exit_code == 1
    again.status.skipped = 0  # had nothing succeeded, the exit code would say so
    assert again.exit_code == 2


def test_manifest_options_are_honoured(tmp_path):
    x = tone(tmp_path / "voice.wav", seconds=2.0)
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "path,output,loudness,format\nvoice.wav,quiet,-32,\nvoice.wav,loud,-18,flac\n"
    )
    out = tmp_path / "out"
    summary = run_batch("clean", str(manifest), out, {"engine": "rnnoise"}, workers=1)
    assert summary.exit_code == 0
    quiet, loud = load(out / "quiet.wav"), load(out / "loud.flac")
    assert abs(loudness(quiet) + 32) < 1.0 and abs(loudness(loud) + 18) < 1.0
    assert quiet.frames == loud.frames == sf.info(str(x)).frames
    # Changing one row's options redoes only that row.
    manifest.write_text(
        "path,output,loudness,format\nvoice.wav,quiet,-26,\nvoice.wav,loud,-18,flac\n"
    )
    summary = run_batch("clean", str(manifest), out, {"engine": "rnnoise"}, workers=1)
    assert (summary.status.done, summary.status.skipped) == (1, 1)
    assert abs(loudness(load(out / "quiet.wav")) + 26) < 1.0


def _cli(*args: str) -> subprocess.Popen:
    code = "from voicebox.cli import main; main()"
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
    env.pop("VOICEBOX_PROGRESS", None)
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _workers(pid: int) -> list[int]:
    pids = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.append(child)
        except OSError:
            pass
    return pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _wait(condition, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _records(out: Path) -> int:
    path = out / JOB_DIR / "done.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigkill_of_the_batch_mid_item_then_resume(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    lengths = [1.0, 12.0, 1.0, 1.0, 1.0]  # the long second item is where the kill lands
    inputs = [
        tone(src / f"f{i}.wav", seconds=s, freq=200 + 40 * i, seed=i) for i, s in enumerate(lengths)
    ]
    proc = _cli("batch", "clean", str(src), "-o", str(out), "-d", "rnnoise", "-j", "1", "-q")
    _wait(lambda: _records(out) >= 1 or proc.poll() is not None, "a first finished item")
    _wait(lambda: temporaries(out) or proc.poll() is not None, "an item in progress", 30)
    assert proc.poll() is None, "the batch finished before it could be killed"
    workers = _workers(proc.pid)
    assert workers
    os.kill(proc.pid, signal.SIGKILL)  # only the batch process: its workers must die with it
    proc.wait(10)
    _wait(lambda: not any(_alive(w) for w in workers), "workers to die with the batch", 20)
    finished = _records(out)
    assert 1 <= finished < len(inputs)
    for path in inputs:  # whatever is in place is whole; the half-written item is only a temp file
        if (out / path.name).exists():
            assert_complete(path, out / path.name)
    summary = run_batch("clean", str(src), out, {"engine": "rnnoise"}, workers=1)
    assert summary.exit_code == 0
    assert (summary.status.skipped, summary.status.done) == (finished, len(inputs) - finished)
    for path in inputs:
        assert_complete(path, out / path.name)
    assert not temporaries(out)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_killed_worker_fails_one_item_and_the_batch_goes_on(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    inputs = [tone(src / f"f{i}.wav", seconds=3.0, freq=200 + 40 * i, seed=i) for i in range(4)]
    proc = _cli("batch", "clean", str(src), "-o", str(out), "-d", "rnnoise", "-j", "2")
    _wait(lambda: temporaries(out) or proc.poll() is not None, "an item in progress")
    victims = _workers(proc.pid)
    assert victims and proc.poll() is None
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    rows = report(out)
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert proc.returncode == 1, stderr
    assert len(failed) == 1 and "SIGKILL" in failed[0]["reason"]
    assert "failed items" in stderr and "exit code 1" in stderr
    assert sum(r["status"] == "ok" for r in rows.values()) == len(inputs) - 1
    assert not temporaries(out), "the killed worker's temporary file is swept at the end"
    summary = run_batch("clean", str(src), out, {"engine": "rnnoise"}, workers=1)
    assert (summary.exit_code, summary.status.done) == (0, 1)
    for path in inputs:
        assert_complete(path, out / path.name)


def test_read_and_transcribe_manifests_honour_per_item_options(tmp_path):
    manifest = tmp_path / "lines.jsonl"
    rows = [
        {"id": "joe", "text": "The quick brown fox.", "voice": "piper_joe"},
        {"id": "kumo", "text": "The quick brown fox.", "voice": "jm_kumo"},
        {"id": "kumo_fast", "text": "The quick brown fox.", "voice": "jm_kumo", "speed": 1.5},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    summary = run_batch("read", str(manifest), out, workers=1)
    assert summary.exit_code == 0, summary.failures
    joe, kumo, fast = (load(out / f"{r['id']}.wav") for r in rows)
    assert (out / "joe.wav").read_bytes() != (out / "kumo.wav").read_bytes()
    assert fast.duration < 0.85 * kumo.duration
    assert min(joe.duration, kumo.duration) > 0.5
    # The readings, transcribed as a batch into subtitles (the format option reaches the task).
    text = tmp_path / "text"
    summary = run_batch("transcribe", str(out), text, {"format": "srt"}, workers=1)
    assert summary.exit_code == 0, summary.failures
    assert sorted(p.name for p in text.glob("*.srt")) == ["joe.srt", "kumo.srt", "kumo_fast.srt"]
    assert "00:00:00," in (text / "joe.srt").read_text()
    assert "fox" in (text / "joe.srt").read_text().lower()


def test_ray_missing_is_a_clear_error(monkeypatch, tmp_path):
    from voicebox.batch.ray_engine import run_ray
    from voicebox.errors import EngineError

    monkeypatch.setitem(sys.modules, "ray", None)
    item = Item("a.wav", str(tone(tmp_path / "a.wav")), {}).to_dict()
    with pytest.raises(EngineError, match=r"pip install 'voicebox\[ray\]'"):
        run_ray("clean", [item], str(tmp_path / "out"), 1, lambda item, result: None)
