"""One training loop for the three model parts (audio, duration, vocoder), resumable and DDP-ready.

AdamW with linear warm-up and cosine decay, EMA weights (what ships), bf16 autocast where the hardware
has it, atomic checkpoints every N steps, a JSON-lines loss log plus human-readable lines. Launched by
`torchrun --nproc_per_node N` it runs data-parallel (gloo on CPU, nccl on CUDA) with no changes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    WeightedRandomSampler,
)

from ...config import env
from ...errors import EngineError, InputError, NotReadyError
from .. import checkpoint
from ..config import PARTS, Config, TrainConfig, dump_config, load_config
from ..network import bf16_supported

LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


def lr_lambda(tcfg: TrainConfig) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up, then cosine decay to min_lr_ratio at total_steps."""

    def factor(step: int) -> float:
        if step < tcfg.warmup_steps:
            return (step + 1) / max(1, tcfg.warmup_steps)
        span = max(1, tcfg.total_steps - tcfg.warmup_steps)
        progress = min(1.0, (step - tcfg.warmup_steps) / span)
        return tcfg.min_lr_ratio + (1 - tcfg.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    return factor


class EMA:
    """Exponential moving average of a model's floating-point state (the weights that ship)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend the model's current weights in (decay warms up so early steps are not frozen)."""
        d = min(self.decay, (1 + step) / (10 + step))
        current = model.state_dict()
        keys = [k for k, v in self.state.items() if v.is_floating_point()]
        torch._foreach_lerp_(
            [self.state[k] for k in keys], [current[k].float() for k in keys], 1 - d
        )
        for k, v in self.state.items():
            if not v.is_floating_point():
                v.copy_(current[k])

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """The model with the averaged weights in place for a while (evaluation), then its own."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(own)


def _parts(part: str) -> tuple[Callable[[Any, int], Dataset], Callable, LossFn]:
    """Dataset factory, collate function and loss for one part (the data side is model.data/vocoder)."""
    try:
        from . import data
    except ImportError as exc:
        raise NotReadyError(f"the training data module is not available: {exc}") from None
    if part == "audio":
        from ..flow import cfm_loss

        return data.MelPhoneDataset, data.collate_mel_phone, cfm_loss
    if part == "duration":
        from ..duration import duration_loss

        return data.MelPhoneDataset, data.collate_mel_phone, duration_loss
    if part == "vocoder":
        try:
            from .vocoder_loss import vocoder_loss
        except ImportError as exc:
            raise NotReadyError(f"the vocoder module is not available: {exc}") from None
        return data.WaveMelDataset, data.collate_wave_mel, vocoder_loss
    raise InputError(f"unknown part {part!r}: choose one of {', '.join(PARTS)}")


def _frames(batch: dict[str, torch.Tensor]) -> int:
    if "frame_mask" in batch:
        return int(batch["frame_mask"].sum())
    mel = batch["mel"]
    return int(mel.shape[0] * mel.shape[1])


class _Run:
    """Process-group facts for this process (a single process is rank 0 of 1)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.distributed = self.world > 1
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{self.local_rank}" if cuda else "cpu")
        if self.distributed and not dist.is_initialized():
            if cuda:
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend="nccl" if cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t) / self.world

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _batches(loader: DataLoader, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise InputError("the corpus has fewer utterances than one batch; lower batch_size")
        epoch += 1


class _Logger:
    """Writes train_log.jsonl and train_log.txt in the output folder and prints the same lines."""

    def __init__(self, out: Path, enabled: bool, echo: Callable[[str], None]) -> None:
        self.out, self.enabled, self.echo = out, enabled, echo

    def __call__(self, record: dict[str, Any], line: str) -> None:
        if not self.enabled:
            return
        with open(self.out / "train_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        with open(self.out / "train_log.txt", "a") as f:
            f.write(line + "\n")
        self.echo(line)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _make_loader(
    part: str, config: Config, data_dir: Path, run: _Run
) -> tuple[DataLoader, DataLoader | None, LossFn]:
    """Training loader (held-out speakers removed) and, when asked for, a fixed held-out loader."""
    tcfg = config.train[part]
    dataset_cls, collate, loss_fn = _parts(part)
    from .data import Corpus

    if not data_dir.is_dir():
        raise InputError(f"corpus folder not found: {data_dir}")
    # Speakers held out for benchmarks (train config, else the corpus recipe's list) are never seen.
    corpus, held_out = Corpus(data_dir).split(tcfg.held_out_speakers or None)
    if len(corpus) == 0:
        raise InputError(f"corpus {data_dir} has no utterances outside the held-out speakers")
    dataset = dataset_cls(corpus, tcfg.max_frames)
    if len(dataset) < tcfg.batch_size * run.world:
        raise InputError(
            f"corpus {data_dir} has {len(dataset)} utterances; need at least "
            f"batch_size × processes = {tcfg.batch_size * run.world}"
        )
    if tcfg.source_weights:
        if run.distributed:
            raise InputError("source_weights are not supported under torchrun yet")
        sampler = WeightedRandomSampler(
            corpus.sampling_weights(tcfg.source_weights),
            num_samples=len(dataset),
            generator=torch.Generator().manual_seed(tcfg.seed),
        )
    elif run.distributed:
        sampler = DistributedSampler(dataset, shuffle=True, seed=tcfg.seed, drop_last=True)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(tcfg.seed))
    loader = DataLoader(
        dataset,
        batch_size=tcfg.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=tcfg.num_workers,
        drop_last=True,
        persistent_workers=tcfg.num_workers > 0,
    )
    evaluation = None
    if tcfg.eval_every > 0 and run.main and len(held_out) > 0:
        held = dataset_cls(held_out, tcfg.max_frames, random_crop=False)
        evaluation = DataLoader(held, batch_size=tcfg.batch_size, shuffle=False, collate_fn=collate)
    return loader, evaluation, loss_fn


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: LossFn,
    part: str,
    batches: int,
    device: torch.device,
) -> float:
    """Mean loss over the first `batches` held-out batches with fixed noise and masks (comparable
    across steps and runs)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    losses = []
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        loss, _ = loss_fn(model, batch, generator) if part != "vocoder" else loss_fn(model, batch)
        losses.append(float(loss))
    model.train(was_training)
    return sum(losses) / max(1, len(losses))


def _warm_start(model: nn.Module, path: Path, part: str, device: torch.device) -> int:
    """Load an exported part's weights into `model`; returns the step it was exported at."""
    try:
        data = torch.load(path, map_location=device, weights_only=True)
        if data.get("part") != part:
            raise InputError(f"--init {path} holds the {data.get('part')!r} part, not {part!r}")
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
        )
    except (OSError, RuntimeError, KeyError, AttributeError) as exc:
        raise InputError(f"cannot start from {path}: {type(exc).__name__}: {exc}") from None
    return int(data.get("step", 0))


