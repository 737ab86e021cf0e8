"""train.py runs unchanged under torchrun with two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_model import TINY, make_corpus

pytestmark = pytest.mark.slow  # two torchrun processes


def _voicebox_script() -> str | None:
    local = Path(sys.executable).parent / "voicebox"
    return str(local) if local.exists() else shutil.which("voicebox")


@pytest.mark.parametrize("part", ["audio", "vocoder"])
def test_two_process_training_under_torchrun(tmp_path, part):
    """The audio model, and the vocoder with its discriminators (a second DDP module)."""
    script = _voicebox_script()
    if script is None:
        pytest.fail("the `voicebox` console script is not installed (pip install -e .)")
    data = make_corpus(tmp_path / "corpus", n=8)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VOICEBOX_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        script, "train", "--config", str(TINY), "--data", str(data), "--part", part,
        "--out", str(out), "--steps", "2", "--set", "train.vocoder.adversarial=true",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2]  # rank 0 alone writes the log
    assert (out / f"{part}.pt").is_file() and (out / f"{part}.state.pt").is_file()
    assert "world=2" in (out / "COMMAND.md").read_text()
