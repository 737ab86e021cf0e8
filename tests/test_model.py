"""The Voicebox model core: network, flow matching, duration model, sampling, checkpoints, training."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import save_tiny_checkpoint
from voicebox.audio import Audio
from voicebox.errors import InputError, NotReadyError
from voicebox.model import checkpoint, flow, sample
from voicebox.model.config import load_config
from voicebox.model.duration import DurationNet, duration_loss, predict_durations
from voicebox.model.features import MEL, frames_for, log_mel
from voicebox.model.flow import NULL_ID, cfm_loss, span_or_random_mask
from voicebox.model.network import VoiceboxNet
from voicebox.model.phones import ARPABET, PHONE_ID

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cfg():
    return load_config(TINY)


def make_corpus(folder: Path, n: int = 6, seed: int = 0) -> Path:
    """A tiny valid corpus: each phone is a tone at its own pitch, so phones are audible in the mels."""
    rng = np.random.default_rng(seed)
    (folder / "wavs").mkdir(parents=True)
    (folder / "mels").mkdir()
    lines = []
    for k in range(n):
        phones = ["SIL"] + list(rng.choice(ARPABET, size=int(rng.integers(4, 9)))) + ["SIL"]
        durs = [int(d) for d in rng.integers(3, 12, size=len(phones))]
        pieces = []
        for p, d in zip(phones, durs, strict=True):
            t = np.arange(d * MEL.hop) / MEL.rate
            f0 = 0.0 if p == "SIL" else 100.0 + 25.0 * PHONE_ID[p]
            pieces.append(0.3 * np.sin(2 * np.pi * f0 * t) + 0.003 * rng.standard_normal(t.size))
        wave = np.concatenate(pieces).astype(np.float32)
        frames = frames_for(wave.size)
        durs[-1] += frames - sum(durs)  # centre-padded STFT has one more frame than hops
        uid = f"utt{k:03d}"
        sf.write(folder / "wavs" / f"{uid}.wav", wave, MEL.rate, subtype="PCM_16")
        stored, _ = sf.read(folder / "wavs" / f"{uid}.wav", dtype="float32")
        np.save(folder / "mels" / f"{uid}.npy", log_mel(stored).numpy().astype(np.float16))
        lines.append(
            {
                "id": uid,
                "wav": f"wavs/{uid}.wav",
                "text": "tones",
                "speaker": f"spk{k % 2}",
                "phones": phones,
                "durations": durs,
                "frames": frames,
                "seconds": wave.size / MEL.rate,
            }
        )
    (folder / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (folder / "corpus.json").write_text(json.dumps({"held_out_speakers": []}))
    return folder


def _batch(b: int = 2, t: int = 48, seed: int = 0) -> dict[str, torch.Tensor]:
    """A learnable synthetic batch: each phone has its own mel pattern."""
    g = torch.Generator().manual_seed(seed)
    phones = torch.randint(2, 41, (b, t // 6), generator=g).repeat_interleave(6, dim=1)
    table = torch.randn(45, 80, generator=g)
    mel = -5.0 + 2.0 * table[phones]
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, t - 12 :] = False
    phones = phones.masked_fill(~mask, 0)
    return {"mel": mel * mask[..., None], "frame_phones": phones, "frame_mask": mask}


def test_network_shapes_and_padding_is_ignored(cfg):
    torch.manual_seed(0)
    net = VoiceboxNet(cfg.model).eval()
    for p in net.out.parameters():  # the zero-initialised head would hide everything
        torch.nn.init.normal_(p, std=0.1)
    x, ctx = torch.randn(1, 30, 80), torch.randn(1, 30, 80)
    ph = torch.randint(2, 41, (1, 30))
    t = torch.tensor([0.3])
    alone = net(x, t, ctx, ph, torch.ones(1, 30, dtype=torch.bool))
    assert alone.shape == (1, 30, 80)
    pad = 17
    xp = torch.cat([x, 50 * torch.randn(1, pad, 80)], 1)
    cp = torch.cat([ctx, 50 * torch.randn(1, pad, 80)], 1)
    pp = torch.cat([ph, torch.zeros(1, pad, dtype=torch.long)], 1)
    mask = torch.zeros(1, 30 + pad, dtype=torch.bool)
    mask[:, :30] = True
    padded = net(xp, t, cp, pp, mask)
    assert torch.allclose(padded[:, :30], alone, atol=1e-4)
    longer = net(torch.randn(1, 500, 80), t, torch.zeros(1, 500, 80), torch.ones(1, 500).long())
    assert longer.shape == (1, 500, 80) and torch.isfinite(longer).all()


def test_masks_cover_70_to_100_percent_of_real_frames(cfg):
    fm = torch.ones(64, 100, dtype=torch.bool)
    fm[::2, 60:] = False
    g = torch.Generator().manual_seed(1)
    m = span_or_random_mask(fm, cfg.model, g)
    assert not (m & ~fm).any()
    frac = m.sum(1).float() / fm.sum(1).float()
    assert frac.min() >= 0.69 and frac.max() <= 1.0
    contiguous = [bool((torch.diff(row.int()) != 0).sum() <= 2) for row in m]
    assert 0.4 < sum(contiguous) / len(contiguous) < 1.0  # both spans and random frames occur


def test_short_spans_mask_a_word_or_two_when_asked(cfg):
    fm = torch.ones(400, 200, dtype=torch.bool)
    g = torch.Generator().manual_seed(2)
    default = span_or_random_mask(fm, cfg.model, torch.Generator().manual_seed(2))
    short_cfg = dataclasses.replace(cfg.model, p_short_span=0.3)
    m = span_or_random_mask(fm, short_cfg, g)
    frac = m.sum(1).float() / 200
    short = frac <= 0.25
    assert 0.2 < short.float().mean() < 0.4  # about p_short_span of the items
    assert frac[short].min() >= 0.03 and frac[~short].min() >= 0.69
    assert all(int((torch.diff(row.int()) != 0).sum()) <= 2 for row in m[short])  # contiguous
    assert (default.sum(1) >= 0.69 * 200).all()  # off by default: the paper's 70-100 % only


def test_flow_matching_loss_falls_on_a_tiny_batch(cfg):
    torch.manual_seed(0)
    net = VoiceboxNet(cfg.model)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    batch = _batch()
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(200):
        loss, logs = cfm_loss(net, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert 0 < logs["masked_frac"] <= 1
    assert last < 0.75 * first, (first, last)  # the floor is ~1: x0 is unknowable as t → 1


def test_phones_are_dropped_only_together_with_the_context(cfg):
    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = cfg.model
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, t, context, phones, mask):
            seen.update(context=context, phones=phones)
            return x * self.w

    batch = _batch(b=2, t=48)
    batch = {k: v.repeat(100, *[1] * (v.ndim - 1)) for k, v in batch.items()}
    cfm_loss(Spy(), batch, torch.Generator().manual_seed(0))
    real = batch["frame_mask"]
    null = ((seen["phones"] == NULL_ID) | ~real).all(1)
    no_ctx = (seen["context"] == 0).all(2).all(1)
    assert 5 <= int(null.sum()) <= 40  # ~10 % of 200
    assert bool(no_ctx[null].all())  # null phones imply no context
    assert int(no_ctx.sum()) > int(null.sum())  # the context alone is dropped more often


def test_solvers_integrate_a_known_field():
    x0 = torch.zeros(1, 3, 2)

    def field(x, t):
        return 2 * t * torch.ones_like(x)  # x(1) = x0 + 1

    assert torch.allclose(flow.solve(field, x0, 8, "midpoint"), x0 + 1, atol=1e-6)
    euler = flow.solve(field, x0, 8, "euler")
    assert torch.allclose(euler, x0 + 1 - 1 / 8, atol=1e-6)
    with pytest.raises(InputError):
        flow.solve(field, x0, 8, "rk45")
    # A swayed grid still spans [0, 1] (midpoint is exact for a linear field on any grid)...
    assert torch.allclose(flow.solve(field, x0, 8, "midpoint", sway=-1.0), x0 + 1, atol=1e-6)
    even, swayed = flow.time_grid(8), flow.time_grid(8, -1.0)
    assert swayed[0] == 0 and abs(float(swayed[-1]) - 1) < 1e-6
    # ...with its steps growing: short ones early, where the utterance is laid out.
    steps = swayed.diff()
    assert bool((steps > 0).all() and (steps.diff() > 0).all()) and steps[0] < even.diff()[0] / 3


def test_sway_override_is_checked(monkeypatch):
    monkeypatch.setenv("VOICEBOX_SWAY", "-0.5")
    assert flow.sway() == -0.5
    for bad in ("fast", "-2"):
        monkeypatch.setenv("VOICEBOX_SWAY", bad)
        with pytest.raises(InputError, match="VOICEBOX_SWAY"):
            flow.sway()


def test_guidance_combines_conditional_and_unconditional(cfg):
    torch.manual_seed(0)
    net = VoiceboxNet(cfg.model).eval()
    torch.nn.init.normal_(net.out.weight, std=0.1)
    x, ctx = torch.randn(1, 20, 80), torch.randn(1, 20, 80)
    ph = torch.randint(2, 41, (1, 20))
    t = torch.tensor(0.4)
    with torch.no_grad():
        got = flow.guided_field(net, ctx, ph, None, 0.7)(x, t)
        vc = net(x, t.expand(1), ctx, ph, None)
        vu = net(x, t.expand(1), torch.zeros_like(ctx), torch.full_like(ph, NULL_ID), None)
    assert torch.allclose(got, vc + 0.7 * (vc - vu), atol=1e-5)
    with torch.no_grad():  # only frames 5-15 generated: the unconditional branch sees just those
        trimmed = flow.guided_field(net, ctx, ph, None, 0.7, span=(5, 15))(x, t)
        vu_span = net(
            x[:, 5:15],
            t.expand(1),
            torch.zeros_like(ctx[:, 5:15]),
            torch.full_like(ph[:, 5:15], NULL_ID),
            None,
        )
    assert torch.allclose(trimmed[:, 5:15], vc[:, 5:15] + 0.7 * (vc[:, 5:15] - vu_span), atol=1e-5)
    assert torch.allclose(trimmed[:, :5], vc[:, :5]) and torch.allclose(trimmed[:, 15:], vc[:, 15:])


def test_sampling_is_seeded_and_keeps_unmasked_frames_bit_identical(cfg):
    torch.manual_seed(0)
    net = VoiceboxNet(cfg.model).eval()
    torch.nn.init.normal_(net.out.weight, std=0.1)
    ctx = -5 + 2 * torch.randn(40, 80)
    ph = torch.randint(2, 41, (40,))
    gen = torch.zeros(40, dtype=torch.bool)
    gen[10:25] = True
    a = flow.generate_mel(net, cfg.model, ph, ctx, gen, nfe=4, seed=3)
    b = flow.generate_mel(net, cfg.model, ph, ctx, gen, nfe=4, seed=3)
    c = flow.generate_mel(net, cfg.model, ph, ctx, gen, nfe=4, seed=4)
    assert torch.equal(a, b)
    assert not torch.allclose(a[gen], c[gen])
    assert torch.equal(a[~gen], ctx[~gen])
    assert not torch.allclose(a[gen], ctx[gen])


def test_duration_model_shapes_loss_and_known_phones(cfg):
    torch.manual_seed(0)
    net = DurationNet(cfg.duration)
    g = torch.Generator().manual_seed(0)
    phones = torch.randint(2, 41, (4, 12))
    durations = (phones % 7 + 2) * (phones > 0)  # a learnable phone → duration rule
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[2, 9:] = False
    batch = {"phones": phones * mask, "durations": durations * mask, "phone_mask": mask}
    assert net(phones, torch.zeros(4, 12), mask, mask).shape == (4, 12)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, logs = duration_loss(net, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 3
    net.eval()
    ids = torch.tensor([2, 10, 11, 12, 2])
    known = torch.tensor([True, True, False, False, True])
    out = predict_durations(net, ids, torch.tensor([7, 5, 0, 0, 9]), known)
    assert out.dtype == torch.long and out.shape == (5,)
    assert out[known].tolist() == [7, 5, 9] and (out >= 1).all()
    assert logs["frame_mae"] >= 0


def test_plan_keeps_matching_phones_outside_the_mask():
    ctx_phones = ["SIL", "HH", "AH", "L", "OW", "SIL"]
    ctx_durs = [5, 3, 4, 4, 6, 5]
    masked = np.zeros(27, dtype=bool)
    masked[12:16] = True  # inside "L"
    plan = sample.plan_infill(["SIL", "HH", "EH", "L", "OW", "SIL"], ctx_phones, ctx_durs, masked)
    assert plan.phone_ids.tolist() == [PHONE_ID[p] for p in ["SIL", "HH", "EH", "L", "OW", "SIL"]]
    assert plan.known.tolist() == [True, True, False, True, True, True]
    assert plan.source.tolist() == [0, 5, -1, -1, 16, 22]
    assert plan.durations[plan.known].tolist() == [5, 3, 4, 6, 5]
    assert sample.mask_frames([(0.0, 0.1)], 27).sum() == math.ceil(0.1 * MEL.fps)
    with pytest.raises(InputError):
        sample.mask_frames([(2.0, 1.0)], 27)


def test_respeak_plan_keeps_the_frames_outside_the_span_in_place():
    ctx_phones = ["SIL", "HH", "AH", "L", "OW", "SIL"]
    ctx_durs = [5, 3, 4, 4, 6, 4]  # one frame short of the mask: a trailing pause is added
    masked = np.zeros(27, dtype=bool)
    masked[10:18] = True  # cuts "AH" (2 of 4 frames inside) and "OW" (2 of 6)
    plan = sample.plan_respeak(ctx_phones, ctx_durs, masked, ["B", "IY"])
    left = int(plan.durations[: int((plan.source >= 0).cumprod(0).sum())].sum())
    assert left == 10  # the frames before the span, copied in place
    right = plan.source[plan.source >= 0][-3:].tolist()
    assert right == [18, 22, 26] and int(plan.durations[-3:].sum()) == 27 - 18
    new = [i for i, k in enumerate(plan.known.tolist()) if not k]
    assert [plan.phone_ids[i].item() for i in new] == [PHONE_ID["B"], PHONE_ID["IY"]]
    again = sample.plan_respeak(ctx_phones, ctx_durs, masked, None)  # same words, same lengths
    assert bool(again.known.all()) and int(again.durations.sum()) == 27
    with pytest.raises(InputError):
        sample.plan_respeak(ctx_phones, ctx_durs, np.zeros(27, dtype=bool), None)


def test_splice_puts_original_samples_back():
    rng = np.random.default_rng(0)
    gen = rng.standard_normal(40 * MEL.hop).astype(np.float32)
    ctx = rng.standard_normal(30 * MEL.hop).astype(np.float32)
    out = sample._splice(gen, ctx, [(0, 0, 10), (20, 15, 10)], fade=64)
    hop = MEL.hop
    assert np.array_equal(out[: 10 * hop - 64], ctx[: 10 * hop - 64])
    assert np.array_equal(out[20 * hop + 64 : 30 * hop - 64], ctx[15 * hop + 64 : 25 * hop - 64])
    assert np.array_equal(out[10 * hop : 20 * hop], gen[10 * hop : 20 * hop])


def test_checkpoint_roundtrip_and_missing_checkpoint(cfg, tmp_path, monkeypatch):
    folder = save_tiny_checkpoint(cfg, tmp_path / "ck")
    net, loaded = checkpoint.load(folder, "audio")
    assert loaded.model == cfg.model and not net.training
    monkeypatch.setenv("VOICEBOX_CHECKPOINT", str(folder))
    assert checkpoint.find() == folder
    with pytest.raises(NotReadyError, match="no trained Voicebox model"):
        checkpoint.find(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "audio.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NotReadyError, match="cannot be read"):
        checkpoint.load(tmp_path / "bad", "audio")


def test_infill_end_to_end_with_a_tiny_checkpoint(cfg, tmp_path, monkeypatch):
    folder = str(save_tiny_checkpoint(cfg, tmp_path / "ck"))
    sample.load_models.cache_clear()
    tts = sample.infill("hello", nfe=2, seed=1, checkpoint_name=folder)
    again = sample.infill("hello", nfe=2, seed=1, checkpoint_name=folder)
    assert tts.rate == 16000 and tts.duration > 0 and np.array_equal(tts.samples, again.samples)
    # Editing with a given alignment of the context ("yellow" spoken as HH EH L OW is unlike the
    # text's word "hello" = HH AH L OW): only the differing phone is generated, the rest is original.
    rng = np.random.default_rng(0)
    ctx = Audio(0.1 * rng.standard_normal(26 * MEL.hop).astype(np.float32), 16000)
    durs = [5, 3, 4, 4, 6, 5]
    aligned = sample.ContextAlignment(
        ["SIL", "HH", "EH", "L", "OW", "SIL"], durs, ["yellow"], [["HH", "EH", "L", "OW"]]
    )
    monkeypatch.setattr(sample, "_align", lambda audio, text: aligned)
    out = sample.infill("hello", ctx, None, nfe=2, seed=1, checkpoint_name=folder)
    head = 8 * MEL.hop - 160  # SIL + HH are kept, before the fade into the new phone
    assert np.array_equal(out.samples[0, :head], np.clip(ctx.samples[0, :head], -1, 1))
    tail = 13 * MEL.hop  # L OW SIL: the last 15 frames minus the fade
    assert np.array_equal(out.samples[0, -tail:], ctx.samples[0, -tail:])
    # The same text keeps every phone: without a mask the output is the context itself.
    same = sample.ContextAlignment(aligned.phones, durs, ["hello"], aligned.word_phones)
    monkeypatch.setattr(sample, "_align", lambda audio, text: same)
    kept = sample.infill("hello", ctx, None, nfe=2, seed=1, checkpoint_name=folder)
    assert np.array_equal(kept.samples, ctx.samples)
    shot = sample.zero_shot("hello", ctx, "hello", nfe=2, seed=1, checkpoint_name=folder)
    assert shot.rate == 16000 and 0 < shot.duration < 5
    sample.load_models.cache_clear()


def test_config_overrides_set_single_settings_and_refuse_nonsense():
    cfg = load_config(TINY, ["train.vocoder.lr=2e-4", "model.d_model=48", "train.seed=3"])
    assert cfg.train["vocoder"].lr == 2e-4 and cfg.model.d_model == 48
    assert all(t.seed == 3 for t in cfg.train.values())  # shared train settings reach every part
    for bad, why in [
        ("train.vocoder.lr", "SECTION.KEY=VALUE"),
        ("train..lr=1", "SECTION.KEY=VALUE"),
        ("train.vocoder.lr=[1", "not valid YAML"),
        ("train.bf16.x=1", "not a section"),
        ("model.d_modle=3", "d_modle"),
    ]:
        with pytest.raises(InputError, match=why):
            load_config(TINY, [bad])


def test_config_rejects_unknown_settings(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  d_modle: 3\n")
    with pytest.raises(InputError, match="d_modle"):
        load_config(bad)
    with pytest.raises(InputError):
        load_config(tmp_path / "missing.yaml")


def test_train_writes_checkpoints_logs_and_resumes(tmp_path):
    from voicebox.model.training.train import train

    data = make_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    first = train(TINY, data, "audio", out, max_steps=12, echo=lambda s: None)
    assert first["step"] == 12
    for name in ("audio.pt", "audio.state.pt", "config.yaml", "train_log.jsonl", "train_log.txt"):
        assert (out / name).is_file(), name
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 12 and math.isfinite(log[-1]["loss"]) and log[-1]["steps_per_s"] > 0
    second = train(TINY, data, "audio", out, max_steps=15, echo=lambda s: None)
    assert second["step"] == 15
    net, _ = checkpoint.load(out, "audio")
    assert isinstance(net, VoiceboxNet)
    dur = train(TINY, data, "duration", out, max_steps=3, echo=lambda s: None)
    assert dur["step"] == 3 and (out / "duration.pt").is_file()
    voc = train(TINY, data, "vocoder", out, max_steps=2, echo=lambda s: None)
    assert voc["step"] == 2 and (out / "vocoder.pt").is_file()
    with pytest.raises(InputError):
        train(TINY, tmp_path / "nowhere", "audio", out, max_steps=1, echo=lambda s: None)
    # a new run warm-started from the exported weights begins exactly there, at step 0
    warm = tmp_path / "warm"
    lines: list[str] = []
    again = train(TINY, data, "audio", warm, max_steps=0, init=out / "audio.pt", echo=lines.append)
    assert again["step"] == 0 and any("initialised audio" in line for line in lines)
    shipped = torch.load(out / "audio.pt", weights_only=True)["state_dict"]
    started = torch.load(warm / "audio.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(shipped[k], started[k]) for k in shipped)
    with pytest.raises(InputError, match="duration"):
        train(TINY, data, "audio", tmp_path / "w2", init=out / "duration.pt", echo=lambda s: None)


def test_train_reports_held_out_loss_and_never_trains_on_held_out_speakers(tmp_path):
    from voicebox.model.training.train import train

    data = make_corpus(tmp_path / "corpus", n=8)
    config = tmp_path / "eval.yaml"
    extra = "  eval_every: 3\n  eval_batches: 2\n  held_out_speakers: [spk1]\n"
    config.write_text(TINY.read_text().replace("train:\n", "train:\n" + extra))
    lines: list[str] = []
    train(config, data, "audio", tmp_path / "run", max_steps=3, echo=lines.append)
    assert "4 utterances" in lines[0]  # spk1's four utterances are held out
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    held = [r for r in log if "held_out_loss" in r]
    assert len(held) == 1 and 0 < held[0]["held_out_loss"] < 10 and held[0]["weights"] == "ema"


def test_adversarial_vocoder_training_saves_and_resumes_its_discriminators(tmp_path):
    from voicebox.model.training.train import train

    data = make_corpus(tmp_path / "corpus")
    plain, gan = tmp_path / "plain", tmp_path / "gan"
    train(TINY, data, "vocoder", plain, max_steps=2, echo=lambda s: None)
    on = ["train.vocoder.adversarial=true", "train.vocoder.betas=[0.8, 0.9]"]
    lines: list[str] = []
    start = plain / "vocoder.pt"
    run = train(
        TINY, data, "vocoder", gan, max_steps=2, init=start, echo=lines.append, overrides=on
    )
    assert run["step"] == 2 and any("adversarial" in line for line in lines)
    used = load_config(gan / "config.yaml").train["vocoder"]
    assert used.adversarial and used.betas == (0.8, 0.9)
    config = gan / "config.yaml"
    state = torch.load(gan / "vocoder.state.pt", weights_only=False)
    assert set(state["adversary"]) == {"disc", "optimizer", "scheduler"}
    log = [json.loads(x) for x in (gan / "train_log.jsonl").read_text().splitlines()]
    assert {"gen_adv", "feature_matching", "disc"} <= set(log[-1])
    assert train(config, data, "vocoder", gan, max_steps=3, echo=lambda s: None)["step"] == 3
    with pytest.raises(InputError, match="without discriminators"):  # a plain run's state
        train(config, data, "vocoder", plain, max_steps=3, echo=lambda s: None)
    with pytest.raises(InputError, match="only the vocoder"):
        train(TINY, data, "audio", tmp_path / "a", overrides=["train.audio.adversarial=true"])


def test_ema_weights_apply_for_a_while_then_the_model_has_its_own():
    from voicebox.model.training.train import EMA

    net = torch.nn.Linear(3, 2)
    ema = EMA(net, 0.5)
    with torch.no_grad():
        net.weight.add_(1.0)
    own = net.weight.detach().clone()
    with ema.applied(net):
        assert torch.equal(net.weight, ema.state["weight"]) and not torch.equal(net.weight, own)
    assert torch.equal(net.weight, own)