def train(
    config_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    part: str,
    out_dir: str | os.PathLike[str],
    resume: bool = True,
    max_steps: int | None = None,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
    total_steps: int | None = None,
    init: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Train one part on a corpus folder, writing checkpoints and logs to out_dir; returns a summary
    (step reached, last logged loss). Stops at max_steps (if given) or total_steps (the LR schedule's
    length: the argument, else the config's). `init` (an exported `<part>.pt`) warm-starts a new run
    from trained weights with a fresh optimiser and schedule, e.g. to go on training a shipped
    checkpoint on more data; a run that resumes from its own state ignores it. `overrides`
    ("train.vocoder.lr=2e-4", ...) change single settings of the config file; a new run writes the
    config it used to out_dir/config.yaml."""
    if part not in PARTS:
        raise InputError(f"unknown part {part!r}: choose one of {', '.join(PARTS)}")
    config = load_config(config_path, overrides)
    tcfg = config.train[part]
    if tcfg.adversarial and part != "vocoder":
        raise InputError(
            f"train.{part}.adversarial: only the vocoder trains against discriminators"
        )
    if total_steps is not None:
        if total_steps < 1:
            raise InputError("total_steps must be at least 1")
        tcfg.total_steps = total_steps
    n_threads = threads or int(env("threads", "0") or 0) or tcfg.threads
    torch.set_num_threads(max(1, n_threads))
    run = _Run()
    try:
        return _train(
            config, Path(data_dir), part, Path(out_dir), resume, max_steps, run, echo, init
        )
    finally:
        run.close()


@dataclass
class _Trainer:
    """One part's network, EMA, optimiser and schedule, and the step they have reached."""

    part: str
    config: Config
    out: Path
    run: _Run
    echo: Callable[[str], None]
    model: nn.Module = field(init=False)
    step: int = 0

    def __post_init__(self) -> None:
        tcfg = self.tcfg
        self.model = checkpoint.build(self.part, self.config).to(self.run.device)
        self.ema = EMA(self.model, tcfg.ema_decay)
        self.adversary = None
        if self.part == "vocoder" and tcfg.adversarial:
            from .discriminators import AdversarialVocoderLoss

            self.adversary = AdversarialVocoderLoss(
                tcfg.lr, tcfg.betas, lr_lambda(tcfg), self.run.device, self.run.distributed
            )
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params, lr=tcfg.lr, betas=tcfg.betas, weight_decay=tcfg.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(tcfg))
        self.state_path = self.out / f"{self.part}.state.pt"

    @property
    def tcfg(self) -> TrainConfig:
        return self.config.train[self.part]

    def restore(self, resume: bool, init: str | os.PathLike[str] | None) -> None:
        """Resume from this run's own state, else warm-start from `init`, else start fresh."""
        main, part = self.run.main, self.part
        if resume and self.state_path.is_file():
            state = torch.load(self.state_path, map_location=self.run.device, weights_only=False)
            self.model.load_state_dict(state["model"])
            self.ema.state = {k: v.to(self.run.device) for k, v in state["ema"].items()}
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            self.step = int(state["step"])
            if self.adversary is not None:
                if "adversary" not in state:
                    raise InputError(
                        f"{self.state_path} was trained without discriminators; start the "
                        f"adversarial run in a new folder with --init {self.out / (part + '.pt')}"
                    )
                self.adversary.load_state_dict(state["adversary"])
            if main:
                self.echo(f"resumed {part} from {self.state_path} at step {self.step}")
            return
        if init is not None:
            start = _warm_start(self.model, Path(init), part, self.run.device)
            self.ema = EMA(self.model, self.tcfg.ema_decay)
            if main:
                self.echo(f"initialised {part} from {init} (trained {start} steps there)")
        if main:
            (self.out / "config.yaml").write_text(dump_config(self.config))

    def save(self) -> None:
        """The resumable state and the shipped EMA export, atomically (rank 0 writes)."""
        if self.run.main:
            state = {
                "model": self.model.state_dict(),
                "ema": self.ema.state,
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "step": self.step,
                "config": self.config.to_dict(),
            }
            if self.adversary:
                state["adversary"] = self.adversary.state_dict()
            checkpoint.save(state, self.state_path)
            export = self.out / f"{self.part}.pt"
            checkpoint.export(export, self.part, self.config, self.ema.state, self.step)
        self.run.barrier()

    def update(
        self, net: nn.Module, loss_fn: LossFn, batch: dict, generator: torch.Generator, bf16: bool
    ) -> tuple[float, dict[str, float], float] | None:
        """One optimisation step: (loss, logs, gradient norm), or None when the loss was not finite
        (the batch is skipped; ten in a row stop the run)."""
        with torch.autocast(self.run.device.type, dtype=torch.bfloat16, enabled=bf16):
            if self.part != "vocoder":
                loss, logs = loss_fn(net, batch, generator)
            else:
                loss, logs = loss_fn(net, batch)
        finite = bool(torch.isfinite(loss.detach()))
        if self.run.distributed:  # every rank must skip together or DDP would wait forever
            finite = self.run.mean(float(finite)) == 1.0
        self.opt.zero_grad(set_to_none=True)
        if not finite:
            return None
        loss.backward()
        grad_norm = float(nn.utils.clip_grad_norm_(self.params, self.tcfg.grad_clip))
        self.opt.step()
        self.sched.step()
        self.step += 1
        self.ema.update(self.model, self.step)
        return float(loss.detach()), logs, grad_norm


@dataclass
class _Window:
    """What happened since the last log line."""

    t0: float = field(default_factory=time.perf_counter)
    frames: int = 0
    losses: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    def add(self, loss: float, logs: dict[str, float], frames: int) -> None:
        self.frames += frames
        self.losses.append(loss)
        for k, v in logs.items():
            self.extra[k] = self.extra.get(k, 0.0) + float(v)


def _report(
    t: _Trainer, w: _Window, grad_norm: float, stop: int, started: float, log: _Logger
) -> dict[str, Any]:
    """Log the window's mean loss and speed; returns the record."""
    elapsed = time.perf_counter() - w.t0
    n = len(w.losses)
    mean_loss = t.run.mean(sum(w.losses) / n)
    record = {
        "step": t.step,
        "loss": mean_loss,
        "lr": t.opt.param_groups[0]["lr"],
        "grad_norm": grad_norm,
        "steps_per_s": n / elapsed,
        "frames_per_s": w.frames * t.run.world / elapsed,
        "elapsed_s": time.perf_counter() - started,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        **{k: v / n for k, v in w.extra.items()},
    }
    eta = (stop - t.step) / max(1e-9, n / elapsed)
    log(
        record,
        f"{t.part} step {t.step}/{stop} loss {mean_loss:.4f} lr {record['lr']:.2e} "
        f"gn {grad_norm:.2f} {record['steps_per_s']:.2f} steps/s "
        f"{record['frames_per_s']:.0f} frames/s eta {_fmt_time(eta)}",
    )
    return record


def _start(t: _Trainer, n_utts: int, stop: int, bf16: bool) -> None:
    """Record the command line and announce the run."""
    if not t.run.main:
        return
    with open(t.out / "COMMAND.md", "a") as f:
        argv = " ".join(shlex.quote(a) for a in sys.argv)
        f.write(
            f"- {time.strftime('%Y-%m-%d %H:%M:%S')} part={t.part} world={t.run.world}: `{argv}`\n"
        )
    n_params = sum(p.numel() for p in t.params)
    t.echo(
        f"training {t.part}: {n_params / 1e6:.2f} M parameters, {n_utts} utterances, "
        f"batch {t.tcfg.batch_size}×{t.run.world}, bf16 {bf16}, threads {torch.get_num_threads()}, "
        f"device {t.run.device}, steps {t.step}→{stop}"
        + (", adversarial (discriminators)" if t.adversary else "")
    )


def _train(
    config: Config,
    data_dir: Path,
    part: str,
    out: Path,
    resume: bool,
    max_steps: int | None,
    run: _Run,
    echo: Callable[[str], None],
    init: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    tcfg = config.train[part]
    seed = tcfg.seed + 1000 * run.rank
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if run.main:
        out.mkdir(parents=True, exist_ok=True)
    run.barrier()
    log = _Logger(out, run.main, echo)
    loader, eval_loader, loss_fn = _make_loader(part, config, data_dir, run)
    t = _Trainer(part, config, out, run, echo)
    t.restore(resume, init)
    train_loss: LossFn = t.adversary or loss_fn  # held-out evaluation keeps the plain loss
    net: nn.Module = t.model
    if run.distributed:
        ids = [run.device.index] if run.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(t.model, device_ids=ids)
    bf16 = tcfg.bf16 and bf16_supported(run.device)
    generator = torch.Generator().manual_seed(seed + 7919 * t.step)
    stop = min(max_steps, tcfg.total_steps) if max_steps is not None else tcfg.total_steps
    _start(t, len(loader.dataset), stop, bf16)

    t.model.train()
    batches = _batches(loader, epoch=t.step // max(1, len(loader)))
    window, last, bad, started = _Window(), {}, 0, time.perf_counter()
    while t.step < stop:
        batch = {k: v.to(run.device) if torch.is_tensor(v) else v for k, v in next(batches).items()}
        done = t.update(net, train_loss, batch, generator, bf16)
        if done is None:
            bad += 1
            if bad >= 10:
                raise EngineError(
                    f"{part} training diverged (non-finite loss 10 times) at step {t.step}"
                )
            continue
        bad = 0
        loss, logs, grad_norm = done
        window.add(loss, logs, _frames(batch))
        if t.step % tcfg.log_every == 0 or t.step == stop:
            last = _report(t, window, grad_norm, stop, started, log)
            window = _Window()
        if tcfg.eval_every and t.step % tcfg.eval_every == 0:
            if eval_loader is not None:
                with t.ema.applied(t.model):  # the weights that ship, not the raw ones at high LR
                    held = evaluate(
                        t.model, eval_loader, loss_fn, part, tcfg.eval_batches, run.device
                    )
                log(
                    {"step": t.step, "held_out_loss": held, "weights": "ema"},
                    f"{part} step {t.step} held-out loss {held:.4f} (EMA weights)",
                )
            run.barrier()
        if t.step % tcfg.checkpoint_every == 0 and t.step < stop:
            t.save()
    t.save()
    return {"part": part, "step": t.step, "loss": last.get("loss"), "out": str(out)}
