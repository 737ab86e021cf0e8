"""The Vocos-style vocoder, its loss, Griffin-Lim and loading a trained vocoder."""

from __future__ import annotations

import numpy as np
import torch

from voicebox.model.checkpoint import load_vocoder
from voicebox.model.features import MEL, log_mel
from voicebox.model.training.vocoder_loss import vocoder_loss
from voicebox.model.vocoder import ISTFTHead, Vocoder, griffin_lim


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


def test_adversarial_loss_steps_the_discriminators_and_not_through_the_generator_loss():
    from voicebox.model.training.discriminators import AdversarialVocoderLoss, Discriminators

    torch.manual_seed(0)
    wave = _tone(32 * MEL.hop)[None].repeat(2, 1)
    batch = {"mel": log_mel(wave)[:, :32], "wave": wave}
    model = Vocoder(dim=32, hidden=64, layers=1)
    adv = AdversarialVocoderLoss(1e-3, (0.8, 0.9), lambda step: 1.0, torch.device("cpu"))
    before = {k: v.clone() for k, v in adv.disc.state_dict().items()}
    loss, logs = adv(model, batch)
    after = adv.disc.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # one discriminator step
    assert set(logs) == {"mel_l1", "gen_adv", "feature_matching", "disc"}
    assert torch.isfinite(loss) and all(np.isfinite(v) for v in logs.values())
    grads = {n: p.grad for n, p in adv.disc.named_parameters()}
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # the generator's backward leaves the discriminators' gradients as their own step left them
    assert all(p.grad is grads[n] for n, p in adv.disc.named_parameters())
    assert all(p.requires_grad for p in adv.disc.parameters())
    # every discriminator gives logits and features for any waveform length
    outs = Discriminators()(torch.randn(3, 5000))
    assert len(outs) == 8 and all(lg.shape[0] == 3 and len(f) >= 4 for lg, f in outs)


def test_discriminators_learn_to_tell_a_tone_from_noise():
    """The hinge loss falls when the discriminators see real tones against generated noise."""
    from voicebox.model.training.discriminators import Discriminators, discriminator_hinge

    torch.manual_seed(0)
    disc = Discriminators(periods=(2, 3), resolutions=((256, 64),))
    opt = torch.optim.AdamW(disc.parameters(), lr=2e-3)
    real = _tone(16 * MEL.hop)[None].repeat(2, 1)
    fake = 0.2 * torch.randn(2, 16 * MEL.hop)
    losses = []
    for _ in range(15):
        r, f = disc(real), disc(fake)
        loss = discriminator_hinge([lg for lg, _ in r], [lg for lg, _ in f])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
