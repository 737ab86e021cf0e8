"""Provenance: the watermark survives a round trip and crops, stays off unmarked speech, marks only
the span asked for; consent is required and recorded; `voicebox detect` reports all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import pink_noise
from voicebox import provenance, watermark
from voicebox.audio import Audio, encode, load, save
from voicebox.errors import InputError
from voicebox.provenance import Payload, detect, mark, require_consent

VOICEBOX = Path(sys.executable).parent / "voicebox"


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """This module's own cache folder, so its generator id and ledger never touch the user's."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOICEBOX_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def marked_pair(speech_fixture: Audio) -> tuple[Audio, Audio]:
    """(original, marked) speech, marked once for the module."""
    return speech_fixture, mark(speech_fixture)


def test_round_trip_detects_and_decodes_payload(marked_pair: tuple[Audio, Audio]) -> None:
    original, marked = marked_pair
    assert marked.samples.shape == original.samples.shape and marked.rate == original.rate
    found = detect(marked)
    assert found.marked and found.confidence > 0.99 and found.score > 8
    assert found.payload is not None
    assert found.payload.version == provenance.VERSION
    assert found.payload.date() == provenance.current_payload().date()
    assert len(found.ranges) == 1
    start, end = found.ranges[0]
    assert start < 0.3 and end > original.duration - 0.3


def test_mark_is_quiet(marked_pair: tuple[Audio, Audio]) -> None:
    original, marked = marked_pair
    diff = marked.samples - original.samples
    snr = 10 * np.log10(np.sum(original.samples**2) / np.sum(diff**2))
    assert 10 < snr < 40  # present, and well below the speech (it is a ±1-2 dB band gain)


