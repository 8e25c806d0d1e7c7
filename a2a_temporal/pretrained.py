"""Save / load models without pickle: ``DIR/{config.json, model.safetensors}``.

A model class opts in by inheriting :class:`PretrainedMixin`, naming its config dataclass in
``config_class`` and keeping the config in ``self.config``. Loading is strict: a missing or
unexpected key, or a shape mismatch, raises :class:`CheckpointError` naming it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .errors import A2AError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

_REGISTRY: dict[str, type] = {}


class CheckpointError(A2AError):
    """A checkpoint directory is missing, incomplete or does not match the model."""


def register_model(name: str):
    """Class decorator: make ``load_pretrained`` able to rebuild this class from ``config.json``."""
    def wrap(cls):
        cls.model_type = name
        _REGISTRY[name] = cls
        return cls
    return wrap


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)


def config_from_dict(cls, data: dict, source: str = "config"):
    """Rebuild dataclass ``cls`` from ``data`` strictly (unknown keys and bad types are errors)."""
    import draccus  # lazy: only loading needs it

    try:
        return draccus.decode(cls, data)
    except Exception as e:  # draccus raises several types; give one message naming the source
        raise CheckpointError(f"{source}: cannot build {cls.__name__}: {e}") from None


def atomic_directory(final: Path):
    """Context manager yielding a temp dir that replaces ``final`` only if the block succeeds."""
    return _AtomicDir(Path(final))


class _AtomicDir:
    def __init__(self, final: Path):
        self.final = final

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give it a normal directory's mode
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        _fsync_tree(self.tmp)
        # Leftovers of a replacement that crashed between its two renames.
        for stale in self.final.parent.glob(f".{self.final.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if self.final.exists() or self.final.is_symlink():
            old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            fsync_dir(self.final.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)  # make the rename itself durable
        return False


def fsync_dir(path: Path) -> None:
    """fsync a directory, so renames inside it survive a power loss (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def save_state_dict(state: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(path), metadata=metadata)


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load ``state`` into ``model``; errors name the missing / unexpected keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        raise CheckpointError(f"{source}: weights do not match {type(model).__name__}: " + "; ".join(parts))
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"{source}: key {k!r} has shape {tuple(v.shape)}, "
                                  f"model expects {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=True)


class PretrainedMixin:
    """``save_pretrained(dir)`` / ``from_pretrained(dir)`` for ``nn.Module`` subclasses."""

    config_class: type = None
    model_type: str = None

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` atomically."""
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            self.write_pretrained(tmp, extra)
        return directory

    def write_pretrained(self, directory: Path, extra: dict | None = None,
                         state: dict[str, torch.Tensor] | None = None) -> None:
        """Write the two files into an existing directory (callers handle atomicity)."""
        meta = {"model_type": self.model_type, "config": config_to_dict(self.config)}
        if extra:
            meta.update(extra)
        (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))
        save_state_dict(state if state is not None else self.state_dict(), directory / WEIGHTS_NAME)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu"):
        """Rebuild the model from ``directory`` (strict: every key must match)."""
        model = load_pretrained(directory, map_location=map_location)
        if not isinstance(model, cls):
            raise CheckpointError(f"{directory}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def read_config(directory: str | os.PathLike) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (is {directory} a pretrained_model directory?)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from None


# Config keys renamed since checkpoints were first written: old name -> new name. Applied to
# every nested mapping of a stored config that has the old key and not the new one.
RENAMED_KEYS = {"rollout_steps": "rollout_k", "source_sigma": "start_point_noise",
                "history_noise": "history_input_noise"}
RENAMED_OBJECTIVE_KEYS = {"steps": "num_inference_steps"}


def migrate_config(data, in_objective: bool = False):
    """Rename legacy config keys (see ``RENAMED_KEYS``) so older checkpoints keep loading."""
    if not isinstance(data, dict):
        return data
    out = {}
    renames = {**RENAMED_KEYS, **(RENAMED_OBJECTIVE_KEYS if in_objective else {})}
    for k, v in data.items():
        new = renames.get(k, k)
        if new != k and new in data:
            new = k
        out[new] = migrate_config(v, in_objective=(k == "objective"))
    return out


def load_pretrained(directory: str | os.PathLike, map_location: str = "cpu"):
    """Rebuild whichever registered model ``directory`` holds."""
    directory = Path(directory)
    meta = read_config(directory)
    mtype = meta.get("model_type")
    if mtype not in _REGISTRY:
        _import_known_models()
    if mtype not in _REGISTRY:
        raise CheckpointError(f"{directory / CONFIG_NAME}: unknown model_type {mtype!r}; "
                              f"known: {sorted(_REGISTRY)}")
    cls = _REGISTRY[mtype]
    cfg = config_from_dict(cls.config_class, migrate_config(meta.get("config", {})), str(directory / CONFIG_NAME))
    model = cls(cfg)
    state = load_state_dict_file(directory / WEIGHTS_NAME)
    load_into(model, state, str(directory / WEIGHTS_NAME))
    return model.to(map_location).eval()


def _import_known_models() -> None:
    """Import the modules that register the toolkit's models (each import is optional)."""
    import importlib

    for mod in ("a2a_temporal.backbone", "a2a_temporal.heads.action", "a2a_temporal.heads.video",
                "a2a_temporal.toy"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
