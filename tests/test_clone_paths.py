"""Zero-shot reading ("clone") on every front end that lacked it (issue 16 item 2: a test for each
path): the server's POST /v1/audio/clone (and task clone on /v1/jobs) and `voicebox batch
read-like` refuse without the speaker's consent, before any work and without a ledger line, and
with it read in the reference's voice, write one ledger record per reading and put it beside the
output (`<output>.provenance.json`), in the job's info and in the X-Voicebox-Consent header.

A tiny untrained checkpoint (configs/tiny.yaml) stands in for the model at 2 steps, and the
reference's transcript is given, so no test waits for training or for whisper.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from helpers import synthesise
from voicebox import provenance
from voicebox.audio import Audio, save
from voicebox.errors import InputError

SENTENCE = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
STATEMENT = "I, Joe Example, agree to voicebox speaking in my voice for this test."
torch.set_num_threads(1)


@pytest.fixture
def model(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def recording() -> Audio:
    return synthesise(SENTENCE)


@pytest.fixture
def wav(recording: Audio, tmp_path: Path) -> Path:
    path = tmp_path / "ref.wav"
    save(recording, path, subtype="PCM_16")
    return path


def sidecar_consent(path: Path) -> dict:
    return json.loads(provenance.sidecar_path(path).read_text())["consent"]


# ---------------------------------------------------------------- server


@pytest.fixture
def client(model: Path, tmp_path: Path):
    from voicebox.server.app import create_app
    from voicebox.server.settings import Settings

    settings = Settings(workers=1, work_dir=str(tmp_path / "work"))
    with TestClient(create_app(settings)) as c:
        yield c


def message(response) -> str:
    return response.json()["error"]["message"]


def test_server_clone_refuses_before_any_work(client, wav, tmp_path):
    ref = {"reference": ("ref.wav", wav.read_bytes(), "audio/wav")}
    fields = {"input": "Hello there.", "reference_text": SENTENCE, "nfe": "2"}
    refused = client.post("/v1/audio/clone", files=ref, data=fields)
    assert refused.status_code == 403, refused.text
    assert "consent" in message(refused) and "reference" in message(refused)
    short = client.post("/v1/audio/clone", files=ref, data={**fields, "consent": "ok"})
    assert short.status_code == 422 and "too short" in message(short)
    empty_clip = {**ref, "consent_audio": ("said.wav", b"", "audio/wav")}
    empty = client.post("/v1/audio/clone", files=empty_clip, data={**fields, "consent": STATEMENT})
    assert empty.status_code == 422 and "said.wav" in message(empty)
    agreed = {**fields, "consent": STATEMENT}
    missing = client.post("/v1/audio/clone", files={"x": ("a.txt", b"x")}, data=agreed)
    assert missing.status_code == 400 and "'reference'" in message(missing)
    german = client.post("/v1/audio/clone", files=ref, data={**agreed, "language": "de"})
    assert german.status_code == 400 and "/v1/audio/speech" in message(german), german.text
    assert "--" not in message(german)  # the server's words, not the CLI's
    both = client.post(
        "/v1/audio/clone", files=ref, data={**agreed, "lang": "ja", "language": "en"}
    )
    assert both.status_code == 400 and "give one" in message(both)
    bad = client.post("/v1/audio/clone", files=ref, data={**agreed, "nfe": "0"})
    assert bad.status_code == 400 and "nfe" in message(bad)
    silent = tmp_path / "quiet.wav"
    sf.write(silent, np.zeros(16000 * 4, np.float32), 16000)
    hush = {"reference": ("quiet.wav", silent.read_bytes(), "audio/wav")}
    quiet = client.post("/v1/audio/clone", files=hush, data=agreed)
    assert quiet.status_code == 400 and "quiet.wav: is digital silence" in message(quiet)
    assert provenance.ledger() == []  # nothing recorded for refused work
    assert not list((tmp_path / "work").rglob("*.provenance.json"))


def test_server_clone_reads_and_records_consent(client, wav, tmp_path):
    ref = {"reference": ("ref.wav", wav.read_bytes(), "audio/wav")}
    fields = {"input": "Hello there.", "reference_text": SENTENCE, "nfe": "2", "seed": "3"}
    fields |= {"consent": STATEMENT, "response_format": "wav"}
    answer = client.post("/v1/audio/clone", files=ref, data=fields)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/wav"
    (record,) = provenance.ledger()
    assert answer.headers["x-voicebox-consent"] == record.id
    assert record.statement_source == "statement"
    assert record.reference_sha256 == provenance.fingerprint(sf_audio(wav))
    samples, rate = sf.read(_bytes_file(tmp_path, answer.content), dtype="float32")
    assert rate > 0 and samples.size > 0 and np.abs(samples).max() > 0  # untrained: short

    params = {k: v for k, v in fields.items() if k != "consent"}
    form = {"task": "clone", "params": json.dumps(params)}
    refused = client.post("/v1/jobs", files=ref, data=form)
    assert refused.status_code == 403, refused.text
    form = {"task": "clone", "params": json.dumps({**params, "consent": STATEMENT})}
    job = client.post("/v1/jobs", files=ref, data=form)
    assert job.status_code == 202, job.text
    status = wait_for(client, job.json()["id"])
    assert status["state"] == "done", status
    recorded = status["info"]["consent"]
    assert [r.id for r in provenance.ledger()] == [record.id, recorded["id"]]
    (sidecar,) = (tmp_path / "work").rglob("*.provenance.json")
    assert json.loads(sidecar.read_text())["consent"]["id"] == recorded["id"]
    result = client.get(f"/v1/jobs/{job.json()['id']}/result")
    assert result.status_code == 200 and result.headers["x-voicebox-consent"] == recorded["id"]


def test_clone_route_is_documented(client):
    body = client.get("/openapi.json").json()["paths"]["/v1/audio/clone"]["post"]
    schema = body["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"input", "reference"} <= set(schema["required"])
    for name in ("consent", "consent_audio", "reference_text", "lang", "seed", "response_format"):
        assert name in schema["properties"], name


def sf_audio(path: Path) -> Audio:
    x, rate = sf.read(path, dtype="float32")
    return Audio(x, rate)


def _bytes_file(folder: Path, data: bytes) -> Path:
    path = folder / "answer.wav"
    path.write_bytes(data)
    return path


def wait_for(client, job_id: str) -> dict:
    status: dict = {}
    for _ in range(600):
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.1)
    return status


# ---------------------------------------------------------------- batch


def test_batch_read_like_needs_consent_and_records_it(model, wav, tmp_path):
    from voicebox.batch.runner import run_batch

    manifest = tmp_path / "lines.jsonl"
    rows = [
        {"text": "Hello there.", "output": "a", "reference": wav.name},
        {"text": "Good morning.", "output": "b", "reference": wav.name},
    ]
    base = {"reference_text": SENTENCE, "nfe": 2, "seed": 1}
    manifest.write_text("".join(json.dumps({**r, **base}) + "\n" for r in rows))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="consent"):
        run_batch("read_like", str(manifest), out, workers=1)
    no_voice = tmp_path / "plain.jsonl"
    no_voice.write_text(json.dumps({"text": "Hi.", "consent": STATEMENT}) + "\n")
    with pytest.raises(InputError, match="no voice to read in"):
        run_batch("read_like", str(no_voice), out, workers=1)
    assert provenance.ledger() == [] and not (out / "a.wav").exists()

    (tmp_path / "consent.txt").write_text(STATEMENT + "\n")
    with_file = [{**r, **base, "consent_file": "consent.txt"} for r in rows]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in with_file))
    summary = run_batch("read_like", str(manifest), out, workers=1)
    assert summary.exit_code == 0, summary.rows
    records = provenance.ledger()
    assert len(records) == 2 and {r.statement_source for r in records} == {"file:consent.txt"}
    assert {sidecar_consent(out / name)["id"] for name in ("a.wav", "b.wav")} == {
        r.id for r in records
    }
    assert sf.info(out / "a.wav").frames > 0
    # resumed: nothing is done again, until the reference is another recording under its name
    assert run_batch("read_like", str(manifest), out, workers=1).exit_code == 0
    assert len(provenance.ledger()) == 2
    x, rate = sf.read(wav, dtype="float32")
    sf.write(wav, 0.5 * x[::-1], rate)  # another voice recording, same name and size
    assert run_batch("read_like", str(manifest), out, workers=1).exit_code == 0
    assert len(provenance.ledger()) == 4


def test_cli_batch_read_like_takes_the_consent_for_the_batch(model, wav, tmp_path):
    from voicebox.cli import app

    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "one.txt").write_text("Hello there.\n")
    out = tmp_path / "out"
    args = ["batch", "read-like", str(texts), "-o", str(out), "--like", str(wav), "-q"]
    args += ["--ref-text", SENTENCE, "--nfe", "2", "-j", "1"]
    refused = CliRunner().invoke(app, args)
    assert isinstance(refused.exception, InputError), refused.output
    assert "consent" in str(refused.exception) and provenance.ledger() == []
    run = CliRunner().invoke(app, [*args, "--consent", STATEMENT])
    assert run.exit_code == 0, (run.output, run.exception)
    (record,) = provenance.ledger()
    assert sidecar_consent(out / "one.wav")["id"] == record.id


# ---------------------------------------------------------------- the web page


@contextlib.contextmanager
def studio_page(tmp_path: Path) -> Iterator[tuple[object, list[str]]]:
    """The studio page in Chromium, served by `voicebox serve` (the model in use), ready; and the
    list its page errors collect in."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from helpers import serving
    from test_browser import ARTIFACTS, CHROMIUM, FLAGS

    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium at /usr/bin")
    ARTIFACTS.mkdir(exist_ok=True)
    (tmp_path / "serve").mkdir()
    with serving(tmp_path / "serve", "--workers", "1") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            page.wait_for_selector("#health.ok")
            yield page, errors
        finally:
            browser.close()


