"""ONNX export of a whole policy call, checked against PyTorch, and a loader that verifies it.

    from a2a_temporal.export import export_policy, load_onnx_policy
    report = export_policy("runs/push/checkpoints/last", "policy.onnx")   # parity on 1000 demo batches
    onnx_policy = load_onnx_policy("policy.onnx", checkpoint="runs/push/checkpoints/last")
    actions = onnx_policy.predict_action_chunk(batch)                      # (B, H, A) numpy float32

The graph is one ``predict_action_chunk`` call of the folded inference path
(:class:`~a2a_temporal.heads.action.modeling.InferencePlan`): normalisation, encoders, the
sampler's network calls (one for 1-step A2A), decoder and unnormalisation. Inputs (batch axis
``B`` dynamic): ``state (B, To, Ds)`` float32, ``qpos_hist (B, Th, Dq)`` float32,
``prev_action (B, Th, A)`` float32, ``prev_action_is_pad (B, Th)`` bool [, ``image
(B, To, H, W, 3)`` uint8]; output ``actions (B, H, A)`` float32. Only deterministic samplers
export (a2a without start-point or history noise, regression, mip).

``metadata_props`` (keys ``a2a.*``) hold the policy config (JSON), the sha256 of the checkpoint's
``model.safetensors``, a sha256 digest of the graph's weights (initializers and Constant
tensors), the sampler settings and the parity result; :func:`load_onnx_policy` refuses a graph
whose weights no longer match the digest, and a checkpoint whose hash differs.

onnx, onnxruntime and onnxscript are an optional extra: ``pip install 'a2a_temporal[deploy]'``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import A2AError

INPUTS = ("state", "qpos_hist", "prev_action", "prev_action_is_pad")  # + "image" (rgb)
OUTPUT = "actions"
FORMAT = "a2a_temporal.policy/1"
EXPORTERS = ("auto", "dynamo", "torchscript")
OPSET = 18
_DTYPES = {"state": np.float32, "qpos_hist": np.float32, "prev_action": np.float32,
           "prev_action_is_pad": np.bool_, "image": np.uint8}


class ExportError(A2AError):
    """A policy cannot be exported, failed its parity check, or an exported graph is refused."""


def _deploy():
    """``(onnx, onnxruntime)``, or a one-line error naming the extra to install."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ExportError(f"ONNX export and inference need onnx, onnxruntime and onnxscript ({e.name} is "
                          "missing): pip install 'a2a_temporal[deploy]'") from None
    return onnx, onnxruntime


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_digest(model) -> str:
    """sha256 over the graph's initializers and Constant-node tensors (name, type, shape, bytes),
    in name order: any change of a weight value changes it; metadata does not."""
    onnx, _ = _deploy()
    from onnx import numpy_helper

    items = [(t.name, t) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type == "Constant":
            items += [(f"{node.output[0]}/{a.name}", a.t) for a in node.attribute
                      if a.type == onnx.AttributeProto.TENSOR]
    h = hashlib.sha256()
    for name, t in sorted(items, key=lambda kv: kv[0]):
        arr = np.ascontiguousarray(numpy_helper.to_array(t))
        h.update(f"{name}|{t.data_type}|{list(t.dims)}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def session_options(threads: int | None = None):
    """ORT options; ``threads=1``: one intra-op and one inter-op thread, sequential execution."""
    _, ort = _deploy()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return so


def ort_session(model: bytes | str | os.PathLike, threads: int | None = None):
    """A CPU ``onnxruntime.InferenceSession`` of a serialized model or a file."""
    _, ort = _deploy()
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, session_options(threads), providers=["CPUExecutionProvider"])


def export_module(module: torch.nn.Module, args: tuple, input_names: list[str], output_names: list[str],
                  exporter: str = "auto"):
    """Any module with a leading batch axis on every input and output -> ``(onnx.ModelProto, exporter)``.

    ``exporter``: ``dynamo`` (torch.export; leaner graphs), ``torchscript`` (the legacy tracer;
    seconds instead of tens of seconds to export) or ``auto`` (dynamo, then torchscript if it fails).
    """
    onnx, _ = _deploy()
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter={exporter!r} is not one of {list(EXPORTERS)}")
    order = ("dynamo", "torchscript") if exporter == "auto" else (exporter,)
    errors = []
    module = module.eval()
    for name in order:
        with tempfile.TemporaryDirectory(prefix="a2a-onnx-") as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                _export_with(name, module, args, input_names, output_names, path)
                return onnx.load(str(path)), name
            except ExportError:
                raise
            except Exception as e:  # exporters raise many types; report them in one line
                errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise ExportError("ONNX export failed (" + "; ".join(errors) + ")")


def _export_with(name: str, module, args, input_names, output_names, path: Path) -> None:
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "dynamo":
            try:
                import onnxscript  # noqa: F401
            except ImportError:
                raise ExportError("the dynamo ONNX exporter needs onnxscript: pip install 'a2a_temporal[deploy]' "
                                  "(or pass exporter='torchscript')") from None
            import contextlib
            import io

            batch = torch.export.Dim("batch", min=1)
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
                prog = torch.onnx.export(module, args, None, input_names=input_names, output_names=output_names,
                                         dynamic_shapes=tuple({0: batch} for _ in args), dynamo=True,
                                         external_data=False, optimize=True, opset_version=OPSET)
                prog.save(str(path))
        else:
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes={n: {0: "batch"} for n in [*input_names, *output_names]},
                              dynamo=False, opset_version=OPSET, do_constant_folding=True)


