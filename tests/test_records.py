"""The attention localisation score that every run reports."""

from __future__ import annotations

import math

import torch

from attention_models import Attention
from jobs.run.records import attention_iou


def test_attention_iou_takes_best_patch_per_step_and_averages_steps():
    gt = torch.tensor([[[10.0, 10.0, 30.0, 30.0]], [[float("nan")] * 4]])  # (B=2, M=1, 4)
    boxes = torch.zeros(2, 2, 2, 4)  # (B, T=2 steps, K=2 patches, 4)
    boxes[0, 0, 0] = torch.tensor([10.0, 10.0, 30.0, 30.0])  # step 0: one patch exactly on the object
    boxes[0, 0, 1] = torch.tensor([0.0, 0.0, 5.0, 5.0])
    boxes[0, 1, 0] = torch.tensor([20.0, 10.0, 40.0, 30.0])  # step 1: half overlaps -> IoU 1/3
    boxes[0, 1, 1] = torch.tensor([50.0, 50.0, 60.0, 60.0])
    score = attention_iou(Attention(boxes=boxes, kind="glimpse"), gt)
    assert math.isclose(score[0].item(), (1.0 + 1 / 3) / 2, rel_tol=1e-5)
    assert math.isnan(score[1].item())  # no ground truth: not scored, not zero


def test_attention_iou_uses_the_best_of_several_objects():
    gt = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]])
    boxes = torch.tensor([[[[20.0, 20.0, 30.0, 30.0]]]])
    assert attention_iou(Attention(boxes=boxes, kind="scale"), gt).item() == 1.0


def test_a_built_record_has_the_schema_the_readers_read(tmp_path):
    """The builder (torch) and the torch-free readers share one schema: a sequence model's record with
    per-step scores and its mean path, written and read back through the run layout, keeps every column
    and type."""
    import numpy as np

    from jobs.run import record_files
    from jobs.run.layout import RunLayout
    from jobs.run.records import build_record

    b, t, n_cls = 3, 2, 5
    images = np.zeros((b, 8, 8, 1), np.uint8)
    boxes = torch.rand(b, t, 1, 4) * 8
    batch = {"label": torch.tensor([1, 2, 3]), "boxes": torch.tensor([[[0.0, 0.0, 4.0, 4.0]]] * b),
             "sequence": torch.tensor([[1, 2], [2, -1], [3, 4]])}
    table = build_record(epoch=3, trial="t1", sample_ids=np.arange(b), images=images, batch=batch,
                         prediction=torch.tensor([[1, 2], [2, -1], [3, -1]]),
                         attention=Attention(boxes=boxes, kind="glimpse"), step_logits=torch.randn(b, t, n_cls),
                         mean_prediction=torch.tensor([[1, 2], [3, -1], [-1, -1]]),
                         mean_attention=Attention(boxes=boxes + 1, kind="glimpse"))
    assert table.schema == record_files.RECORD_SCHEMA  # every optional column present here
    run = RunLayout(str(tmp_path), "job", "t1")
    record_files.write_record(run, table, 3)
    back = record_files.read_records(run, epoch=3)
    assert back.equals(table) and record_files.record_epochs(run) == [3]
    assert back.column("predicted_sequence").to_pylist() == [[1, 2], [2], [3]]
    assert back.column("label_sequence").to_pylist() == [[1, 2], [2], [3, 4]]
    assert back.column("mean_predicted_sequence").to_pylist() == [[1, 2], [3], []]
    assert back.column("mean_prediction").to_pylist() == [1, 3, -1]
    mean = np.asarray(back.column("mean_boxes").to_pylist()).reshape(b, t, 1, 4)
    np.testing.assert_allclose(mean, boxes.numpy() + 1, rtol=1e-6)
