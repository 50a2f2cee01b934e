"""Attention records from a model's output: what each model looked at, per probe image and epoch.

The schema and the files (written and read back without torch) are jobs/run/record_files.py's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from attention_models import Attention
from attention_models.sampling import box_iou
from jobs.run.record_files import record_schema


def attention_iou(attention: Attention, gt_boxes: Tensor) -> Tensor:
    """(B,) attention localisation score: for each step the best IoU of any of its patches with any
    ground-truth box, averaged over steps. NaN for samples without a ground-truth box."""
    boxes = attention.boxes.float()  # (B, T, K, 4)
    gt = gt_boxes.float().to(boxes.device)  # (B, M, 4)
    iou = box_iou(boxes[:, :, :, None, :], gt[:, None, None, :, :])  # (B, T, K, M)
    iou = torch.nan_to_num(iou, nan=-1.0).amax(dim=(2, 3))  # (B, T)
    has_gt = ~torch.isnan(gt).any(-1).all(-1)  # (B,)
    score = iou.clamp(min=0).mean(dim=1)
    return torch.where(has_gt, score, torch.full_like(score, float("nan")))


def _prediction_columns(prediction: Tensor, name: str, sequence_name: str) -> dict[str, pa.Array]:
    """(B,) classes -> {name}; (B, L) sequences (-1 after the end) -> {name: first label, sequence_name}."""
    pred = prediction.detach().cpu()
    if pred.dim() == 2:
        return {name: pa.array(pred[:, 0].numpy().astype(np.int64)),
                sequence_name: pa.array([[int(v) for v in r if v >= 0] for r in pred.tolist()], pa.list_(pa.int64()))}
    return {name: pa.array(pred.numpy().astype(np.int64))}


def build_record(
    *,
    epoch: int,
    trial: str,
    sample_ids: np.ndarray,
    images: np.ndarray,
    batch: dict[str, Tensor],
    prediction: Tensor,
    attention: Attention,
    step_logits: Tensor | None = None,
    mean_prediction: Tensor | None = None,
    mean_attention: Attention | None = None,
) -> pa.Table:
    """A Parquet-ready table for probe images (N, H, W, C) uint8 and the model's output on them.

    `mean_prediction` / `mean_attention`: the deterministic mean path of a sampling family (RAM/DRAM),
    kept beside the sampled path so a viewer can show either."""
    n, h, w, c = images.shape
    boxes = attention.boxes.detach().float().cpu()
    t, k = boxes.shape[1], boxes.shape[2]
    gt = batch["boxes"].float().cpu().numpy()
    cols: dict[str, pa.Array | list] = {
        "sample_id": pa.array(sample_ids.astype(np.int64)),
        "epoch": pa.array([epoch] * n, pa.int32()),
        "trial": pa.array([trial] * n, pa.string()),
        "image": pa.array([images[i].tobytes() for i in range(n)], pa.binary()),
        "height": pa.array([h] * n, pa.int32()),
        "width": pa.array([w] * n, pa.int32()),
        "channels": pa.array([c] * n, pa.int32()),
        "label": pa.array(batch["label"].cpu().numpy().astype(np.int64)),
        "kind": pa.array([attention.kind] * n, pa.string()),
        "boxes": pa.array([b.reshape(-1).tolist() for b in boxes.numpy()], pa.list_(pa.float32())),
        "steps": pa.array([t] * n, pa.int32()),
        "patches": pa.array([k] * n, pa.int32()),
        "gt_boxes": pa.array([g[~np.isnan(g).any(-1)].reshape(-1).tolist() for g in gt], pa.list_(pa.float32())),
    }
    cols.update(_prediction_columns(prediction, "prediction", "predicted_sequence"))
    if prediction.dim() == 2:  # sequence models
        seq = batch["sequence"].cpu().tolist()
        cols["label_sequence"] = pa.array([[int(v) for v in r if v >= 0] for r in seq], pa.list_(pa.int64()))
    if mean_attention is not None and mean_prediction is not None:
        mean = mean_attention.boxes.detach().float().cpu()
        cols["mean_boxes"] = pa.array([b.reshape(-1).tolist() for b in mean.numpy()], pa.list_(pa.float32()))
        cols.update(_prediction_columns(mean_prediction, "mean_prediction", "mean_predicted_sequence"))
    if step_logits is not None:  # (B, T, N): per-scale / per-step class scores
        probs = step_logits.detach().float().softmax(-1).cpu()
        label = batch["label"].cpu().view(-1, 1, 1).expand(-1, probs.shape[1], 1)
        cols["step_probs"] = pa.array(probs.gather(-1, label).squeeze(-1).tolist(), pa.list_(pa.float32()))
        cols["step_predictions"] = pa.array(probs.argmax(-1).tolist(), pa.list_(pa.int64()))
    return pa.Table.from_pydict(cols, schema=record_schema(cols))

