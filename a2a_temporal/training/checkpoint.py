"""Training checkpoints without pickle.

Layout of ``OUTPUT_DIR/checkpoints/``::

    0001000/
        pretrained_model/{config.json, model.safetensors}   # EMA weights when EMA is on
        training_state/{state.json, model.safetensors, ema.safetensors,
                        optimizer.safetensors, rng_state_<rank>.safetensors}
    last -> 0001000        # symlink, replaced atomically after a complete write
    best -> 0000500

A step directory is written under a temporary name and renamed when complete, and ``last`` /
``best`` move only afterwards, so a crash or Ctrl-C mid-save never replaces a good checkpoint.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..pretrained import (CONFIG_NAME, CheckpointError, atomic_directory, fsync_dir, load_into,
                          load_state_dict_file, save_state_dict)

PRETRAINED_DIR = "pretrained_model"
STATE_DIR = "training_state"


def step_dir_name(step: int) -> str:
    return f"{step:07d}"


def flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer ``state_dict`` into tensors (safetensors) and JSON-able rest."""
    tensors, scalars = {}, {}
    for pid, st in opt_state["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"state.{pid}.{name}"] = val
            else:
                scalars[f"{pid}.{name}"] = val
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in opt_state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, val in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = val
    for key, val in meta.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = val
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {"python": _to_json(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate(_from_json(meta["python"]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))


def _to_json(x):
    return [_to_json(v) for v in x] if isinstance(x, (tuple, list)) else x


def _from_json(x):
    return tuple(_from_json(v) for v in x) if isinstance(x, list) else x


def save_checkpoint(root: Path, step: int, model, ema, optimizer, scheduler, extra_state: dict,
                    rng_per_rank: list[tuple[dict, dict]], pretrained_extra: dict | None = None) -> Path:
    """Write ``root/<step>/`` completely, then point ``root/last`` at it."""
    root = Path(root)
    final = root / step_dir_name(step)
    with atomic_directory(final) as tmp:
        pre = tmp / PRETRAINED_DIR
        pre.mkdir()
        eval_state = ema.state_dict() if ema is not None else model.state_dict()
        model.write_pretrained(pre, pretrained_extra, state=eval_state)
        st = tmp / STATE_DIR
        st.mkdir()
        save_state_dict(model.state_dict(), st / "model.safetensors")
        if ema is not None:
            save_state_dict(ema.state_dict(), st / "ema.safetensors")
        opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
        save_state_dict(opt_tensors, st / "optimizer.safetensors")
        for rank, (tensors, meta) in enumerate(rng_per_rank):
            save_state_dict(tensors, st / f"rng_state_{rank}.safetensors")
            (st / f"rng_state_{rank}.json").write_text(json.dumps(meta))
        state = {"step": step, "optimizer": opt_meta, "scheduler": _jsonable(scheduler.state_dict()),
                 "ema_updates": ema.updates if ema is not None else 0, **extra_state}
        (st / "state.json").write_text(json.dumps(state, indent=1))
    point_link(root / "last", final.name)
    return final


def _jsonable(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, list, type(None)))}


def point_link(link: Path, target_name: str) -> None:
    """Atomically make ``link`` a relative symlink to ``target_name`` (a sibling)."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target_name, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def load_training_state(ckpt: Path, model, ema, optimizer, scheduler, rank: int = 0) -> dict:
    """Restore everything ``save_checkpoint`` wrote; returns ``state.json``'s content."""
    st = Path(ckpt) / STATE_DIR
    if not (st / "state.json").is_file():
        raise CheckpointError(f"{st / 'state.json'}: not found; cannot resume from {ckpt}")
    state = json.loads((st / "state.json").read_text())
    load_into(model, load_state_dict_file(st / "model.safetensors"), str(st / "model.safetensors"))
    if ema is not None:
        if not (st / "ema.safetensors").is_file():
            raise CheckpointError(f"{st / 'ema.safetensors'}: not found but train.ema_decay > 0")
        ema.load_state_dict(load_state_dict_file(st / "ema.safetensors"), state.get("ema_updates", 0))
    opt = unflatten_optimizer(load_state_dict_file(st / "optimizer.safetensors"), state["optimizer"])
    optimizer.load_state_dict(opt)
    sched = scheduler.state_dict()
    sched.update(state["scheduler"])
    scheduler.load_state_dict(sched)
    rng_file = st / f"rng_state_{rank}.safetensors"
    if rng_file.is_file():
        set_rng_state(load_state_dict_file(rng_file),
                      json.loads((st / f"rng_state_{rank}.json").read_text()))
    return state


def prune_checkpoints(root: Path, keep_last: int) -> None:
    """Delete old step directories, keeping the newest ``keep_last`` and whatever ``best`` is."""
    root = Path(root)
    protected = {os.readlink(root / n) for n in ("last", "best") if (root / n).is_symlink()}
    steps = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit() and not p.is_symlink())
    for name in steps[:-keep_last]:
        if name not in protected:
            shutil.rmtree(root / name, ignore_errors=True)
    for stale in root.glob(".*.tmp-*"):  # leftovers of a crashed save
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()


def resolve_pretrained(path: str | os.PathLike) -> Path:
    """Accept a pretrained_model dir, a step dir, ``checkpoints/`` or a training output dir."""
    p = Path(path)
    for cand in (p, p / PRETRAINED_DIR, p / "last" / PRETRAINED_DIR,
                 p / "checkpoints" / "last" / PRETRAINED_DIR):
        if (cand / CONFIG_NAME).is_file():
            return cand
    raise CheckpointError(f"{path}: no {CONFIG_NAME} found here, in {PRETRAINED_DIR}/ or in "
                          f"checkpoints/last/{PRETRAINED_DIR}/")
