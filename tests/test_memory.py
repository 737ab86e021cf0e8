"""Bounded memory on long files (issue 16 item 6): what a long edit keeps loaded, and what it frees.

bench/hostile.py measures the peak memory of each command on a 3-hour file; these tests catch the
regressions cheaply: the speaker embedding pulling librosa's numba stack back in, a long
recording's transcription running in this process again, or a long edit keeping its engines.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from voicebox.audio import Audio, load, save
from voicebox.engines import asr, speaker, tts
from voicebox.tasks import edit as edit_module
from voicebox.tasks.recording import OnDisk
from voicebox.tasks.transcribe import Transcript, transcribe_file

DATA = Path(__file__).parent / "data"
RECORDING = DATA / "old_man_piper_joe.flac"


def _clips() -> list[np.ndarray]:
    """16 kHz signals of awkward lengths: speech, noise, a tone, shorter than one window."""
    rng = np.random.default_rng(7)
    t = np.arange(23_457) / speaker.RATE
    return [
        load(RECORDING).to_rate(speaker.RATE).mono(),
        (0.1 * rng.standard_normal(40_001)).astype(np.float32),
        (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        (0.1 * rng.standard_normal(300)).astype(np.float32),
    ]


def test_speaker_spectrogram_is_resemblyzers_exactly() -> None:
    """The numpy mel spectrogram gives resemblyzer's (librosa's) float32 values bit for bit, so
    every similarity, and so every voice choice, is what it was."""
    from resemblyzer.audio import wav_to_mel_spectrogram

    for x in _clips():
        assert np.array_equal(speaker.mel_spectrogram(x), wav_to_mel_spectrogram(x))


def test_speaker_preprocessing_is_resemblyzers_exactly() -> None:
    """Volume, silence trimming and partial slices without importing resemblyzer: its values."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    rng = np.random.default_rng(3)
    speech = _clips()[0]
    gappy = np.concatenate([speech[:20_000], np.zeros(30_000, np.float32), speech[20_000:]])
    loud = np.clip(4 * speech, -1, 1).astype(np.float32)
    for x in [*_clips(), gappy, loud, np.zeros(1_000, np.float32)]:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = preprocess_wav(x, source_sr=None)
        got = speaker.trim_long_silences(speaker.normalize_volume(x))
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    for n in [0, 1, 300, 16_000, 25_599, 25_600, 40_001, *rng.integers(0, 400_000, 40)]:
        got = speaker.partial_slices(int(n))
        assert got == VoiceEncoder.compute_partial_slices(int(n), 1.3, 0.75)


def _torch_embedding(x: np.ndarray) -> np.ndarray:
    """Resemblyzer's own embed_utterance (torch), for comparison."""
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(x, source_sr=None)
    wav = wav if len(wav) >= speaker.RATE // 4 else x
    return np.asarray(speaker._torch_voice_encoder().embed_utterance(wav), np.float32)


def test_speaker_embedding_in_onnx_matches_resemblyzers_torch(tmp_path, monkeypatch) -> None:
    """The ONNX export gives torch's embedding to float rounding, so similarities (and the voice
    an edit picks) are what they were; a failed export falls back to torch itself."""
    monkeypatch.setenv("VOICEBOX_CACHE", str(tmp_path))
    speaker.release()
    try:
        speech = _clips()[0]
        for x in [*_clips()[:3], np.tile(speech, 5)]:  # 25 s: more partials than one ONNX batch
            got = speaker.embed(Audio(x[None, :], speaker.RATE))
            want = _torch_embedding(x)
            assert float(np.dot(got, want)) > 0.9999
            assert np.abs(got - want).max() < 1e-6
        assert speaker._onnx_path().is_file()  # exported into the cache once
        speaker.release()
        monkeypatch.setattr(speaker, "_onnx_path", lambda: tmp_path / "missing" / "x.onnx")
        monkeypatch.setattr(speaker, "_export", lambda path: False)
        x = _clips()[0]
        assert np.array_equal(speaker.embed(Audio(x[None, :], speaker.RATE)), _torch_embedding(x))
    finally:
        speaker.release()


def test_speaker_embedding_leaves_librosas_signal_stack_unloaded() -> None:
    """librosa's resampler and STFT import numba, scipy.signal and the rest: ~190 MB per process."""
    code = (
        "from voicebox.audio import load; from voicebox.engines import speaker; "
        f"speaker.embed(load({str(RECORDING)!r}))"
    )
    assert _loaded_after(code, ("numba", "scipy.signal", "librosa.core")) == "[]"


