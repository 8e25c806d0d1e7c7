"""One training loop for every head.

Any ``nn.Module`` with ``forward(batch) -> (loss, info)`` that also has the
:class:`~a2a_temporal.pretrained.PretrainedMixin` (for ``save_pretrained``) can be trained. The
loop runs through HF accelerate, so ``accelerate launch`` (or ``torchrun``) spreads it over
several processes or GPUs without code changes; ``batch_size`` is per process.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError
from ..pretrained import CheckpointError, migrate_config
from .checkpoint import (load_training_state, point_link, prune_checkpoints, rng_state,
                         save_checkpoint, step_dir_name)
from .config import TrainConfig
from .ema import EMA
from .sampler import StepBatchSampler

EvalFn = Callable[[torch.nn.Module, int], dict]

# Keys that may change when a run is resumed: bookkeeping, not what is learned.
RESUME_MAY_CHANGE = ("output_dir", "train.resume", "train.force_resume", "train.stop_after", "train.threads",
                     "train.num_workers", "train.log_every", "train.save_every", "train.keep_last", "eval.")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_changes(old: dict, new: dict, may_change=RESUME_MAY_CHANGE) -> list[str]:
    """``key: old -> new`` for every setting that differs, bookkeeping keys excepted."""
    a = _flatten(json.loads(json.dumps(old, default=str)))
    b = _flatten(json.loads(json.dumps(new, default=str)))
    diffs = []
    for key in sorted(set(a) | set(b)):
        if any(key == m or (m.endswith(".") and key.startswith(m)) for m in may_change):
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            diffs.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return diffs


def cosine_with_warmup(optimizer, warmup_iterations: int, total_iterations: int):
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, warmup_iterations, total_iterations)


def move_to(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def seed_init(seed: int) -> None:
    """Seed Python, numpy and torch before a command builds its model, so ``train.seed`` fixes the
    initial weights too. Without it torch starts each process from a fresh random state: two runs of
    one command began from different weights, and no seed reproduced a run's initialisation."""
    from accelerate.utils import set_seed
    set_seed(seed)