@pytest.mark.slow
def test_page_clones_a_voice_only_with_consent(model, wav, tmp_path):
    """The page's 'Clone a voice' section: without a statement it says so beside the consent
    field and sends nothing; with one it plays the reading and shows the ledger's record."""
    from test_browser import ARTIFACTS

    with studio_page(tmp_path) as (page, errors):
        page.set_input_files("#clone-ref", str(wav))
        page.fill("#clone-ref-text", SENTENCE)
        page.fill("#clone-text", "Hello there.")
        page.click("#clone-go")
        note = page.wait_for_selector(".field-error[data-control='clone-consent']")
        assert "consent" in (note.text_content() or "").lower()
        assert provenance.ledger() == []
        page.fill("#clone-consent", STATEMENT)
        assert page.locator(".field-error[data-control='clone-consent']").count() == 0
        page.click("#clone-go")
        page.wait_for_selector("#clone-result", state="visible", timeout=120_000)
        (record,) = provenance.ledger()
        assert record.id in (page.text_content("#clone-record") or "")
        assert page.get_attribute("#clone-download", "download") == "ref-clone.wav"
        assert page.is_hidden("#error") and errors == []
        page.screenshot(path=str(ARTIFACTS / "clone.png"), full_page=True)


@pytest.mark.slow
def test_page_edit_with_consent_speaks_in_the_speakers_voice(model, wav, tmp_path):
    """The page's edit section: with the speaker's consent the changed word is spoken by our model
    (the plan says so, and the ledger holds the record); the consent field is optional."""
    from test_browser import ARTIFACTS

    with studio_page(tmp_path) as (page, errors):
        page.set_input_files("#file", str(wav))
        page.click("#transcribe-go")
        page.wait_for_selector("#words .word", timeout=60_000)
        page.locator("#words .word", has_text="smooth").click()
        page.keyboard.press("Control+A")
        page.keyboard.type("rough")
        page.fill("#edit-consent", STATEMENT)
        page.click("#edit-go")
        page.wait_for_selector("#edit-result", state="visible", timeout=180_000)
        assert "the speaker's own voice" in (page.text_content("#edit-plan") or "")
        assert len(provenance.ledger()) == 1
        assert page.is_hidden("#error") and errors == []
        page.screenshot(path=str(ARTIFACTS / "edit-consent.png"), full_page=True)


