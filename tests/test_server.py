"""HTTP API tests with FastAPI's TestClient: every route, the limits, the auth rules and the jobs.

The routes run against a small in-test backend that makes tones instead of speech, so these tests
check the HTTP layer (formats, streaming, limits, jobs) quickly; the real engines behind the same
routes are exercised by tests/test_openai_client.py.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from voicebox.audio import Audio, encode
from voicebox.engines.asr import Segment, Word
from voicebox.errors import InputError
from voicebox.server.app import create_app
from voicebox.server.backend import OPENAI_VOICES, Backend
from voicebox.server.settings import Settings, is_loopback
from voicebox.server.workdir import WorkDir
from voicebox.tasks.transcribe import Transcript

RATE = 16_000


def tone(seconds: float, rate: int = RATE, freq: float = 220.0) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def wav_bytes(seconds: float = 1.0, rate: int = RATE) -> bytes:
    return encode(tone(seconds, rate), "wav")


@dataclass
class FakeEditResult:
    audio: Audio | None
    plan: dict


@dataclass
class ToneBackend(Backend):
    """Tones for speech, halving for cleaning, a fixed transcript; records what it was asked."""

    calls: list = field(default_factory=list)
    gate: threading.Event | None = None  # when set, work waits for it (to hold a worker busy)

    def _wait(self, progress) -> None:
        if self.gate is not None:
            while not self.gate.wait(0.02):
                progress(0.5, 1.0)  # raises once the job is cancelled

    def voices(self) -> list[dict]:
        return [{"id": "piper_joe", "engine": "piper"}, {"id": "jm_kumo", "engine": "kokoro"}]

    def speech(self, text, voice, blend, speed, pitch, lang, progress) -> Audio:
        self.calls.append(("speech", text, voice, blend, speed, pitch, lang))
        self._wait(progress)
        return tone(0.1 * len(text.split()), 22_050)

    def speech_stream(self, text, voice, blend, speed, pitch, lang, progress):
        self.calls.append(("stream", text, voice, blend, speed, pitch, lang))
        self._wait(progress)
        sentences = [s for s in text.split(".") if s.strip()]
        for i, s in enumerate(sentences):
            progress(i + 1, len(sentences))
            yield tone(0.1 * len(s.split()), 22_050)

    def clean(self, audio, options, progress) -> Audio:
        o = options
        self.calls.append(("clean", o.engine, o.strength, o.dehum, o.loudness))
        self._wait(progress)
        progress(audio.duration, audio.duration)
        return Audio(audio.samples * 0.5, audio.rate)

    def transcribe(self, audio, progress, language=None, task="transcribe") -> Transcript:
        self.calls.append(("transcribe", round(audio.duration, 2)))
        self._wait(progress)
        words = [Word("Hello", 0.0, 0.4, 0.9), Word("world.", 0.5, 0.9, 0.8)]
        heard = language or "en"
        probability = None if language else 0.99
        segments = [Segment("Hello world.", 0.0, 0.9, words)]
        return Transcript(segments, audio.duration, heard, probability, task)

    def edit(self, audio, params, progress, consent=None):
        self.calls.append(("edit", params.replace, params.delete, params.transcript))
        plan = {"steps": [{"kind": "replace", "old": "a", "new": "b"}]}
        return FakeEditResult(None if params.plan_only else audio, plan)


@pytest.fixture
def backend() -> ToneBackend:
    return ToneBackend()


def make_client(backend: Backend, tmp_path, **settings) -> TestClient:
    settings.setdefault("workers", 2)
    settings.setdefault("work_dir", str(tmp_path / "work"))
    return TestClient(create_app(Settings(**settings), backend))


@pytest.fixture
def client(backend, tmp_path):
    with make_client(backend, tmp_path) as c:
        yield c


def upload(data: bytes = b"", name: str = "in.wav") -> dict:
    return {"file": (name, data or wav_bytes(), "audio/wav")}


def error_message(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"]["message"]
    return body["error"]["message"]


# ---------------------------------------------------------------- health, schema, page


def test_health_schema_and_page(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["limits"]["max_text_chars"] > 0
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/audio/clean",
        "/v1/audio/edit",
        "/v1/voices",
        "/healthz",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/result",
    ):
        assert path in paths, path
    form = paths["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    fields = form["multipart/form-data"]["schema"]["properties"]
    assert {"file", "model", "response_format", "timestamp_granularities"} <= set(fields)
    assert "delete" in paths["/v1/jobs/{job_id}"]
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("app.js", "spectrogram.js", "style.css"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and len(response.content) > 500
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_voices_lists_ours_and_openai_aliases(client):
    body = client.get("/v1/voices").json()
    assert [v["id"] for v in body["data"]] == ["piper_joe", "jm_kumo"]
    assert body["openai_aliases"]["alloy"] == OPENAI_VOICES["alloy"]


# ---------------------------------------------------------------- speech


def parse_stream_wav(data: bytes) -> tuple[int, np.ndarray]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF  # unknown length: streamed
    rate = struct.unpack("<I", data[24:28])[0]
    return rate, np.frombuffer(data[44:], dtype="<i2")


def test_speech_wav_streams_each_sentence(client, backend):
    text = "One two three. Four five. Six."
    response = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "echo", "response_format": "wav"},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    rate, samples = parse_stream_wav(response.content)
    assert rate == 22_050
    assert samples.size == sum(int(0.1 * n * rate) for n in (3, 2, 1))
    assert backend.calls[-1][:3] == ("stream", text, OPENAI_VOICES["echo"])
    decoded, decoded_rate = sf.read(io.BytesIO(response.content))  # players accept it too
    assert decoded_rate == rate and decoded.size == samples.size


def test_speech_pcm_is_24k_16bit(client):
    response = client.post(
        "/v1/audio/speech", json={"input": "one two three four", "response_format": "pcm"}
    )
    assert response.status_code == 200
    assert len(response.content) == 2 * int(0.4 * 24_000)


@pytest.mark.parametrize("fmt", ["mp3", "flac", "opus", "aac"])
def test_speech_encoded_formats(client, fmt, tmp_path):
    response = client.post(
        "/v1/audio/speech", json={"input": "one two three four five", "response_format": fmt}
    )
    assert response.status_code == 200, response.text
    path = tmp_path / f"speech.{fmt}"
    path.write_bytes(response.content)
    from voicebox.audio import load

    assert load(path).duration == pytest.approx(0.5, abs=0.1)


def test_speech_passes_blend_pitch_speed_lang(client, backend):
    body = {
        "input": "Hi.",
        "blend": {"jm_kumo": 0.7, "jf_nezumi": 0.3},
        "pitch": 2,
        "speed": 1.5,
        "lang": "en",
        "response_format": "wav",
        "stream": False,
    }
    assert client.post("/v1/audio/speech", json=body).status_code == 200
    assert backend.calls[-1] == ("speech", "Hi.", None, body["blend"], 1.5, 2.0, "en")


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"input": "   "}, 400, "empty"),
        ({"input": "x" * 50}, 413, "at most 40"),
        ({"input": "hi", "response_format": "ogg-vorbis"}, 400, "response_format"),
        ({"input": "hi", "speed": 9}, 400, "speed"),
        ({"voice": "alloy"}, 400, "input"),
    ],
)
def test_speech_bad_requests(backend, tmp_path, body, status, needle):
    with make_client(backend, tmp_path, max_text_chars=40) as c:
        response = c.post("/v1/audio/speech", json=body)
    assert response.status_code == status
    assert needle in error_message(response)


def test_missing_task_answers_503(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "voicebox.tasks.read", None)
    with make_client(Backend(), tmp_path) as c:
        response = c.post("/v1/audio/speech", json={"input": "Hello.", "response_format": "wav"})
        assert response.status_code == 503
        assert "not available" in error_message(response)
        assert c.get("/v1/voices").status_code == 503


# ---------------------------------------------------------------- transcriptions


def test_transcription_formats(client):
    def ask(fmt: str, **extra):
        data = {"model": "whisper-1", "response_format": fmt, **extra}
        response = client.post("/v1/audio/transcriptions", files=upload(), data=data)
        assert response.status_code == 200, response.text
        return response

    assert ask("json").json() == {"text": "Hello world."}
    assert ask("text").text == "Hello world.\n"
    srt = ask("srt").text
    assert "00:00:00,000 --> 00:00:00,900" in srt
    assert ask("vtt").text.startswith("WEBVTT")
    verbose = ask("verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}).json()
    assert verbose["duration"] == pytest.approx(1.0)
    assert [w["word"] for w in verbose["words"]] == ["Hello", "world."]
    assert "words" not in ask("verbose_json").json()


@pytest.mark.parametrize(
    ("files", "data", "status", "needle"),
    [
        (None, {"model": "whisper-1"}, 400, "file"),
        ({"file": ("x.wav", b"not audio at all", "audio/wav")}, {}, 400, "x.wav"),
        (upload(), {"language": "klingon"}, 400, "not one the recogniser knows"),
        (upload(), {"response_format": "docx"}, 400, "response_format"),
    ],
)
def test_transcription_bad_requests(client, files, data, status, needle):
    if files is None:
        files = {"other": ("a.txt", b"x", "text/plain")}
    response = client.post("/v1/audio/transcriptions", files=files, data=data)
    assert response.status_code == status
    message = error_message(response)
    assert needle in message
    assert "voicebox-serve-" not in message  # never leaks the work folder


def test_non_multipart_body_is_415(client):
    response = client.post("/v1/audio/transcriptions", json={"file": "x"})
    assert response.status_code == 415


# ---------------------------------------------------------------- clean and edit


def test_clean_returns_audio_in_requested_format(client, backend):
    data = {"engine": "rnnoise", "strength": "12", "dehum": "true", "loudness": "-20"}
    response = client.post("/v1/audio/clean", files=upload(), data=data)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    x, rate = sf.read(io.BytesIO(response.content))
    assert rate == RATE and x.size == RATE
    assert np.abs(x).max() == pytest.approx(0.15, abs=0.01)
    assert backend.calls[-1] == ("clean", "rnnoise", 12.0, True, -20.0)
    flac = client.post("/v1/audio/clean", files=upload(), data={"response_format": "flac"})
    assert flac.headers["content-type"] == "audio/flac"
    assert sf.read(io.BytesIO(flac.content))[0].size == RATE


def test_edit_routes(client, backend):
    replace = json.dumps([["hello", "goodbye"]])
    response = client.post("/v1/audio/edit", files=upload(), data={"replace": replace})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert backend.calls[-1] == ("edit", [("hello", "goodbye")], [], None)
    plan = client.post(
        "/v1/audio/edit", files=upload(), data={"transcript": "goodbye world", "plan_only": "1"}
    )
    assert plan.json()["plan"]["steps"][0]["kind"] == "replace"
    nothing = client.post("/v1/audio/edit", files=upload(), data={})
    assert nothing.status_code == 400 and "nothing to edit" in error_message(nothing)
    bad = client.post("/v1/audio/edit", files=upload(), data={"replace": "[[oops"})
    assert bad.status_code == 400 and "JSON" in error_message(bad)


# ---------------------------------------------------------------- limits


def test_upload_and_duration_limits(backend, tmp_path):
    with make_client(backend, tmp_path, max_upload_mb=0.05, max_audio_seconds=1.0) as c:
        big = c.post("/v1/audio/clean", files=upload(wav_bytes(2.0)))  # ~64 KB > 50 KB
        assert big.status_code == 413 and "MB" in error_message(big)
        long = c.post("/v1/audio/clean", files=upload(wav_bytes(1.5, 8000)))  # 24 KB, 1.5 s
        assert long.status_code == 413 and "at most 1 s" in error_message(long)
        assert c.post("/v1/audio/clean", files=upload(wav_bytes(0.9))).status_code == 200


def test_json_body_limit(backend, tmp_path):
    with make_client(backend, tmp_path, max_text_chars=100) as c:
        huge = json.dumps({"input": "a" * 200_000}).encode()
        declared = c.post(
            "/v1/audio/speech", content=huge, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413 and "KB" in error_message(declared)
        streamed = c.post(
            "/v1/jobs",
            content=iter([huge[:100_000], huge[100_000:]]),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert c.get("/healthz").json()["jobs"]["active"] == 0


def test_queue_full_answers_429_and_timeout_504(tmp_path):
    slow = ToneBackend(gate=threading.Event())
    with make_client(slow, tmp_path, workers=1, queue_size=1, request_timeout_s=0.3) as c:
        first = c.post("/v1/jobs", json={"task": "speech", "params": {"input": "a b"}})
        second = c.post("/v1/jobs", json={"task": "speech", "params": {"input": "c d"}})
        assert first.status_code == second.status_code == 202
        assert c.get(f"/v1/jobs/{second.json()['id']}").json()["state"] == "queued"
        full = c.post("/v1/audio/speech", json={"input": "e f", "response_format": "mp3"})
        assert full.status_code == 429 and full.headers["retry-after"]
        assert "busy" in error_message(full)
        c.delete(f"/v1/jobs/{second.json()['id']}")  # frees the queue slot
        timed = c.post("/v1/audio/speech", json={"input": "e f", "response_format": "mp3"})
        assert timed.status_code == 504 and "/v1/jobs" in error_message(timed)
        slow.gate.set()
        assert wait_done(c, first.json()["id"])["state"] == "done"
        manager = c.app.state.voicebox["jobs"]
        deadline = time.time() + 5
        while len(manager.jobs) > 1 and time.time() < deadline:
            time.sleep(0.02)
        assert list(manager.jobs) == [first.json()["id"]]  # the timed-out one cleaned itself up
        assert manager.active == 0


# ---------------------------------------------------------------- jobs


def wait_done(c: TestClient, job_id: str, timeout: float = 10.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = c.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def test_job_lifecycle_with_upload(client):
    created = client.post(
        "/v1/jobs",
        data={"task": "clean", "params": json.dumps({"response_format": "wav"})},
        files=upload(),
    )
    assert created.status_code == 202
    job = created.json()
    assert job["state"] in ("queued", "running", "done") and job["task"] == "clean"
    status = wait_done(client, job["id"])
    assert status["state"] == "done" and status["progress"]["fraction"] == 1.0
    assert status["result_url"] == f"/v1/jobs/{job['id']}/result"
    result = client.get(status["result_url"])
    assert result.status_code == 200 and sf.read(io.BytesIO(result.content))[0].size == RATE
    assert (
        "attachment"
        in client.get(status["result_url"] + "?download=1").headers["content-disposition"]
    )
    assert client.get("/v1/jobs").json()["data"][0]["id"] == job["id"]
    deleted = client.delete(f"/v1/jobs/{job['id']}").json()
    assert deleted["deleted"] is True
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_transcribe_job_keeps_transcript_in_info(client):
    created = client.post(
        "/v1/jobs",
        data={"task": "transcribe", "params": '{"response_format": "srt"}'},
        files=upload(),
    )
    status = wait_done(client, created.json()["id"])
    assert status["info"]["transcript"]["segments"][0]["words"][1]["text"] == "world."
    assert client.get(status["result_url"]).text.startswith("1\n00:00:00,000")


def test_job_cancel_and_failures(tmp_path):
    slow = ToneBackend(gate=threading.Event())
    with make_client(slow, tmp_path) as c:
        job = c.post("/v1/jobs", json={"task": "speech", "params": {"input": "a b"}}).json()
        time.sleep(0.1)
        assert c.get(f"/v1/jobs/{job['id']}").json()["state"] == "running"
        assert c.get(f"/v1/jobs/{job['id']}/result").status_code == 409
        c.delete(f"/v1/jobs/{job['id']}")
        assert wait_done(c, job["id"])["state"] == "cancelled"
        assert c.get(f"/v1/jobs/{job['id']}/result").status_code == 409
        slow.gate.set()
        # A recording that is not audio is refused before the job is accepted (issue 16).
        junk = c.post("/v1/jobs", data={"task": "clean", "params": "{}"}, files=upload(b"junk"))
        assert junk.status_code == 400 and "in.wav" in error_message(junk)
        bad = [
            c.post("/v1/jobs", json={"task": "dance", "params": {}}),
            c.post("/v1/jobs", json={"task": "speech", "params": {"input": ""}}),
            c.post("/v1/jobs", data={"task": "clean", "params": "{not json"}, files=upload()),
            c.post("/v1/jobs", json=["not", "an", "object"]),
        ]
        assert [r.status_code for r in bad] == [400, 400, 400, 400]
        assert c.get("/healthz").json()["jobs"]["active"] == 0  # every slot came back
        for path in ("/v1/jobs/nope", "/v1/jobs/..%2F..%2Fetc", "/v1/jobs/../../etc/passwd/result"):
            assert c.get(path).status_code == 404


def test_finished_jobs_expire_with_their_files(backend, tmp_path):
    with make_client(backend, tmp_path, job_ttl_s=0.3) as c:
        job = c.post("/v1/jobs", data={"task": "clean", "params": "{}"}, files=upload()).json()
        wait_done(c, job["id"])
        manager = c.app.state.voicebox["jobs"]
        folder = manager.jobs[job["id"]].folder
        assert folder.is_dir() and any(folder.iterdir())
        deadline = time.time() + 5
        while c.get(f"/v1/jobs/{job['id']}").status_code != 404 and time.time() < deadline:
            time.sleep(0.05)
        assert c.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert not folder.exists()


def test_work_folder_is_private_and_emptied(backend, tmp_path):
    with make_client(backend, tmp_path) as c:
        root = c.app.state.voicebox["workdir"].root
        assert (
            root.is_relative_to(tmp_path / "work") and oct(root.stat().st_mode & 0o777) == "0o700"
        )
        assert c.post("/v1/audio/clean", files=upload(name="../../evil.wav")).status_code == 200
        assert c.post("/v1/audio/transcriptions", files=upload()).status_code == 200
        assert list(root.iterdir()) == []  # direct requests leave nothing behind
        assert not (tmp_path / "evil.wav").exists()
    assert not root.exists()  # shutting down removes the work folder


def test_workdir_refuses_paths_outside(tmp_path):
    work = WorkDir(str(tmp_path))
    with pytest.raises(InputError):
        work.inside(work.root / ".." / "x")
    with pytest.raises(InputError):
        work.folder("../../etc")
    work.close()


# ---------------------------------------------------------------- auth


def test_token_required_on_every_api_request(backend, tmp_path):
    with make_client(backend, tmp_path, token="s3cret") as c:
        for method, path in [("get", "/healthz"), ("get", "/v1/voices"), ("get", "/openapi.json")]:
            response = getattr(c, method)(path)
            assert response.status_code == 401 and "Bearer" in error_message(response)
        assert c.get("/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/healthz", headers={"Authorization": "Basic s3cret"}).status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert c.get("/healthz", headers=ok).status_code == 200
        speech = c.post("/v1/audio/speech", json={"input": "a", "response_format": "mp3"})
        assert speech.status_code == 401
        assert (
            c.post(
                "/v1/audio/speech", json={"input": "a", "response_format": "mp3"}, headers=ok
            ).status_code
            == 200
        )
        assert c.get("/").status_code == 200  # the page shell itself holds no data


def test_bind_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    with pytest.raises(InputError, match="token"):
        Settings(host="0.0.0.0").validate()
    Settings(host="0.0.0.0", token="t").validate()
    Settings(host="127.0.0.1").validate()
    with pytest.raises(InputError):
        Settings(workers=0).validate()


@pytest.mark.slow  # a `voicebox serve` subprocess
def test_serve_refuses_public_bind_without_token():
    env = {**os.environ, "VOICEBOX_TOKEN": ""}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from voicebox.cli import main; main()",
            "serve",
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "without a token" in proc.stderr and "Traceback" not in proc.stderr