def _loaded_after(code: str, modules: tuple[str, ...]) -> str:
    """The last line a fresh Python prints after running `code`: which of `modules` it imported."""
    probe = f"; import sys; print(sorted(m for m in {modules!r} if m in sys.modules))"
    run = subprocess.run(
        [sys.executable, "-c", code + probe], capture_output=True, text=True, check=True
    )
    return run.stdout.strip().splitlines()[-1]


def test_a_stock_edit_never_imports_torch(tmp_path) -> None:
    """The stock edit path (aligner, speaker embedding, voices, whisper) runs without torch, ~200 MB
    per process; only the speaker encoder's one-time ONNX export needs it (done here first)."""
    speaker._encoder()  # exports the encoder into the cache if it is not there yet
    out = tmp_path / "out.wav"
    code = (
        "from voicebox.tasks.edit import edit_file; "
        f"r = edit_file({str(RECORDING)!r}, {str(out)!r}, replace=[('old', 'young')]); "
        "assert r.plan.voice is not None"
    )
    assert _loaded_after(code, ("torch", "resemblyzer")) == "[]"
    assert out.is_file()


def _words(t: Transcript) -> list[tuple[str, float, float, float]]:
    return [(w.text, w.start, w.end, w.probability) for w in t.words]


def test_long_recording_is_transcribed_in_a_child_with_the_same_words(monkeypatch) -> None:
    """Past LONG_S the words come from a child process (this one never loads whisper), the same
    words, times and confidences as in-process, with progress relayed."""
    asr.release()
    monkeypatch.setattr(edit_module, "LONG_S", 1.0)
    reported: list[float] = []
    with OnDisk(RECORDING) as rec:
        apart = edit_module._transcribe(rec, lambda done, total: reported.append(done))
    assert asr._model.cache_info().currsize == 0  # recognised elsewhere
    assert reported and reported[-1] == pytest.approx(1.0)
    here = transcribe_file(RECORDING, language="en")
    assert apart.words and _words(apart) == _words(here)
    assert apart.text == here.text and apart.duration == here.duration


def test_a_failed_child_transcription_is_our_error(tmp_path, monkeypatch) -> None:
    """A file the child cannot read comes back as our one-line error, not a traceback."""
    from voicebox.errors import VoiceboxError

    bad = tmp_path / "gone.wav"
    with pytest.raises(VoiceboxError):
        edit_module._transcribe_apart(bad, lambda done, total: None)


def test_long_edit_releases_its_engines_and_gives_the_same_samples(tmp_path, monkeypatch) -> None:
    """A long recording's render loads one voice engine at a time and releases every engine after;
    its samples and plan are those of the same edit in memory (which keeps its engines)."""
    import soundfile as sf

    from voicebox.tasks.edit import edit, edit_file

    recording = load(RECORDING)
    src = tmp_path / "in.wav"
    save(recording, src, subtype="PCM_16")
    loaded = Audio(sf.read(src, dtype="float32", always_2d=True)[0].T.copy(), recording.rate)
    heard = transcribe_file(src, language="en")
    spoken, said = edit_module._speak, {}

    def once(*args):  # Piper samples its prosody afresh on each call: both edits get one take
        return said.setdefault(repr(args), spoken(*args))

    monkeypatch.setattr(edit_module, "_speak", once)
    listening: list[bool] = []  # whether a voice engine was loaded while whisper listened
    heard_share = edit_module._heard_share

    def listen(*args):
        listening.append(
            any(f.cache_info().currsize for f in (tts._kokoro, tts._piper, tts._hibari))
        )
        return heard_share(*args)

    monkeypatch.setattr(edit_module, "_heard_share", listen)
    releases: list[tuple[bool, bool, bool]] = []
    real_release = edit_module._release
    monkeypatch.setattr(
        edit_module, "_release", lambda **k: releases.append(k) or real_release(**k)
    )
    ask = dict(replace=[(heard.words[-1].text, "cheese")], source=heard)
    in_memory = edit(loaded, **ask)
    assert not releases  # short: engines kept for the next edit
    monkeypatch.setattr(edit_module, "LONG_S", 1.0)
    out = tmp_path / "out.wav"
    listening.clear()
    streamed = edit_file(src, out, subtype="PCM_16", **ask)
    assert listening and not any(listening)  # long: whisper and a voice engine never together
    assert releases[-1] == {"tts": True, "asr": True, "speaker": True}
    loaded_now = [tts._kokoro, tts._piper, tts._hibari, asr._model, speaker._encoder]
    assert all(f.cache_info().currsize == 0 for f in loaded_now)
    assert streamed.plan.to_dict() == in_memory.plan.to_dict()
    expected = tmp_path / "expected.wav"
    save(in_memory.audio, expected, subtype="PCM_16")
    assert np.array_equal(sf.read(out, dtype="int16")[0], sf.read(expected, dtype="int16")[0])
