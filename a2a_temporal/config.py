"""Config parsing: dataclasses are the source of truth, YAML files select values, dotted
command-line overrides (``--train.iterations=2000``) come last. Parsing is done by draccus; this
module turns its many failure modes into one-line :class:`ConfigError` messages.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import typing
from pathlib import Path
from typing import Sequence

from .errors import ConfigError


def _field_types(cls) -> dict[str, object]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}


def _unwrap_dataclass(tp):
    """The dataclass inside ``tp`` (plain, or Optional[...]), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def check_override_keys(cls, args: Sequence[str]) -> None:
    """Reject ``--a.b=...`` whose dotted path is not a field of ``cls``, naming the key."""
    expect_value = False
    for arg in args:
        if not arg.startswith("--"):
            if expect_value:  # the value of a preceding "--key value"
                expect_value = False
                continue
            raise ConfigError(f"unexpected argument {arg!r}: overrides look like --section.key=value")
        key = arg[2:].split("=", 1)[0]
        expect_value = "=" not in arg
        node, walked = cls, []
        for part in key.split("."):
            fields = _field_types(node) if node is not None else {}
            if part not in fields:
                where = ".".join(walked) or "the top level"
                raise ConfigError(f"unknown config key --{key}: {where} has no field {part!r} "
                                  f"(known: {', '.join(sorted(fields))})")
            walked.append(part)
            node = _unwrap_dataclass(fields[part])


def _explain(e: BaseException) -> str:
    """Deepest useful message of a draccus error chain."""
    msgs = []
    while e is not None:
        msgs.append(str(e))
        e = e.__cause__ or e.__context__
    useful = [m for m in msgs if m and "Couldn't instantiate class" not in m]
    return useful[-1] if useful else msgs[0]


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _plain(v):
    """A YAML-safe copy of a config value (tuples become lists)."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _minimal_kwargs(val) -> dict:
    """The fields of dataclass instance ``val`` that differ from its class's own defaults, less
    those its ``__post_init__`` derives from the others (e.g. a backbone's width from its preset)."""
    try:
        base = type(val)()
    except Exception:  # a class without full defaults: nothing to compare with
        return {}
    diff = {f.name: getattr(val, f.name) for f in dataclasses.fields(val)
            if f.init and not dataclasses.is_dataclass(getattr(val, f.name))
            and getattr(val, f.name) != getattr(base, f.name)}
    for name in list(diff):
        trial = {k: v for k, v in diff.items() if k != name}
        try:
            if type(val)(**trial) == val:
                del diff[name]
        except Exception:
            pass
    return {k: _plain(v) for k, v in diff.items()}


def factory_defaults(cls) -> dict:
    """Values that ``default_factory`` fields of ``cls`` (at any depth) set beyond their classes'
    defaults, e.g. ``{"train": {"lr": 5e-4, "best_metric": "val_psnr"}}``.

    draccus builds a section named in a file or on the command line from the section class's
    own defaults, so ``--train.iterations=5`` would otherwise silently drop every other value the
    factory chose. :func:`load_config` lays this mapping under the user's files instead."""
    out: dict = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is dataclasses.MISSING:
            continue
        try:
            val = f.default_factory()
        except Exception:
            continue
        if not dataclasses.is_dataclass(val):
            continue
        layer = _deep_merge(factory_defaults(type(val)), _minimal_kwargs(val))
        if layer:
            out[f.name] = layer
    return out


def merge_yaml_files(paths: Sequence[str | Path]) -> dict:
    """Deep-merge YAML mappings; later files override earlier ones key by key."""
    import yaml

    merged: dict = {}
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"config file {p} not found")
        try:
            data = yaml.safe_load(Path(p).read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of config sections at the top level")
        merged = _deep_merge(merged, data)
    return merged


def load_config(cls, path: str | Path | Sequence[str | Path] | None = None, overrides: Sequence[str] = ()):
    """Build ``cls`` from optional YAML file(s) plus dotted overrides; errors are ConfigError.

    ``path`` may be a list: later files override earlier ones (e.g. a task config, then an
    objective recipe)."""
    import draccus

    overrides = list(overrides)
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"config file {p} not found")
    check_override_keys(cls, [a for a in overrides if a not in ("-h", "--help")])
    tmp = None
    try:
        layer = factory_defaults(cls)
        if len(paths) > 1 or (layer and (paths or overrides)):
            import tempfile

            import yaml

            fd, tmp = tempfile.mkstemp(suffix=".yaml", prefix="a2a-merged-config-")
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump(_deep_merge(layer, merge_yaml_files(paths)), f, sort_keys=False)
            config_path = tmp
        else:
            config_path = str(paths[0]) if paths else None
        return draccus.parse(config_class=cls, config_path=config_path, args=overrides)
    except (SystemExit, ConfigError):
        raise
    except Exception as e:
        where = f"{' + '.join(map(str, paths))}: " if paths else ""
        raise ConfigError(f"{where}{_explain(e)}") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)


DASH_ALIASES = {"--output-dir": "output_dir", "--vae-path": "vae_path"}


def _apply_aliases(argv: list[str]) -> list[str]:
    """``--output-dir DIR`` / ``--output-dir=DIR`` -> ``--output_dir=DIR`` (the documented spellings)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if name in DASH_ALIASES:
            if "=" in a:
                out.append(f"--{DASH_ALIASES[name]}={a.split('=', 1)[1]}")
            elif i + 1 < len(argv):
                out.append(f"--{DASH_ALIASES[name]}={argv[i + 1]}")
                i += 1
            else:
                raise ConfigError(f"{name} needs a value")
        else:
            out.append(a)
        i += 1
    return out


def parse_cli(cls, argv: Sequence[str] | None = None, default_config: str | Path | None = None):
    """Parse ``[--config FILE ...] [--section.key=value ...]`` (``--help`` lists every key).

    ``--config`` may be repeated: later files override earlier ones. ``--output-dir DIR`` and
    ``--vae-path DIR`` are accepted for the ``output_dir`` / ``vae_path`` fields.
    """
    argv = _apply_aliases(list(sys.argv[1:] if argv is None else argv))
    paths, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--config":
            if i + 1 >= len(argv):
                raise ConfigError("--config needs a file path")
            paths.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--config="):
            paths.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    path = paths or default_config
    if any(a in ("-h", "--help") for a in rest):
        import draccus
        draccus.parse(config_class=cls, args=["--help"])  # prints every key, exits 0
    return load_config(cls, path, rest)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def save_yaml(cfg, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
