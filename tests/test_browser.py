"""The web page in Debian's headless chromium (Playwright): upload, clean, A/B + spectrograms, read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from helpers import serving

CHROMIUM = Path("/usr/bin/chromium")
SENTENCE = "Please bring the yellow umbrella to the garden tomorrow morning."
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("serve"), "--workers", "2") as url:
        yield url


def noisy_speech(server: str, path: Path) -> Path:
    """Speech from the server's own reader with white noise mixed in at about 5 dB SNR."""
    response = httpx.post(
        f"{server}/v1/audio/speech",
        json={"input": SENTENCE, "voice": "piper_joe", "response_format": "wav", "stream": False},
        timeout=120,
    )
    response.raise_for_status()
    path.write_bytes(response.content)
    x, rate = sf.read(path, dtype="float32")
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(x.size).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (5 / 10))
    y = x + noise
    sf.write(path, y / np.abs(y).max() * 0.9, rate)
    return path


SPREAD = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < d.length; i += 16) { const v = d[i] + d[i + 1] + d[i + 2]; sum += v; sq += v * v; n++; }
  const mean = sum / n;
  return Math.sqrt(sq / n - mean * mean);
}"""


def test_upload_clean_compare_and_read(server, tmp_path):
    source = noisy_speech(server, tmp_path / "noisy.wav")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server + "/")
            page.wait_for_selector("#health.ok")
            page.wait_for_function("document.getElementById('read-voice').options.length > 3")

            page.set_input_files("#file", str(source))
            page.click("#clean-go")
            page.wait_for_selector("#ab", state="visible", timeout=60_000)
            page.wait_for_selector("#spec-after[data-drawn='1']", timeout=30_000)
            page.wait_for_selector("#spec-before[data-drawn='1']", timeout=30_000)
            assert page.evaluate(SPREAD, "spec-before") > 20  # a picture, not a flat fill
            assert page.evaluate(SPREAD, "spec-after") > 20
            after_src = page.get_attribute("#ab-audio", "src")
            page.click("#ab-a")
            assert page.get_attribute("#ab-audio", "src") != after_src
            assert "on" in (page.get_attribute("#ab-a", "class") or "")
            page.click("#ab-b")
            assert page.get_attribute("#ab-audio", "src") == after_src
            assert page.get_attribute("#clean-download", "download") == "noisy-clean.wav"

            page.click("#transcribe-go")
            page.wait_for_selector("#words .word", timeout=60_000)
            heard = " ".join(page.locator("#words .word").all_text_contents()).lower()
            assert "umbrella" in heard and "garden" in heard, heard
            assert page.is_enabled("#edit-go") and page.is_visible("#transcript-download")
            word = page.locator("#words .word", has_text="yellow")
            word.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("purple")
            assert "purple umbrella" in page.input_value("#edit-text")
            assert page.locator("#words .word.changed").count() == 1

            page.fill("#read-text", "Voicebox reads this sentence in the browser.")
            page.select_option("#read-voice", "piper_joe")
            page.click("#read-go")
            page.wait_for_selector("#spec-read[data-drawn='1']", timeout=90_000)
            page.wait_for_function(
                "document.getElementById('read-audio').duration > 1", timeout=30_000
            )
            assert page.evaluate(SPREAD, "spec-read") > 20
            assert page.is_hidden("#error"), page.text_content("#error")
            assert errors == []
            page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
        finally:
            browser.close()


def test_record_then_clean(server):
    """MediaRecorder with chromium's fake microphone: the recording uploads, decodes and cleans."""
    fake_mic = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS + fake_mic)
        try:
            context = browser.new_context()
            context.grant_permissions(["microphone"], origin=server)
            page = context.new_page()
            page.goto(server + "/")
            page.wait_for_selector("#health.ok")
            page.click("#record")
            page.wait_for_selector("#record.recording")
            page.wait_for_timeout(1500)
            page.click("#record")
            page.wait_for_function(
                "document.getElementById('source-name').textContent.startsWith('recording.')"
            )
            page.click("#clean-go")
            page.wait_for_selector("#spec-after[data-drawn='1']", timeout=60_000)
            assert page.is_hidden("#error"), page.text_content("#error")
            duration = page.evaluate(
                "new Promise(r => { const a = document.getElementById('ab-audio');"
                " a.readyState > 0 ? r(a.duration) : a.onloadedmetadata = () => r(a.duration); })"
            )
            assert 1.0 < duration < 3.0
        finally:
            browser.close()


def _field_error(page, control: str) -> str:
    """The error shown beside `control`: it must follow the control's label and name no flag."""
    note = page.wait_for_selector(f".field-error[data-control='{control}']", timeout=60_000)
    text = note.text_content() or ""
    beside = page.evaluate(
        """(id) => { const n = document.getElementById(id + '-error'), c = document.getElementById(id);
                     const a = c.closest('label') || c; return n.previousElementSibling === a; }""",
        control,
    )
    assert beside, f"the error for {control} is not next to it"
    assert "--" not in text and "`" not in text, text  # page words, not command-line syntax
    return text


def test_errors_are_written_for_the_page_next_to_their_control(server, tmp_path):
    """A bad strength, an unreadable upload and a voice that cannot read the language each show
    their message beside the control that caused it, in the page's words."""
    rate = 16_000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate * 2) / rate)
    sf.write(tmp_path / "tone.wav", tone.astype(np.float32), rate)
    (tmp_path / "notes.txt").write_text("not audio at all\n" * 50)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(server + "/")
            page.wait_for_selector("#health.ok")
            page.wait_for_function("document.getElementById('read-voice').options.length > 3")

            page.set_input_files("#file", str(tmp_path / "tone.wav"))
            page.fill("#clean-strength", "-5")
            page.click("#clean-go")
            text = _field_error(page, "clean-strength")
            assert "Strength" in text and "0" in text, text
            assert page.get_attribute("#clean-strength", "aria-invalid") == "true"
            page.fill("#clean-strength", "12")  # editing the control clears its error
            assert page.locator(".field-error[data-control='clean-strength']").count() == 0

            page.fill("#read-text", "こんにちは。")
            page.select_option("#read-voice", "piper_joe")
            page.select_option("#read-lang", "ja")
            page.click("#read-go")
            text = _field_error(page, "read-voice")  # the server's refusal, placed by its field
            assert "espeak:ja" in text, text

            page.set_input_files("#file", str(tmp_path / "notes.txt"))
            page.click("#transcribe-go")
            text = _field_error(page, "file")
            assert "notes.txt" in text, text
            assert page.is_hidden("#error"), page.text_content("#error")
            page.screenshot(path=str(ARTIFACTS / "browser-errors.png"), full_page=True)
        finally:
            browser.close()
