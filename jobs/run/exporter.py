"""The work of `foveate export` (jobs/run/export.py is the command): a trained model to a serving file.

Reads a trained model (jobs/run/checkpoints.py), writes it as a serving graph (attention_models/export.py),
runs the written file against the eager model on a batch it was not traced on (checked, not assumed), and
writes a model card beside it (`jobs.api.exports.card_path`): the variant and its config, the spec and
commits, the data, the measured errors, the input normalisation, and every input and output by name and
shape.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import tempfile
from typing import Any

import numpy as np
import torch

from attention_models.export import OPSET, Serving, export_onnx, export_torchscript, image_side
from jobs.api.errors import UserError
from jobs.api.exports import FORMATS, ExportRequest, card_path
from jobs.run.checkpoints import Trained, code_commit, load_trained

PARITY_BATCH = 7  # not the batch the graph was traced on (2): batch-dependent constants would show
TOLERANCE = 1e-4  # max |exported - eager| / max(1, max |eager|) of every float output


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_exported(path: str, fmt: str, serving: Serving, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """Run the exported file at `path` (onnxruntime on the CPU, or torch.jit.load) on `inputs`."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {n: t.numpy() for n, t in zip(serving.input_names, inputs)})
    module = torch.jit.load(path, map_location="cpu")
    with torch.no_grad():
        return [t.numpy() for t in module(*inputs)]


def parity(path: str, fmt: str, serving: Serving, seed: int = 1) -> dict[str, Any]:
    """Outputs of the exported file against the eager model on PARITY_BATCH fresh images (and noise):
    the max relative difference of every float output, the agreement of integer ones."""
    inputs = serving.example_inputs(PARITY_BATCH, seed=seed)
    with torch.no_grad():
        eager = [t.numpy() for t in serving(*inputs)]
    got = run_exported(path, fmt, serving, inputs)
    diffs, agree = {}, {}
    for name, a, b in zip(serving.output_names, got, eager):
        if a.shape != b.shape:
            raise RuntimeError(f"exported output {name}: shape {a.shape}, the eager model's {b.shape}")
        if np.issubdtype(b.dtype, np.floating):
            scale = max(1.0, float(np.abs(b).max(initial=0.0)))
            diffs[name] = float(np.abs(a - b).max(initial=0.0)) / scale
        else:
            agree[name] = float((a == b).mean()) if b.size else 1.0
    return {"batch": PARITY_BATCH, "max_relative_difference": diffs, "agreement": agree}


def validation(metrics: dict[str, Any]) -> dict[str, float]:
    """The validation figures of the checkpoint's epoch (val_* and attention_iou)."""
    return {k: float(v) for k, v in sorted(metrics.items())
            if isinstance(v, int | float) and (k.startswith("val_") or k == "attention_iou")}


def errors(metrics: dict[str, Any]) -> dict[str, float]:
    """Each validation accuracy of the checkpoint's epoch as an error: val_accuracy -> val_error, ..."""
    return {k.replace("accuracy", "error"): 1.0 - v for k, v in validation(metrics).items()
            if "accuracy" in k and math.isfinite(v)}


def model_card(trained: Trained, serving: Serving, request: ExportRequest, path: str,
               checked: dict[str, Any]) -> dict[str, Any]:
    spec, model = trained.spec, trained.model
    side = image_side(model.config)
    return {
        "format": request.format,
        "opset": OPSET if request.format == "onnx" else None,
        "file": os.path.basename(path),
        "size_bytes": os.path.getsize(path),
        "sha256": _digest(path),
        "model": {"name": spec.model.name, "family": model.family,
                  "config": json.loads(json.dumps(dataclasses.asdict(model.config), default=str))},
        "paths": ("the deterministic mean path (RAM/DRAM: first glimpse at the centre, then the policy means)"
                  if request.samples == 0 else
                  f"{request.samples} sampled glimpse paths per image from the noise inputs; logits are the log "
                  "of the path-averaged probabilities, the attention is each image's first path's"),
        "samples": request.samples,
        "input_normalisation": f"images float32 in [0, 1] (pixel / 255), shape (B, {model.config.in_channels}, "
                               f"{side}, {side}); any other normalisation happens inside the graph",
        "noise": {"noise": "standard normal N(0, 1)", "first_locations": "uniform in [-1, 1] (x, y)"}
        if request.samples else {},
        **serving.signature(),
        "attention_units": "pixels of the input image: x0, y0, x1, y1 (origin: the top-left pixel's corner)",
        "checkpoint": trained.checkpoint,
        "epoch": trained.epoch,
        "errors": errors(trained.metrics),
        "validation": validation(trained.metrics),
        "data": {"path": spec.data.path, "train_split": spec.data.train_split, "val_split": spec.data.val_split},
        "spec": spec.to_dict(),
        "trained_commit": trained.commit,
        "export_commit": code_commit(),
        "parity": checked,
        "torch": torch.__version__,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def export_trained(source: str, request: ExportRequest, out: str, progress: bool = False) -> dict[str, Any]:
    """Export the trained model of `source` to `out` (a local file) and write its card beside it; returns
    the card. Written under temporary names and renamed, so a reader never sees half a file. Raises
    UserError for what the user can fix (no checkpoint, samples on a deterministic family)."""
    from tqdm import tqdm

    steps = ["load checkpoint", "trace", "check parity", "write card"]
    with tqdm(total=len(steps), disable=not progress, desc="export", unit="step") as bar:
        bar.set_postfix_str(steps[0])
        trained = load_trained(source)
        try:
            serving = Serving(trained.model, request.samples)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        bar.update()
        bar.set_postfix_str(steps[1])
        out = os.path.abspath(os.path.expanduser(out))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=FORMATS[request.format], dir=os.path.dirname(out))
        os.close(fd)
        card_tmp = tmp + ".card"
        try:
            (export_onnx if request.format == "onnx" else export_torchscript)(serving, tmp)
            bar.update()
            bar.set_postfix_str(steps[2])
            checked = parity(tmp, request.format, serving)
            worst = max(checked["max_relative_difference"].items(), key=lambda kv: kv[1], default=("", 0.0))
            if worst[1] > TOLERANCE:
                raise RuntimeError(f"parity check failed: exported {worst[0]} differs from the eager model's by "
                                   f"{worst[1]:.2e} (relative), more than {TOLERANCE:g}")
            if request.format == "onnx":
                import onnx

                onnx.checker.check_model(tmp)
            bar.update()
            bar.set_postfix_str(steps[3])
            card = model_card(trained, serving, request, tmp, checked)
            card["file"] = os.path.basename(out)
            with open(card_tmp, "w") as f:
                json.dump(card, f, indent=1, default=str)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; the export is an ordinary file
            os.replace(card_tmp, card_path(out))
            os.replace(tmp, out)
            bar.update()
        finally:
            for leftover in (tmp, card_tmp):
                if os.path.exists(leftover):
                    os.remove(leftover)
    return card