def policy_inputs(config) -> list[str]:
    """The graph's input names for a policy config."""
    return list(INPUTS) + (["image"] if config.obs_mode == "rgb" else [])


def example_batch(config, batch: int = 2) -> dict[str, torch.Tensor]:
    """Zero inputs of the right shapes and dtypes (what the exporter traces with)."""
    c = config
    out = {"state": torch.zeros(batch, c.n_obs_steps, c.state_dim),
           "qpos_hist": torch.zeros(batch, c.n_hist, c.qpos_dim),
           "prev_action": torch.zeros(batch, c.n_hist, c.action_dim),
           "prev_action_is_pad": torch.zeros(batch, c.n_hist, dtype=torch.bool)}
    if c.obs_mode == "rgb":
        out["image"] = torch.zeros(batch, c.n_obs_steps, c.image_size, c.image_size, 3, dtype=torch.uint8)
    return out


def exportable(policy, num_inference_steps: int | None = 1, method: str | None = None) -> torch.nn.Module:
    """The module a policy exports as: ``(state, qpos_hist, prev_action, prev_action_is_pad[, image])
    -> actions (B, H, A)``; refuses samplers that draw noise (one-line ExportError)."""
    c = policy.config
    policy.eval()
    if c.history_input_noise > 0:
        raise ExportError(f"policy.history_input_noise={c.history_input_noise} draws noise at inference: only "
                          "deterministic samplers (a2a without noise, regression, mip) export with parity")
    if getattr(policy, "source_module", None) is not None:
        raise ExportError(f"policy.source={c.source!r}: only the A2A source (history_mlp), regression and mip "
                          "export; the other sources run through the reference path")
    try:
        plan = policy.inference_plan()
    except RuntimeError as e:
        raise ExportError(str(e)) from None
    why = plan.deterministic_reason() if plan is not None else f"objective {c.objective.name!r} samples with noise"
    if why is not None:
        raise ExportError(f"{why}: only deterministic samplers (a2a without noise, regression, mip) export "
                          "with parity")
    try:
        return plan.bind(num_inference_steps, method)
    except ValueError as e:  # bad steps / method, worded by the objective
        raise ExportError(str(e)) from None


def export_onnx(policy, num_inference_steps: int | None = 1, method: str | None = None,
                exporter: str = "auto"):
    """The policy call as ``(onnx.ModelProto, exporter used)``, without metadata or parity check."""
    module = exportable(policy, num_inference_steps, method)
    names = policy_inputs(policy.config)
    batch = example_batch(policy.config)
    return export_module(module, tuple(batch[n] for n in names), names, [OUTPUT], exporter)


