"""MG-CNN: config and hierarchy validation, region discovery, shapes and gradients of every variant."""

from __future__ import annotations

import pytest
import torch

from attention_models import create_model, list_models
from attention_models.mgcnn import MGCNN, energy_regions
from attention_models.registry import model_config

TINY = {"image_size": 40, "input_size": 24, "region_size": 16, "backbone_width": 4}
DIGIT_GROUPS = (0, 1, 2, 2, 1, 2, 0, 1, 0, 0)  # jobs.data's loops / strokes / curves of digits 0-9


def tiny(name: str, **overrides) -> MGCNN:
    return create_model(name, **{**TINY, **overrides})


def batch(model: MGCNN, B: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    c = model.config
    label = torch.randint(0, c.level_classes[-1], (B,), generator=g)
    coarse = [torch.randint(0, n, (B,), generator=g) for n in c.level_classes[:-1]]
    return {
        "image": torch.rand(B, c.in_channels, c.image_size, c.image_size, generator=g),
        "label": label,
        "hierarchy": torch.stack((*coarse, label), dim=1),
        "boxes": torch.tensor([[[4.0, 4.0, 20.0, 30.0]]]).expand(B, 1, 4).clone(),
    }


@pytest.mark.parametrize("name", [n for n in list_models("mgcnn") if model_config(n).backbone == "small"])
@pytest.mark.parametrize("B", [1, 2])
def test_shapes_gradients_every_parameter(name, B):
    torch.manual_seed(0)
    model = tiny(name)
    c = model.config
    V = len(c.level_classes)
    b = batch(model, B)
    out = model(b["image"])
    assert out.logits.shape == (B, c.level_classes[-1])
    assert [t.shape for t in out.level_logits] == [(B, n) for n in c.level_classes]
    assert [t.shape for t in out.whole_logits] == [(B, n) for n in c.level_classes]
    assert out.attention.boxes.shape == (B, V, 1, 4) and out.attention.kind == "granularity"
    assert all(r.shape == (B, c.in_channels, c.region_size, c.region_size) for r in out.regions)
    terms = model.losses(out, b)
    assert set(terms) == {f"{k}_level{v + 1}" for k in ("whole", "region") for v in range(V)} | {"fused"}
    total = sum(terms.values())
    assert torch.isfinite(total)
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    metrics = model.metrics(out, b)
    assert {"accuracy", "accuracy_level1", f"iou_level{V}"} <= set(metrics)
    assert model.parameter_groups().keys() == {"all"} and model.phases() == []


def test_regions_lie_inside_the_image_with_a_minimum_size():
    model = tiny("mgcnn-zoom", min_region=0.5)
    boxes = model(torch.rand(3, 1, 40, 40)).attention.boxes[:, :, 0]  # (B, V, 4)
    assert (boxes >= 0).all() and (boxes <= 40).all()
    assert ((boxes[..., 2:] - boxes[..., :2]) >= 20 - 1e-4).all()


def test_energy_regions_box_the_cells_above_the_mean():
    energy = torch.zeros(2, 4, 4)
    energy[0, 1:3, 2] = 4.0  # rows 1-2, column 2 → pixels x 20..30, y 10..30 of a 40×40 image
    energy[1, 3, 0] = 1.0  # one corner cell → a 10×10 box, grown to the minimum 20×20 and kept inside
    boxes = energy_regions(energy, 40, 40, threshold=1.0, min_region=0.5)
    torch.testing.assert_close(boxes, torch.tensor([[15.0, 10.0, 35.0, 30.0], [0.0, 20.0, 20.0, 40.0]]))


def test_energy_regions_keep_the_blob_around_the_peak():
    energy = torch.zeros(1, 8, 8)
    energy[0, 1:3, 1:3] = 5.0  # the peak blob: cells 1-2 → pixels 10..30 of an 80 px image
    energy[0, 6, 6] = 3.0  # a separate, weaker blob far away must not stretch the box
    boxes = energy_regions(energy, 80, 80, threshold=1.0, min_region=0.1)
    torch.testing.assert_close(boxes, torch.tensor([[10.0, 10.0, 30.0, 30.0]]))


def test_coarse_labels_come_from_the_mapping_when_the_batch_has_no_hierarchy():
    model = tiny("mgcnn-zoom", fine_to_coarse=(DIGIT_GROUPS,))
    labels = model.level_labels({"label": torch.tensor([0, 1, 3, 9])})
    assert labels.tolist() == [[0, 0], [1, 1], [2, 3], [0, 9]]
    out = model(torch.rand(4, 1, 40, 40))
    assert torch.isfinite(sum(model.losses(out, {"label": torch.tensor([0, 1, 3, 9])}).values()))
    with pytest.raises(ValueError, match="hierarchy"):
        tiny("mgcnn-zoom", fine_to_coarse=None).losses(out, {"label": torch.tensor([0, 1, 3, 9])})
    with pytest.raises(ValueError, match="batch.hierarchy: the model has 2 levels, the batch has 3"):
        model.losses(out, {"label": torch.zeros(4, dtype=torch.long), "hierarchy": torch.zeros(4, 3, dtype=torch.long)})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fine_to_coarse": ((0,) * 10,)},
         r"^model\.fine_to_coarse\[0\]: must map some fine class to every class of level 0 \(none maps to \[1, 2\]\), "
         r"got \(0, 0, 0, 0, 0, 0, 0, 0, 0, 0\)$"),
        ({"fine_to_coarse": ((0, 1, 2),)},
         r"^model\.fine_to_coarse\[0\]: needs a level-0 label for each of the 10 fine classes, got \(0, 1, 2\)$"),
        ({"fine_to_coarse": ((0, 1, 2, 3, 0, 1, 2, 0, 1, 2),)},
         r"^model\.fine_to_coarse\[0\]: labels must be in \[0, 3\) \(first outside: 3\), got \(0, 1, 2, 3,"),
        ({"fine_to_coarse": ()}, r"^model\.fine_to_coarse: needs one mapping per coarse level \(1\), got \(\)$"),
        ({"level_classes": ()}, r"^model\.level_classes: needs at least one level, got \(\)$"),
        ({"backbone": "resnet5"}, r"^model\.backbone: must be a known backbone \(small, .*resnet50.*\), got 'resnet5'$"),
        ({"min_region": 0.0}, r"^model\.min_region: must be in \(0, 1\], got 0\.0$"),
    ],
)
def test_config_errors_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        create_model("mgcnn-zoom", **overrides)


def test_batch_of_one_float64():
    model = tiny("mgcnn-cub").double()
    out = model(torch.rand(1, 3, 40, 40, dtype=torch.float64))
    assert out.logits.shape == (1, 50) and out.logits.dtype == torch.float64
    assert torch.isfinite(out.logits).all()
