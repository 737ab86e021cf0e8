"""The Ray path: the same batch through Ray Data gives byte-identical outputs to the local pool."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from voicebox.batch.runner import run_batch

ray = pytest.importorskip("ray")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
]


def test_ray_outputs_match_the_local_pool_byte_for_byte(tmp_path):
    src = tmp_path / "in"
    rng = np.random.default_rng(0)
    for i, rel in enumerate(("a.wav", "b.flac", "deep/c.wav")):
        t = np.arange(16_000 * 2) / 16_000
        x = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.03 * rng.standard_normal(t.size)
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(src / rel, x.astype(np.float32), 16_000)
    (src / "deep" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    options = {"engine": "rnnoise"}
    local = run_batch("clean", str(src), tmp_path / "local", options, workers=1)
    assert not ray.is_initialized()
    rayed = run_batch("clean", str(src), tmp_path / "ray", options, workers=2, engine="ray")
    assert not ray.is_initialized(), "a Ray instance the batch started must be shut down"
    assert local.exit_code == rayed.exit_code == 1
    for rel in ("a.wav", "b.flac", "deep/c.wav"):
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()

    def statuses(folder):
        rows = (folder / "report.jsonl").read_text().splitlines()
        return {r["output"]: (r["status"], r["reason"]) for r in map(json.loads, rows)}

    assert statuses(tmp_path / "ray") == statuses(tmp_path / "local")
    assert statuses(tmp_path / "ray")["deep/broken.wav"][0] == "failed"
