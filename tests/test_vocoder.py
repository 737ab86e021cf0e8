"""The Vocos-style vocoder, its loss, Griffin-Lim and loading a trained vocoder."""

from __future__ import annotations

import numpy as np
import torch

from voicebox.model.features import MEL, log_mel
from voicebox.model.vocoder import ISTFTHead, Vocoder, griffin_lim, load_vocoder, vocoder_loss


def _tone(n: int) -> torch.Tensor:
    t = torch.arange(n) / MEL.rate
    f0 = 140 + 40 * torch.sin(2 * torch.pi * 2 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / MEL.rate
    x = sum(torch.sin(k * phase) / k for k in range(1, 8)) * 0.2
    return x.float()


def test_forward_shape_and_size():
    torch.manual_seed(0)
    model = Vocoder()
    n_params = sum(p.numel() for p in model.parameters())
    assert 1e6 <= n_params <= 2.5e6
    wave = model(torch.randn(2, 20, 80))
    assert wave.shape == (2, 20 * MEL.hop) and torch.isfinite(wave).all()


def test_istft_head_inverts_a_centred_stft():
    """Given the true STFT, the head's overlap-add returns the signal, aligned with log_mel frames."""
    head = ISTFTHead(8)
    x = torch.randn(1, 40 * MEL.hop)
    spec = torch.stft(
        x, MEL.n_fft, MEL.hop, window=torch.hann_window(MEL.n_fft), return_complex=True
    )
    y = head._istft(spec)
    assert y.shape[1] >= x.shape[1]
    assert torch.allclose(y[:, : x.shape[1] - MEL.n_fft], x[:, : x.shape[1] - MEL.n_fft], atol=1e-4)


def test_loss_decreases_on_one_segment():
    torch.manual_seed(0)
    wave = _tone(32 * MEL.hop)[None]
    batch = {"mel": log_mel(wave)[:, :32], "wave": wave}
    model = Vocoder(dim=64, hidden=128, layers=2)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss, logs = vocoder_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert set(logs) == {"stft", "mel_l1"}
    assert losses[-1] < 0.75 * losses[0]


def test_griffin_lim_reconstructs_the_spectrum():
    x = _tone(MEL.rate)
    mel = log_mel(x)
    y = griffin_lim(mel)
    assert y.shape == ((mel.shape[0] - 1) * MEL.hop,) and y.dtype == np.float32
    err = (log_mel(torch.from_numpy(y)) - mel).abs()[2:-2].mean()
    assert err < 0.5  # log-mel L1 of the re-analysed output


def test_load_vocoder(tmp_path):
    from voicebox.model import checkpoint
    from voicebox.model.config import Config, VocoderConfig

    assert load_vocoder(tmp_path / "nothing-here") is None
    config = Config(vocoder=VocoderConfig(params={"dim": 32, "hidden": 64, "layers": 1}))
    model = checkpoint.build("vocoder", config)
    checkpoint.export(tmp_path / "vocoder.pt", "vocoder", config, model.state_dict(), step=1)
    vocode = load_vocoder(tmp_path)
    assert vocode is not None
    out = vocode(np.full((25, 80), -5.0, np.float32))
    assert out.shape == (25 * MEL.hop,) and np.abs(out).max() <= 1.0
    assert load_vocoder(tmp_path / "vocoder.pt") is not None
