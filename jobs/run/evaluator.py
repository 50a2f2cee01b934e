"""What a trained model does on a test split (`foveate evaluate`): its errors by path, where it looked,
and what it confuses, as one JSON-ready dict, plus a picture of its attention on 16 test images.

For families that sample glimpse paths (RAM, DRAM) every image is scored three ways, which the field
reports apart (kevinzakka/recurrent-visual-attention#32 found 14 % error with one path and 2.5 % averaged):
    sampled  one sampled path (its first glimpse random where the config says so)
    mean     the deterministic path through the policy means (what an exported model follows by default)
    mc       class probabilities averaged over M sampled paths (the paper's Monte Carlo evaluation)
RA-CNN and MG-CNN have one answer ("single"). Per path: error, attention IoU with the ground-truth boxes
(records.attention_iou), and the mean pixel distance from each step's centre to the nearest object's centre.

Randomness: one generator seeded with `seed`, drawn in batch order (sampled, then mc, per batch), so a
run with the same seed and batch size gives the same figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attention_models import AttentionModel, create_model
from attention_models.pretrained_files import pretrained_manifest, weights_file
from jobs.api.errors import UserError
from jobs.api.spec import JobSpec
from jobs.data.loader import iterate_batches
from jobs.data.manifest import read_manifest
from jobs.data.store import read_split
from jobs.run import records
from jobs.run.checkpoints import Trained, load_trained

SAMPLED, MEAN, MC, SINGLE = "sampled", "mean", "mc", "single"
PICTURE_IMAGES = 16


def path_names(model: AttentionModel) -> tuple[str, ...]:
    """The answers a model is scored by: sampled, mean and mc for RAM/DRAM; single for the crop families."""
    return (SAMPLED, MEAN, MC) if model.samples_paths else (SINGLE,)


def _outputs(model: AttentionModel, images: Tensor, samples: int, generator: torch.Generator) -> dict[str, Any]:
    if not model.samples_paths:
        return {SINGLE: model.evaluate(images)}
    return {SAMPLED: model.evaluate(images, samples=1, generator=generator),
            MEAN: model.evaluate(images, samples=0),
            MC: model.evaluate(images, samples=samples, generator=generator)}


def _targets(batch: dict[str, Tensor], prediction: Tensor) -> Tensor:
    """What `prediction` is scored against: (B,) labels, or (B, L) label sequences padded with -1."""
    if prediction.dim() == 2:
        seq = batch["sequence"]
        width = prediction.shape[1]
        pad = seq.new_full((seq.shape[0], max(width - seq.shape[1], 0)), -1)
        return torch.cat((seq, pad), dim=1)[:, :width]
    return batch["label"]


def object_distance(centres: Tensor, gt_boxes: Tensor) -> Tensor:
    """(B, T) pixel distance from each step's centre (B, T, 2) to the nearest ground-truth box centre
    (gt_boxes (B, M, 4), NaN-padded); NaN where an image has no box."""
    gt = gt_boxes.float()
    gt_centres = torch.stack(((gt[..., 0] + gt[..., 2]) / 2, (gt[..., 1] + gt[..., 3]) / 2), dim=-1)  # (B, M, 2)
    d = torch.linalg.vector_norm(centres.float()[:, :, None, :] - gt_centres[:, None, :, :], dim=-1)  # (B, T, M)
    nearest = torch.nan_to_num(d, nan=float("inf")).amin(dim=-1)  # a padded box never the nearest
    return torch.where(torch.isinf(nearest), torch.full_like(nearest, float("nan")), nearest)


class _Tally:
    """Running sums of one path's figures over the batches."""

    def __init__(self) -> None:
        self.n = self.wrong = 0
        self.iou: list[Tensor] = []
        self.distance: list[Tensor] = []

    def add(self, model: AttentionModel, out: Any, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        pred = model.predict(out)
        target = _targets(batch, pred)
        wrong = (pred != target).any(dim=1) if pred.dim() == 2 else pred != target
        self.n += len(wrong)
        self.wrong += int(wrong.sum())
        self.iou.append(records.attention_iou(out.attention, batch["boxes"]).cpu())
        self.distance.append(object_distance(out.attention.centres, batch["boxes"]).cpu())
        return pred, target

    def summary(self) -> dict[str, Any]:
        iou = torch.cat(self.iou)
        iou = iou[~torch.isnan(iou)]
        dist = torch.cat(self.distance)  # (N, T)
        per_step = [float(v) for v in torch.nanmean(dist, dim=0)] if dist.numel() else []
        return {"error": self.wrong / max(self.n, 1), "wrong": self.wrong,
                "attention_iou": float(iou.mean()) if iou.numel() else None,
                "object_distance_px": [None if np.isnan(v) else round(v, 3) for v in per_step]}


def _confusion(pred: Tensor, target: Tensor, classes: int) -> np.ndarray:
    """(N, N + 1) counts of true class (rows) against predicted (columns), the last column "no label"
    (a sequence that ended early); for sequences every position with a true label counts."""
    pred, target = pred.reshape(-1), target.reshape(-1)
    keep = target >= 0
    pred, target = pred[keep], target[keep]
    pred = torch.where((pred >= 0) & (pred < classes), pred, torch.full_like(pred, classes))
    flat = torch.bincount(target * (classes + 1) + pred, minlength=classes * (classes + 1))
    return flat.reshape(classes, classes + 1).numpy()


@torch.no_grad()
def evaluate_model(model: AttentionModel, samples: list | Any, *, mc_samples: int = 10, batch_size: int = 250,
                   seed: int = 0, tick: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The figures of `model` on a SampleSet: {"paths": {name: {error, wrong, attention_iou,
    object_distance_px}}, "confusion": {"path", "matrix"}, "images"}. `tick(n)` after each batch of n."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    names = path_names(model)
    tallies = {name: _Tally() for name in names}
    headline = MC if model.samples_paths else SINGLE
    classes = len(samples.class_names) if getattr(samples, "class_names", None) else None
    matrix = None
    for batch in iterate_batches(samples, batch_size, shuffle=False):
        outs = _outputs(model, batch["image"], mc_samples, generator)
        for name, out in outs.items():
            pred, target = tallies[name].add(model, out, batch)
            if name == headline:
                n = classes or int(max(int(target.max()), int(pred.max())) + 1)
                part = _confusion(pred, target, n)
                matrix = part if matrix is None else _pad_add(matrix, part)
        if tick:
            tick(len(batch["image"]))
    return {"images": tallies[names[0]].n, "paths": {n: t.summary() for n, t in tallies.items()},
            "confusion": {"path": headline, "classes": list(getattr(samples, "class_names", None) or []),
                          "rows": "true class", "columns": "predicted class, then no label",
                          "matrix": matrix.tolist() if matrix is not None else []}}


def _pad_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    rows, cols = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    out = np.zeros((rows, cols), dtype=np.int64)
    out[: a.shape[0], : a.shape[1]] += a
    out[: b.shape[0], : b.shape[1]] += b
    return out


PRETRAINED_PREFIX = "pretrained:"  # `foveate evaluate pretrained:ram-cluttered60`: the shipped weights


def load_source(source: str) -> Trained:
    """A run, checkpoint or state file (checkpoints.load_trained), or `pretrained:VARIANT`: the weights
    shipped for VARIANT, with the spec, epoch and commit of its manifest."""
    if not source.startswith(PRETRAINED_PREFIX):
        return load_trained(source)
    name = source[len(PRETRAINED_PREFIX):]
    try:
        manifest = pretrained_manifest(name)
    except ValueError as exc:
        raise UserError(f"{source}: {str(exc).split(': ', 1)[1]}") from None
    return Trained(model=create_model(name, pretrained=True).eval(), spec=JobSpec.from_dict(manifest["spec"]),
                   epoch=int(manifest.get("epoch", -1)), metrics={}, checkpoint=str(weights_file(name)),
                   commit=str(manifest.get("commit", "")))


def evaluate_trained(source: str, *, data: str | None = None, split: str = "test", samples: int = 10,
                     batch_size: int = 250, seed: int = 0, limit: int = 0, picture: str | None = None,
                     progress: bool = False) -> dict[str, Any]:
    """`foveate evaluate`: the model of run/checkpoint `source` (or `pretrained:VARIANT`) on `split` of dataset `data` (default: the
    one it was trained on). Returns the report (see the module docstring); `picture` writes a PNG of its
    attention on the first 16 images."""
    if samples < 1 or samples > 1000:
        raise UserError(f"--samples: must be between 1 and 1000, got {samples}")
    if batch_size < 1:
        raise UserError(f"--batch-size: must be >= 1, got {batch_size}")
    trained = load_source(source)
    model = trained.model
    path = data or trained.spec.data.path
    try:
        manifest = read_manifest(path)
    except FileNotFoundError:
        raise UserError(f"--data: no dataset at {path} (no manifest.json); build one with `foveate data build`") from None
    if split not in manifest["shards"]:
        raise UserError(f"--split: no split {split!r} in {path} (has {', '.join(manifest['shards'])})")
    h, w, c = manifest["image_size"]
    cfg = model.config
    if (getattr(cfg, "image_size", h), getattr(cfg, "in_channels", c)) != (h, c):
        raise UserError(f"--data: {path} holds {h}x{w}x{c} images; the model takes "
                        f"{cfg.image_size}x{cfg.image_size}x{cfg.in_channels}")
    test = read_split(path, split, limit=limit or None)
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(test), desc="evaluate", unit="img")
    try:
        figures = evaluate_model(model, test, mc_samples=samples, batch_size=batch_size, seed=seed,
                                 tick=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    seconds = time.perf_counter() - started
    report = {
        "source": source, "checkpoint": trained.checkpoint, "epoch": trained.epoch, "commit": trained.commit,
        "model": trained.spec.model.name, "family": model.family, "data": path, "split": split,
        "samples": samples if model.samples_paths else None, "seed": seed,
        "error": figures["paths"][MC if model.samples_paths else SINGLE]["error"],
        **figures, "seconds": round(seconds, 2),
    }
    if picture:
        from jobs.run.evaluation_picture import draw_attention

        probe = test.subset(np.arange(min(PICTURE_IMAGES, len(test))))
        draw_attention(model, probe, picture, title=f"{trained.spec.model.name}, epoch {trained.epoch}")
        report["picture"] = picture
    return report
