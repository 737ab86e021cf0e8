"""Cross-lingual voice transfer (issue 14 item 4): `read_like` with a language our model does not
speak reads it with the nearest native voice re-voiced towards the reference. The reference is a
bundled English voice (Piper joe) moved down in pitch, so the re-voicing has a pitch to reach."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import synthesise
from voicebox import dsp, provenance
from voicebox.audio import Audio, save
from voicebox.errors import InputError
from voicebox.provenance import Consent

JA_TEXT = "今日はとても良い天気です。"
STATEMENT = "I, Joe Example, agree to voicebox speaking in my voice for this test."
REFERENCE_SHIFT = -3.0
"""Semitones the reference is moved by: away from every bundled voice's own pitch."""


@pytest.fixture(autouse=True)
def private_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Consent records go to a throwaway ledger (the voice profiles stay in the shared cache)."""
    monkeypatch.setattr(provenance, "cache_dir", lambda: tmp_path)


@pytest.fixture(scope="module")
def reference() -> Audio:
    """About 5 s of an English speaker whose median pitch no Japanese voice has."""
    joe = synthesise("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue.")
    x = joe.to_rate(16_000).mono()
    return Audio(dsp.pitch_shift(x, 16_000, REFERENCE_SHIFT), 16_000)


def _gap(audio: Audio, f0: float) -> float:
    """Semitones between the median pitch of `audio` and `f0`."""
    return abs(12 * np.log2(dsp.median_f0(audio.mono(), audio.rate) / f0))


def _heard(audio: Audio) -> str:
    from voicebox.engines import asr

    return "".join(s.text for s in asr.recognize(audio, words=False, language="ja"))


def test_supported_languages_are_the_native_ones() -> None:
    from voicebox.tasks import crosslingual

    assert "ja" in crosslingual.languages()
    assert "en" not in crosslingual.languages() and "de" not in crosslingual.languages()
    assert crosslingual.route_language(JA_TEXT, None) == "ja"  # kana: detected
    assert crosslingual.route_language("Hello there.", None) == "en"
    assert crosslingual.route_language("x", "ja-JP") == "ja"


def test_read_like_in_japanese_is_heard_consented_marked_and_moves_pitch(reference) -> None:
    from voicebox.engines import tts
    from voicebox.tasks import crosslingual, match
    from voicebox.tasks.read import read_like

    steps: list[tuple[float, float]] = []
    speech = read_like(  # the language comes from the text
        JA_TEXT, reference, consent=Consent(STATEMENT), progress=lambda d, t: steps.append((d, t))
    )
    assert len(steps) > 3 and steps[-1][0] == steps[-1][1]  # progress moves through the stages
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert speech.route is not None and speech.route.startswith("cross-lingual: ")
    assert speech.voice in speech.route and "warp" in speech.route and "pitch" in speech.route
    assert json.loads(speech.to_json())["route"] == speech.route
    heard = _heard(speech.audio)
    assert difflib.SequenceMatcher(None, heard.rstrip("。"), JA_TEXT.rstrip("。")).ratio() >= 0.7
    assert speech.consent is not None and provenance.ledger() == [speech.consent]
    assert provenance.detect(speech.audio).marked
    # the re-voicing lands near the reference's pitch; the native voice alone is far from it
    target = match.measure(reference, 0)
    voice = crosslingual.nearest_native(target, "ja")
    plain = tts.synthesize(JA_TEXT, voice, lang="ja")
    assert _gap(plain, target.f0) > 1.5
    assert _gap(speech.audio, target.f0) < min(1.0, _gap(plain, target.f0) - 1.0)


def test_read_like_other_languages_need_consent_or_are_refused(reference) -> None:
    from voicebox.tasks.read import read_like

    with pytest.raises(TypeError, match="consent"):
        read_like(JA_TEXT, reference, lang="ja")  # a required argument
    with pytest.raises(InputError, match="consent"):
        read_like(JA_TEXT, reference, lang="ja", consent=None)
    with pytest.raises(InputError, match=r"German \(de\).*Japanese \(ja\)"):
        read_like("Guten Morgen.", reference, lang="de", consent=Consent(STATEMENT))
    with pytest.raises(InputError, match=r"looks Chinese \(zh\).*Japanese \(ja\)"):
        read_like("今天天气非常好。", reference, consent=Consent(STATEMENT))
    assert provenance.ledger() == []  # nothing was recorded for refused calls


def test_cli_read_like_japanese_writes_the_route(reference, tmp_path: Path) -> None:
    from voicebox.cli import app

    ref = tmp_path / "ref.wav"
    save(reference, ref)
    out, times = tmp_path / "ja.wav", tmp_path / "ja.json"
    args = ["read", JA_TEXT, "--like", str(ref), "--lang", "ja", "--consent", STATEMENT]
    refused = CliRunner().invoke(app, [*args, "-o", str(out), "--variations", "2"])
    assert isinstance(refused.exception, InputError), refused.output
    assert "--variations needs English" in str(refused.exception) and not out.exists()
    run = CliRunner().invoke(app, [*args, "-o", str(out), "--timings", str(times)])
    assert run.exit_code == 0, (run.output, run.exception)
    assert "cross-lingual: " in run.output
    assert json.loads(times.read_text(encoding="utf-8"))["route"].startswith("cross-lingual: ")
    sidecar = json.loads(provenance.sidecar_path(out).read_text(encoding="utf-8"))
    assert sidecar["consent"]["id"] == provenance.ledger()[0].id
    assert provenance.detect(out).marked
