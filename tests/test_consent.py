"""Consent lives in the library (issue 16, items 2 and 3): every path that has our model speak in a
recorded person's voice refuses without the speaker's consent and, with it, writes the ledger line
and the `<output>.provenance.json` sidecar — the Python API, the CLI, the server and batch alike.
Spoken consent (a clip of the speaker reading the statement) is checked by ear and by voice.

A tiny untrained checkpoint (configs/tiny.yaml) stands in for the model: what it says is noise, but
what must hold (refusals, records, sidecars) does not depend on training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import synthesise
from voicebox import provenance
from voicebox.audio import Audio, save
from voicebox.errors import InputError
from voicebox.provenance import Consent

SENTENCE = "The birch canoe slid on the smooth planks."
STATEMENT = "I, Joe Example, agree to voicebox speaking in my voice for this test."
torch.set_num_threads(1)


@pytest.fixture
def model(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def recording() -> Audio:
    return synthesise(SENTENCE)


@pytest.fixture(scope="module")
def spoken() -> Audio:
    """The reference speaker (Piper joe) reading the statement."""
    return synthesise(STATEMENT)


@pytest.fixture
def wav(recording: Audio, tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    save(recording, path, subtype="PCM_16")
    return path


def sidecar_consent(path: Path) -> dict:
    return json.loads(provenance.sidecar_path(path).read_text())["consent"]


# ---------------------------------------------------------------- Python API


def test_python_read_like_needs_consent_and_records_it(model, recording, tmp_path):
    import voicebox

    with pytest.raises(TypeError, match="consent"):
        voicebox.read_like("Hello.", recording, SENTENCE)  # a required argument
    with pytest.raises(InputError, match="consent"):
        voicebox.read_like("Hello.", recording, SENTENCE, consent=None)
    with pytest.raises(InputError, match="too short"):
        voicebox.read_like("Hello.", recording, SENTENCE, consent=Consent("ok"))
    assert provenance.ledger() == []
    speech = voicebox.read_like("Hello.", recording, SENTENCE, nfe=2, consent=Consent(STATEMENT))
    record = speech.consent
    assert record is not None and provenance.ledger() == [record]
    assert record.reference_sha256 == provenance.fingerprint(recording)
    out = speech.save(tmp_path / "like.wav")
    assert sidecar_consent(out)["id"] == record.id
    again = voicebox.read_like("Bye.", recording, SENTENCE, nfe=2, consent=record)  # reused
    assert again.consent == record and len(provenance.ledger()) == 1
    with pytest.raises(InputError, match="another recording"):
        voicebox.read_like("Bye.", synthesise("Other words here."), consent=record)


def test_python_edit_and_infill_need_consent(model, recording):
    import voicebox
    from voicebox.tasks.clean import infill_span

    with pytest.raises(InputError, match="consent"):
        voicebox.edit(recording, replace=[("smooth", "rough")], engine="voicebox")
    with pytest.raises(TypeError, match="consent"):
        infill_span(recording, 0.5, 1.0)
    with pytest.raises(InputError, match="consent"):
        infill_span(recording, 0.5, 1.0, consent=None)
    with pytest.raises(InputError, match="consent"):
        voicebox.infill("hello there", recording, nfe=2)
    plain = voicebox.infill("hello", nfe=2, seed=1)  # no context: the model's own voice
    assert plain.frames > 0 and provenance.ledger() == []
    plan = voicebox.edit(
        recording, replace=[("smooth", "rough")], engine="voicebox", plan_only=True
    )
    assert plan.audio is None and plan.consent is None  # a plan speaks nothing


# ---------------------------------------------------------------- spoken consent


def test_spoken_consent_accepts_the_speaker_and_refuses_others(recording, spoken):
    from voicebox.tasks.read import read

    scores = provenance.verify_spoken(STATEMENT, spoken, recording)
    assert scores["wer"] <= provenance.SPOKEN_MAX_WER
    assert scores["similarity"] >= provenance.SPOKEN_MIN_SIMILARITY
    other = read(STATEMENT, voice="espeak:en").audio  # another bundled voice reads it
    with pytest.raises(InputError, match="not the reference speaker"):
        provenance.verify_spoken(STATEMENT, other, recording)
    wrong = synthesise("Rice is often served in round bowls, and the juice of lemons is sour.")
    with pytest.raises(InputError, match="does not say the consent statement"):
        provenance.verify_spoken(STATEMENT, wrong, recording)
    silent = Audio(np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(InputError, match="no speech"):
        provenance.verify_spoken(STATEMENT, silent, recording)


def test_spoken_consent_is_recorded_and_detect_shows_it(model, recording, spoken, tmp_path):
    from voicebox.cli import app
    from voicebox.tasks.read import read_like

    clip = tmp_path / "consent.wav"
    save(spoken, clip)
    consent = Consent(STATEMENT, audio=clip)
    speech = read_like("Hello there.", recording, SENTENCE, nfe=2, consent=consent)
    record = speech.consent
    assert record is not None and record.spoken is not None
    assert record.spoken["wer"] <= record.spoken["max_wer"]
    assert record.statement_source == "statement+spoken:consent.wav"
    assert provenance.ledger()[-1].spoken == record.spoken
    out = speech.save(tmp_path / "like.wav")
    assert sidecar_consent(out)["spoken"]["similarity"] == record.spoken["similarity"]
    shown = CliRunner().invoke(app, ["detect", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "spoken consent: word error rate" in shown.output and record.id in shown.output


# ---------------------------------------------------------------- CLI


def test_cli_refuses_without_consent(model, wav, tmp_path):
    from voicebox.cli import app

    runner = CliRunner()
    out = tmp_path / "out.wav"
    for args in (
        ["read", "Hello.", "--engine", "voicebox", "--like", str(wav), "-o", str(out)],
        ["edit", str(wav), "-o", str(out), "--replace", "smooth", "rough", "--engine", "voicebox"],
        ["clean", str(wav), "-o", str(out), "--infill", "0.5-1.2"],
        ["infill", "hello there", "--context", str(wav), "-o", str(out)],
    ):
        run = runner.invoke(app, args)
        assert isinstance(run.exception, InputError) and "consent" in str(run.exception), args
        assert not out.exists()
    assert provenance.ledger() == []


def test_cli_clean_infill_writes_ledger_and_sidecar(model, wav, tmp_path):
    from voicebox.cli import app

    out = tmp_path / "fixed.wav"
    args = ["clean", str(wav), "-o", str(out), "--infill", "0.8-1.5", "--text", "slid on"]
    run = CliRunner().invoke(app, [*args, "--nfe", "2", "--consent", STATEMENT])
    assert run.exit_code == 0, (run.output, run.exception)
    (record,) = provenance.ledger()
    assert sidecar_consent(out)["id"] == record.id


# ---------------------------------------------------------------- server


def test_server_edit_needs_consent_and_records_it(model, wav, tmp_path):
    from fastapi.testclient import TestClient

    from voicebox.server.app import create_app
    from voicebox.server.settings import Settings

    files = {"file": ("in.wav", wav.read_bytes(), "audio/wav")}
    fields = {"replace": json.dumps([["smooth", "rough"]]), "engine": "voicebox"}
    settings = Settings(workers=1, work_dir=str(tmp_path / "work"))
    with TestClient(create_app(settings)) as client:
        refused = client.post("/v1/audio/edit", files=files, data=fields)
        assert refused.status_code == 403, refused.text
        assert "consent" in refused.json()["error"]["message"]
        short = client.post("/v1/audio/edit", files=files, data={**fields, "consent": "ok"})
        assert short.status_code == 422 and "too short" in short.json()["error"]["message"]
        params = json.dumps({"replace": [["smooth", "rough"]], "engine": "voicebox"})
        refused = client.post("/v1/jobs", files=files, data={"task": "edit", "params": params})
        assert refused.status_code == 403, refused.text
        form = {"task": "edit", "params": json.dumps({**json.loads(params), "consent": STATEMENT})}
        job = client.post("/v1/jobs", files=files, data=form).json()
        status = job
        for _ in range(600):
            status = client.get(f"/v1/jobs/{job['id']}").json()
            if status["state"] in ("done", "failed"):
                break
            time.sleep(0.2)
        assert status["state"] == "done", status
        record = status["info"]["consent"]
        assert [r.id for r in provenance.ledger()] == [record["id"]]
        (sidecar,) = (tmp_path / "work").rglob("*.provenance.json")
        assert json.loads(sidecar.read_text())["consent"]["id"] == record["id"]
        result = client.get(f"/v1/jobs/{job['id']}/result")
        assert result.status_code == 200 and result.headers["x-voicebox-consent"] == record["id"]


# ---------------------------------------------------------------- batch


def test_batch_edit_needs_consent_and_records_it(model, wav, tmp_path):
    from voicebox.batch.runner import run_batch

    manifest = tmp_path / "edits.jsonl"
    row = {"path": wav.name, "replace": [["smooth", "rough"]], "engine": "voicebox"}
    manifest.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match="consent"):
        run_batch("edit", str(manifest), tmp_path / "out", workers=1)
    assert provenance.ledger() == []
    (tmp_path / "consent.txt").write_text(STATEMENT + "\n")
    manifest.write_text(json.dumps({**row, "consent_file": "consent.txt"}) + "\n")
    summary = run_batch("edit", str(manifest), tmp_path / "out", workers=1)
    assert summary.exit_code == 0, summary.rows
    (record,) = provenance.ledger()
    assert record.statement_source == "file:consent.txt"
    assert sidecar_consent(tmp_path / "out" / "in.wav")["id"] == record.id


# ---------------------------------------------------------------- engine auto (the default)


def test_auto_edit_uses_the_model_only_with_consent_on_every_path(model, recording, wav, tmp_path):
    """The default engine speaks in the speaker's own voice when their consent is given (our model:
    it measures better than the nearest stock voice) and in a bundled voice without it; the same
    rule in the library, the CLI, the server and batch."""
    import voicebox
    from voicebox.batch.worker import speaks_as_speaker
    from voicebox.cli import app
    from voicebox.tasks.edit import chosen_engine

    assert chosen_engine("auto", True) == "voicebox" and chosen_engine("auto", False) == "stock"
    assert (
        chosen_engine("stock", True) == "stock" and chosen_engine("voicebox", False) == "voicebox"
    )
    replace = [("smooth", "rough")]
    plain = voicebox.edit(recording, replace=replace, plan_only=True)
    assert plain.plan.steps[0].voice != "voicebox"
    cloned = voicebox.edit(recording, replace=replace, consent=Consent(STATEMENT))
    assert cloned.plan.steps[0].voice == "voicebox" and cloned.consent is not None
    assert [r.id for r in provenance.ledger()] == [cloned.consent.id]

    out = tmp_path / "cli.wav"
    args = ["edit", str(wav), "-o", str(out), "--replace", "smooth", "rough", "--json"]
    run = CliRunner().invoke(app, [*args, "--consent", STATEMENT])
    assert run.exit_code == 0, (run.output, run.exception)
    assert json.loads(run.stdout)["steps"][0]["voice"] == "voicebox"
    assert sidecar_consent(out)["id"] == provenance.ledger()[-1].id
    refused = CliRunner().invoke(app, [*args, "--engine", "stock", "--consent", STATEMENT])
    assert isinstance(refused.exception, InputError) and "--engine stock" in str(refused.exception)

    assert speaks_as_speaker("edit", {"consent": STATEMENT})
    assert not speaks_as_speaker("edit", {}) and not speaks_as_speaker("edit", {"engine": "stock"})

    from fastapi.testclient import TestClient

    from voicebox.server.app import create_app
    from voicebox.server.settings import Settings

    files = {"file": ("in.wav", wav.read_bytes(), "audio/wav")}
    fields = {"replace": json.dumps([["smooth", "rough"]]), "consent": STATEMENT}
    settings = Settings(workers=1, work_dir=str(tmp_path / "work"))
    with TestClient(create_app(settings)) as client:
        done = client.post("/v1/audio/edit", files=files, data=fields)
        assert done.status_code == 200, done.text
        assert done.headers["x-voicebox-consent"] == provenance.ledger()[-1].id
        stock = client.post("/v1/audio/edit", files=files, data={**fields, "engine": "stock"})
        assert stock.status_code == 400 and "engine auto" in stock.json()["error"]["message"]


def test_batch_auto_edit_with_a_consent_column_speaks_in_the_voice(model, wav, tmp_path):
    from voicebox.batch.runner import run_batch

    manifest = tmp_path / "edits.jsonl"
    row = {"path": wav.name, "replace": [["smooth", "rough"]], "consent": STATEMENT}
    manifest.write_text(json.dumps(row) + "\n")
    summary = run_batch("edit", str(manifest), tmp_path / "out", workers=1)
    assert summary.exit_code == 0, summary.rows
    (record,) = provenance.ledger()
    assert sidecar_consent(tmp_path / "out" / "in.wav")["id"] == record.id