def test_unmarked_speech_and_noise_are_not_flagged(speech_fixture: Audio) -> None:
    found = detect(speech_fixture)
    assert not found.marked and found.score < 4 and found.payload is None and not found.ranges
    noise = Audio(0.1 * pink_noise(8 * 16_000, seed=3), 16_000)
    assert not detect(noise).marked
    silence = Audio(np.zeros((1, 16_000 * 3), dtype=np.float32), 16_000)
    assert not detect(silence).marked
    blip = detect(Audio(speech_fixture.samples[:, : speech_fixture.rate // 2], speech_fixture.rate))
    assert not blip.marked and blip.confidence == 0.0 and "too short" in (blip.note or "")


def test_three_second_crops_after_mp3_are_detected(
    marked_pair: tuple[Audio, Audio], tmp_path
) -> None:
    _, marked = marked_pair
    path = tmp_path / "marked.mp3"
    path.write_bytes(encode(marked, "mp3"))
    decoded = load(path)
    for offset in (0.37, 4.11, 7.05):
        a = round(offset * decoded.rate)
        crop = Audio(decoded.samples[:, a : a + 3 * decoded.rate], decoded.rate)
        assert detect(crop).marked, offset


def test_span_marks_only_that_span(speech_fixture: Audio) -> None:
    before = speech_fixture.samples.copy()
    out = mark(speech_fixture, 3.0, 7.0)
    np.testing.assert_array_equal(speech_fixture.samples, before)  # input untouched
    a, b = round(3.0 * out.rate), round(7.0 * out.rate)
    assert np.array_equal(out.samples[:, :a], before[:, :a])
    assert np.array_equal(out.samples[:, b:], before[:, b:])
    assert not np.array_equal(out.samples[:, a:b], before[:, a:b])
    found = detect(out)
    assert found.marked and len(found.ranges) == 1
    start, end = found.ranges[0]
    assert abs(start - 3.0) < 0.6 and abs(end - 7.0) < 0.6, found.ranges


def test_the_mark_never_pushes_loud_speech_over_full_scale(speech_fixture: Audio) -> None:
    x = speech_fixture.samples * (0.95 / np.abs(speech_fixture.samples).max())
    marked = mark(Audio(x.astype(np.float32), speech_fixture.rate))
    assert np.abs(marked.samples).max() <= provenance.MARK_CEILING + 1e-6  # 1.02 unbounded
    assert detect(marked).marked


def test_any_rate_and_channels(speech_fixture: Audio) -> None:
    stereo48 = Audio(
        np.stack([speech_fixture.samples[0], 0.5 * speech_fixture.samples[0]]), speech_fixture.rate
    ).to_rate(48_000)
    out = mark(stereo48)
    assert out.samples.shape == stereo48.samples.shape and out.rate == 48_000
    assert detect(out).marked
    narrow = speech_fixture.to_rate(8_000)
    assert detect(mark(narrow)).marked


def test_bad_spans_are_refused(speech_fixture: Audio) -> None:
    for start, end in (
        (-1.0, 2.0),
        (2.0, 1.0),
        (0.0, speech_fixture.duration + 5),
        (float("nan"), None),
    ):
        with pytest.raises(InputError):
            mark(speech_fixture, start, end)


def test_payload_fields_and_crc() -> None:
    p = Payload(1, 0xBEEF, 4000)
    assert Payload.unpack(p.pack()) == p
    soft = watermark.code_bits(p.pack())
    assert watermark.decode_bits(soft) == p.pack()
    flipped = soft.copy()
    flipped[5] *= -0.1  # one weak wrong bit
    assert watermark.decode_bits(flipped) is None
    assert watermark.decode_bits(flipped, flips=4) == p.pack()  # Chase decoding repairs it
    other = Payload.unpack(p.pack())
    other.version = 2
    assert (
        watermark.decode_bits(watermark.code_bits(other.pack()), provenance._known_version) is None
    )


def test_generator_id_is_kept(private_cache: Path) -> None:
    first = provenance.generator_id()
    assert provenance.generator_id() == first
    assert (private_cache / provenance.GENERATOR_FILE).read_text().strip() == f"{first:04x}"


def test_consent_is_required_and_recorded(speech_fixture: Audio, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--consent"):
        require_consent(None, None, speech_fixture)
    with pytest.raises(InputError, match="too short"):
        require_consent("ok", None, speech_fixture)
    with pytest.raises(InputError, match="cannot read"):
        require_consent(None, tmp_path / "missing.txt", speech_fixture)
    statement = tmp_path / "consent.txt"
    statement.write_text("I, Joe Example, agree to voicebox cloning my voice for this test.\n")
    record = require_consent(None, statement, speech_fixture)
    assert record.reference_sha256 == provenance.fingerprint(speech_fixture)
    assert provenance.ledger()[-1] == record
    again = require_consent("I agree to my voice being cloned here.", None, speech_fixture)
    assert again.statement_sha256 != record.statement_sha256
    assert [r.id for r in provenance.ledger()[-2:]] == [record.id, again.id]


def test_cli_detect_text_and_json(marked_pair: tuple[Audio, Audio], tmp_path: Path) -> None:
    original, marked = marked_pair
    save(marked, tmp_path / "marked.flac")
    save(original, tmp_path / "plain.wav")
    record = require_consent("I, Joe Example, agree to this test clone.", None, original)
    provenance.write_sidecar(tmp_path / "marked.flac", record)
    env = {**os.environ, "VOICEBOX_THREADS": "1"}
    files = [str(tmp_path / "marked.flac"), str(tmp_path / "plain.wav")]
    proc = subprocess.run([VOICEBOX, "detect", *files], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    assert ": marked" in lines[0] and record.id in lines[0] and "ranges" in lines[0]
    assert ": not marked" in lines[1]
    proc = subprocess.run(
        [VOICEBOX, "detect", "--json", *files], capture_output=True, text=True, env=env
    )
    results = json.loads(proc.stdout)
    assert [r["verdict"] for r in results] == ["marked", "not marked"]
    assert results[0]["consent"]["id"] == record.id and results[0]["consent"]["in_ledger"]
    assert results[0]["payload"]["this_install"] is True


def test_cli_detect_bad_file_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    proc = subprocess.run([VOICEBOX, "detect", str(empty)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "empty" in proc.stderr