def recorded_batches(config, dataset: str | os.PathLike | None = None, windows=None, batches: int = 1000,
                     batch_size: int = 1, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``batches`` batches of real histories: windows of the demo dataset (``windows``, any object
    with ``__len__`` and ``__getitems__``, or read from ``dataset`` as training reads it), drawn
    without replacement while there are enough (seeded)."""
    if windows is None:
        if not dataset:
            raise ExportError("no dataset for the parity check: the checkpoint's config.json has no 'dataset' "
                              "key; pass --dataset PATH")
        from .policy_setup import DatasetConfig, load_demos, make_windows

        path = Path(dataset)
        if not path.exists():
            raise ExportError(f"dataset {path} (for the parity check) not found; pass --dataset PATH")
        fmt = "lerobot" if path.is_dir() else "maniskill"
        _, episodes = load_demos(DatasetConfig(path=str(path), format=fmt), config)
        windows = make_windows(episodes, config)
    n = len(windows)
    want = batches * batch_size
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, size=want, replace=want > n)
    keys = policy_inputs(config)
    out = []
    for i in range(batches):
        b = windows.__getitems__(idx[i * batch_size:(i + 1) * batch_size].tolist())
        out.append({k: b[k] for k in keys})
    return out


def numpy_feeds(batch: dict, names: list[str]) -> dict[str, np.ndarray]:
    """ORT feeds for the graph inputs ``names`` from a batch of numpy arrays or torch tensors."""
    feeds = {}
    for n in names:
        if n not in batch:
            raise ExportError(f"batch has no {n!r} (the graph's inputs: {names})")
        v = batch[n]
        v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        feeds[n] = np.ascontiguousarray(v, dtype=_DTYPES.get(n, v.dtype))
    return feeds


def parity(policy, session, batches: list[dict], num_inference_steps: int | None = 1,
           method: str | None = None) -> dict:
    """Max abs difference of the session's actions against the PyTorch policy's, on every batch,
    for both PyTorch paths (``predict_action_chunk`` and the unfolded reference)."""
    names = [i.name for i in session.get_inputs()]
    worst = {"folded": 0.0, "reference": 0.0}
    for b in batches:
        got = session.run([OUTPUT], numpy_feeds(b, names))[0]
        for key, fn in (("folded", policy.predict_action_chunk), ("reference", policy.predict_action_chunk_reference)):
            want = fn(b, num_inference_steps, method).cpu().numpy()
            d = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
            worst[key] = max(worst[key], d if np.isfinite(d) else float("inf"))
    return {"max_abs_diff": max(worst.values()), "max_abs_diff_vs_folded": worst["folded"],
            "max_abs_diff_vs_reference": worst["reference"], "batches": len(batches),
            "windows": int(sum(b[INPUTS[0]].shape[0] for b in batches))}


def _set_metadata(model, entries: dict[str, str]) -> None:
    keep = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in entries.items():
        p = model.metadata_props.add()
        p.key, p.value = k, str(v)


def export_policy(checkpoint: str | os.PathLike, out: str | os.PathLike, num_inference_steps: int | None = 1,
                  method: str | None = None, dataset: str | os.PathLike | None = None, windows=None,
                  batches: int = 1000, batch_size: int = 1, tolerance: float = 1e-4, threads: int | None = 1,
                  exporter: str = "auto", seed: int = 0) -> dict:
    """Export a checkpoint's policy call to ``out`` after a parity check against PyTorch.

    Args:
        checkpoint: a pretrained_model dir, a checkpoint step dir or a run dir.
        out: the .onnx file; written (atomically) only when the check passes.
        num_inference_steps, method: the sampler settings baked into the graph.
        dataset: demos for the parity batches (default: the ``dataset`` recorded in the
            checkpoint's config.json); ``windows`` replaces it with ready windows.
        batches, batch_size: the parity check's recorded batches.
        tolerance: largest max-abs action difference allowed.
        threads: ORT threads of the check's session.
    Returns:
        a report dict (paths, hashes, parity numbers, exporter, graph size).
    Raises:
        ExportError (one line) when the policy cannot export, the data is missing, or the
        difference exceeds ``tolerance``; nothing is written then.
    """
    from .heads.action import ActionFlowPolicy
    from .pretrained import WEIGHTS_NAME, config_to_dict, read_config
    from .training.checkpoint import resolve_pretrained

    onnx, _ = _deploy()
    if batches < 1 or batch_size < 1:
        raise ExportError(f"batches and batch_size must be >= 1, got {batches} and {batch_size}")
    pdir = resolve_pretrained(checkpoint)
    policy = ActionFlowPolicy.from_pretrained(pdir).eval()
    out = Path(out)
    exportable(policy, num_inference_steps, method)  # refuses noisy samplers before any work
    data = recorded_batches(policy.config, dataset or read_config(pdir).get("dataset"), windows, batches,
                            batch_size, seed)
    model, used = export_onnx(policy, num_inference_steps, method, exporter)
    meta = {"a2a.format": FORMAT, "a2a.policy_config": json.dumps(config_to_dict(policy.config), sort_keys=True),
            "a2a.checkpoint_sha256": sha256_file(pdir / WEIGHTS_NAME), "a2a.checkpoint": str(pdir),
            "a2a.initializers_sha256": weights_digest(model),
            "a2a.num_inference_steps": json.dumps(num_inference_steps), "a2a.method": json.dumps(method),
            "a2a.inputs": json.dumps(policy_inputs(policy.config)), "a2a.exporter": used,
            "a2a.torch": torch.__version__}
    _set_metadata(model, meta)
    session = ort_session(model.SerializeToString(), threads)
    check = parity(policy, session, data, num_inference_steps, method)
    where = f"over {check['batches']} batches ({check['windows']} windows)"
    if not check["max_abs_diff"] <= tolerance:
        raise ExportError(f"parity check failed: max abs action difference {check['max_abs_diff']:.3g} > tolerance "
                          f"{tolerance:g} {where}; {out} not written")
    _set_metadata(model, {"a2a.parity_max_abs_diff": f"{check['max_abs_diff']:.3g}",
                          "a2a.parity_batches": str(check["batches"])})
    blob = model.SerializeToString()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"out": str(out), "checkpoint": str(pdir), "checkpoint_sha256": meta["a2a.checkpoint_sha256"],
            "initializers_sha256": meta["a2a.initializers_sha256"], "exporter": used,
            "num_inference_steps": num_inference_steps, "method": method, "tolerance": tolerance,
            "nodes": len(model.graph.node), "bytes": len(blob), **check}


class OnnxPolicy:
    """An exported policy on ONNX Runtime: ``predict_action_chunk(batch) -> (B, H, A)`` numpy."""

    def __init__(self, path: Path, session, config, metadata: dict[str, str]):
        self.path, self.session, self.config, self.metadata = path, session, config, metadata
        self.input_names = [i.name for i in session.get_inputs()]

    def predict_action_chunk(self, batch: dict) -> np.ndarray:
        """``batch``: the keys of :data:`INPUTS` (+ ``image``) as numpy arrays or torch tensors,
        any batch size (other keys are ignored) -> float32 actions ``(B, H, A)``."""
        return self.session.run([OUTPUT], numpy_feeds(batch, self.input_names))[0]


def load_onnx_policy(path: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                     threads: int | None = None) -> OnnxPolicy:
    """Load an exported policy after checking its weights digest and, when ``checkpoint`` is
    given, that it was exported from that checkpoint's weights (one-line ExportError otherwise)."""
    onnx, _ = _deploy()
    from .heads.action import PolicyConfig
    from .pretrained import WEIGHTS_NAME, config_from_dict

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise ExportError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("a2a.format") != FORMAT:
        raise ExportError(f"{path}: no a2a_temporal policy metadata (a2a.format={meta.get('a2a.format')!r}, "
                          f"expected {FORMAT!r}); export it with tools/export_policy.py")
    want, got = meta.get("a2a.initializers_sha256", ""), weights_digest(model)
    if got != want:
        raise ExportError(f"{path}: the graph's weights digest {got[:16]}... differs from the one recorded at "
                          f"export ({want[:16]}...): the file was modified after export; re-export it")
    if checkpoint is not None:
        from .training.checkpoint import resolve_pretrained

        weights = resolve_pretrained(checkpoint) / WEIGHTS_NAME
        have, expected = sha256_file(weights), meta.get("a2a.checkpoint_sha256", "")
        if have != expected:
            raise ExportError(f"{path} was exported from weights with sha256 {expected[:16]}... but {weights} has "
                              f"sha256 {have[:16]}...: not the same checkpoint")
    config = config_from_dict(PolicyConfig, json.loads(meta["a2a.policy_config"]), f"{path} metadata")
    return OnnxPolicy(path, ort_session(model.SerializeToString(), threads), config, meta)