# ---------------------------------------------------------------- read --like takes read's flags


def test_cli_read_like_honours_speed_and_loudness_and_refuses_a_stock_voice(wav, tmp_path):
    """The shipped model (the tiny one's untrained durations hardly scale)."""
    import pyloudnorm

    from voicebox.cli import app

    runner = CliRunner()
    text = "Hello there, my friend. We walked along the quiet river for a long time."
    base = ["read", text, "--like", str(wav), "--consent", STATEMENT]
    base += ["--ref-text", SENTENCE, "--nfe", "2", "--seed", "3"]
    plain, fast = tmp_path / "plain.wav", tmp_path / "fast.wav"
    for out, extra in ((plain, []), (fast, ["--speed", "2", "--loudness", "-20"])):
        run = runner.invoke(app, [*base, *extra, "-o", str(out)])
        assert run.exit_code == 0, (run.output, run.exception)
    x, rate = sf.read(fast)
    assert pyloudnorm.Meter(rate).integrated_loudness(x) == pytest.approx(-20.0, abs=0.5)
    ratio = sf.info(fast).duration / sf.info(plain).duration
    assert 0.4 < ratio < 0.65, ratio  # the model's phones (and pauses) at twice the rate
    picked = runner.invoke(app, [*base, "--voice", "heart", "-o", str(tmp_path / "v.wav")])
    assert isinstance(picked.exception, InputError) and "--like" in str(picked.exception)


def test_read_like_pitch_moves_the_voice_keeps_timings_and_stays_marked(recording):
    from voicebox import dsp
    from voicebox.tasks.read import SentenceTiming, Speech, _shifted

    speech = Speech(recording, [SentenceTiming(SENTENCE, 0.0, recording.duration)], "voicebox")
    shifted = _shifted(speech, -4.0)
    x = shifted.audio.samples[0]
    assert x.size == recording.frames and shifted.sentences[0].end == recording.duration
    before = dsp.median_f0(recording.samples[0], recording.rate)
    moved = 12 * np.log2(dsp.median_f0(x, recording.rate) / before)
    assert moved == pytest.approx(-4.0, abs=0.6), moved
    assert provenance.detect(shifted.audio).marked