class Trainer:
    """Train ``model`` on ``dataset`` for ``cfg.iterations`` iterations, writing to ``output_dir``.

    Args:
        eval_fn: ``(eval_model, step) -> metrics`` run on the main process every
            ``cfg.eval_every`` iterations and at the end; ``eval_model`` holds the EMA weights.
        run_config: the tool's full config (a dict), stored beside the checkpoints.
        pretrained_extra: extra keys for ``pretrained_model/config.json``.
    """

    def __init__(self, model: torch.nn.Module, dataset: Dataset, cfg: TrainConfig,
                 output_dir: str | Path, *, eval_fn: EvalFn | None = None, collate_fn=None,
                 run_config: dict | None = None, pretrained_extra: dict | None = None,
                 accelerator=None, progress: bool = True):
        from accelerate import Accelerator, DistributedDataParallelKwargs

        self.cfg = cfg
        self.out = Path(output_dir)
        self.ckpt_root = self.out / "checkpoints"
        self.eval_fn = eval_fn
        self.run_config = run_config or {}
        self.pretrained_extra = pretrained_extra
        self.progress = progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        ddp = DistributedDataParallelKwargs(find_unused_parameters=cfg.ddp_find_unused_parameters)
        # Without a GPU, run on the CPU; several processes then talk through gloo.
        self.acc = accelerator or Accelerator(mixed_precision=cfg.mixed_precision, kwargs_handlers=[ddp],
                                              cpu=not torch.cuda.is_available())
        torch.manual_seed(cfg.seed + self.acc.process_index)
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.model = model.to(self.acc.device)
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=tuple(cfg.betas))
        self.scheduler = cosine_with_warmup(self.optimizer, cfg.warmup_iterations, cfg.iterations)
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.step = 0
        self.eval_seconds = 0.0
        self.best = -math.inf
        self.prior_train_seconds = 0.0  # training time of earlier runs this one resumed
        self.prior_train_cpu_seconds = 0.0
        self.eval_cpu_seconds = 0.0
        self._run_start = time.perf_counter()
        self._run_cpu_start = time.process_time()
        self._load_samples: list[float] = []
        self.history: list[dict] = []
        if cfg.resume:
            self._resume()
        elif (self.ckpt_root / "last").exists():
            raise ConfigError(f"{self.out} already holds a training run; pass --train.resume=true to continue "
                              "it, or choose another output directory")
        self.ddp_model, self.optimizer = self.acc.prepare(model, self.optimizer)

    # ----------------------------------------------------------------------------- state
    @property
    def is_main(self) -> bool:
        return self.acc.is_main_process

    def eval_model(self) -> torch.nn.Module:
        """The weights used for evaluation and export (EMA when enabled)."""
        return self.ema.module if self.ema is not None else self.model

    def _resume(self) -> None:
        last = self.ckpt_root / "last"
        if not last.exists():
            raise CheckpointError(f"{last}: no checkpoint to resume from (train.resume=true)")
        saved = self.out / "run_config.json"
        if saved.is_file() and self.run_config and not self.cfg.force_resume:
            old = migrate_config(json.loads(saved.read_text()))
            if isinstance(old.get("train"), dict):  # TrainConfig renames
                for a, b in (("steps", "iterations"), ("warmup_steps", "warmup_iterations")):
                    if a in old["train"] and b not in old["train"]:
                        old["train"][b] = old["train"].pop(a)
            diffs = config_changes(old, self.run_config)
            if diffs:
                shown = "; ".join(diffs[:6]) + (f"; +{len(diffs) - 6} more" if len(diffs) > 6 else "")
                raise ConfigError(f"{saved}: resuming with a changed config ({shown}); restore those settings, "
                                  "choose a new output directory, or pass --train.force_resume=true")
        state = load_training_state(last, self.model, self.ema, self.optimizer, self.scheduler,
                                    rank=self.acc.process_index)
        self.step = int(state["step"])
        self.best = float(state.get("best", -math.inf))
        self.prior_train_seconds = float(state.get("train_time_s", 0.0))
        self.prior_train_cpu_seconds = float(state.get("train_cpu_s", 0.0))

    def train_seconds(self) -> float:
        """Wall time spent training (evaluation excluded), summed over resumed runs."""
        return self.prior_train_seconds + time.perf_counter() - self._run_start - self.eval_seconds

    def train_cpu_seconds(self) -> float:
        """Process CPU time (all threads) spent training, evaluation excluded, summed over resumes."""
        return self.prior_train_cpu_seconds + time.process_time() - self._run_cpu_start - self.eval_cpu_seconds

    def save(self, best: bool = False) -> Path | None:
        """Checkpoint the current step (main process writes; all processes sync)."""
        rngs = [rng_state()]
        if self.acc.num_processes > 1:
            from accelerate.utils import gather_object
            rngs = gather_object(rngs)  # one entry per rank, in rank order
        path = None
        if self.is_main:
            path = save_checkpoint(self.ckpt_root, self.step, self.model, self.ema, self.optimizer,
                                   self.scheduler, {"best": self.best, "train_time_s": self.train_seconds(),
                                                    "train_cpu_s": self.train_cpu_seconds()}, rngs,
                                   {**(self.pretrained_extra or {}), "train_step": self.step})
            if best:
                point_link(self.ckpt_root / "best", step_dir_name(self.step))
            prune_checkpoints(self.ckpt_root, self.cfg.keep_last)
        self.acc.wait_for_everyone()
        return path

    # ----------------------------------------------------------------------------- loop
    def _loader(self) -> DataLoader:
        sampler = StepBatchSampler(len(self.dataset), self.cfg.batch_size, self.cfg.iterations,
                                   seed=self.cfg.seed, start_step=self.step,
                                   world_size=self.acc.num_processes, rank=self.acc.process_index)
        # Own generator: creating the iterator must not draw from the global RNG (exact resume).
        gen = torch.Generator().manual_seed(self.cfg.seed + 7919 * self.step + self.acc.process_index)
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.cfg.num_workers,
                          collate_fn=self.collate_fn, persistent_workers=self.cfg.num_workers > 0,
                          generator=gen)

    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        self.history.append(record)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.writer.add_scalar(k, v, record["step"])

    def evaluate(self) -> dict:
        if self.eval_fn is None:
            return {}
        metrics = {}
        # Training time so far (evaluation excluded): learning curves against time, not only steps.
        clock = {"train_time_s": round(self.train_seconds(), 2), "train_cpu_s": round(self.train_cpu_seconds(), 2)}
        t0, c0 = time.perf_counter(), time.process_time()
        if self.is_main:
            model = self.eval_model()
            was_training = model.training
            model.eval()
            with torch.no_grad():
                metrics = dict(self.eval_fn(model, self.step))
            model.train(was_training)
            self._log({"step": self.step, **clock, **{f"eval/{k}": v for k, v in metrics.items()}})
        self.acc.wait_for_everyone()
        self.eval_seconds += time.perf_counter() - t0
        self.eval_cpu_seconds += time.process_time() - c0
        return metrics

    def _maybe_best(self, metrics: dict) -> bool:
        key = self.cfg.best_metric
        if key is None or key not in metrics:
            return False
        if float(metrics[key]) >= self.best:  # ties go to the later (longer-trained) checkpoint
            self.best = float(metrics[key])
            return True
        return False

    def fit(self, until: int | None = None) -> dict:
        """Run to ``cfg.iterations`` (or stop early after step ``until``, checkpointed, so that a
        later ``train.resume=true`` continues exactly). Returns a summary, also written to
        ``train_summary.json``."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        if until is None and cfg.stop_after:
            until = cfg.stop_after  # e.g. compare objectives at the same point of one schedule
        self.writer = None
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "run_config.json").write_text(json.dumps(self.run_config, indent=2, default=str))
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        self.model.train()
        bar = tqdm(total=cfg.iterations, initial=self.step, disable=not (self.progress and self.is_main),
                   desc="train", dynamic_ncols=True)
        sums: dict[str, float] = {}
        count, t_window, t_start = 0, time.perf_counter(), time.perf_counter()
        self._run_start, self.eval_seconds = t_start, 0.0
        self._run_cpu_start, self.eval_cpu_seconds = time.process_time(), 0.0
        self._load_samples = [os.getloadavg()[0]]
        start_step = self.step
        if cfg.eval_at_start and self.step == 0 and self.eval_fn is not None:
            self.evaluate()  # logged at step 0; never selects `best` (nothing was trained)
        for batch in self._loader():
            batch = move_to(batch, self.acc.device)
            with self.acc.autocast():
                loss, info = self.ddp_model(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; "
                                         "check the data for NaN/inf and lower train.lr")
            self.optimizer.zero_grad(set_to_none=True)
            self.acc.backward(loss)
            if cfg.grad_clip > 0:
                grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
            if self.acc.num_processes > 1:  # log the loss of the global batch
                loss = self.acc.reduce(loss.detach(), reduction="mean")
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            for k, v in info.items():
                if torch.is_tensor(v) and v.ndim == 0:
                    sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            bar.update(1)
            if cfg.log_every and (self.step % cfg.log_every == 0 or self.step == cfg.iterations):
                now = time.perf_counter()
                rec = {"step": self.step, **{k: v / count for k, v in sums.items()},
                       "lr": self.scheduler.get_last_lr()[0], "iterations_per_s": count / (now - t_window)}
                self._load_samples.append(os.getloadavg()[0])
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
                self._log(rec)
                sums, count, t_window = {}, 0, now
            is_last = self.step == cfg.iterations
            stop = until is not None and self.step >= until
            metrics = {}
            if self.eval_fn is not None and (is_last or stop or (cfg.eval_every and self.step % cfg.eval_every == 0)):
                metrics = self.evaluate()
            best = self._maybe_best(metrics) if self.is_main else False
            if self.acc.num_processes > 1:
                from accelerate.utils import broadcast_object_list
                best = broadcast_object_list([best])[0]
            if is_last or stop or best or (cfg.save_every and self.step % cfg.save_every == 0):
                self.save(best=best)
            if stop:
                break
        bar.close()
        wall = time.perf_counter() - t_start
        summary = {"iterations": self.step, "iterations_this_run": self.step - start_step,
                   "wall_time_s": round(wall, 2), "eval_time_s": round(self.eval_seconds, 2),
                   "train_time_s": round(self.train_seconds(), 2),
                   "train_cpu_s": round(self.train_cpu_seconds(), 2),
                   "eval_cpu_s_main_process": round(self.eval_cpu_seconds, 2),
                   "train_time_s_this_run": round(wall - self.eval_seconds, 2),
                   "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                   # 1-minute load average sampled at every log line: above torch_threads + ~0.5
                   # means another job shared the cores and the wall times are inflated.
                   "load_avg_mean": round(sum(self._load_samples) / max(1, len(self._load_samples)), 2),
                   "load_avg_max": round(max(self._load_samples, default=0.0), 2),
                   "final": self.history[-1] if self.history else {},
                   "checkpoint": str(self.ckpt_root / "last"), "best": self.best if self.best > -math.inf else None}
        if self.is_main:
            (self.out / "train_summary.json").write_text(json.dumps(summary, indent=2))
            if self.writer is not None:
                self.writer.close()
        return summary
