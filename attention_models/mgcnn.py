"""MG-CNN: Multiple Granularity descriptors (Wang, Shen, Shao, Zhang, Xue and Zhang, ICCV 2015).

A label hierarchy with V levels, coarse to fine (e.g. order / family / genus / species; the last level is
the class). One branch per level v:

    F_v   = backbone_v(whole image)                 "detection": a CNN trained on level-v labels
    E_v   = mean_c F_v                              feature energy, (B, h, w)
    box_v = the box of the blob of cells with E_v >= threshold * mean(E_v) around E_v's peak   (regions)
    G_v   = backbone_v(zoom(image, box_v))          the granularity's own region, same batched crop as RA-CNN
    d_v   = [pool(F_v), pool(G_v)]                  the level-v descriptor
    level-v classifiers on pool(F_v) and on d_v; the fine prediction is a linear classifier on the
    concatenated L2-normalised descriptors of all levels (the paper's multi-grained descriptor).

Loss, as named terms: CE of each level's whole-image and descriptor classifiers against that level's labels,
and CE of the fused fine prediction.

Departures from the paper, for CPU training in one model: region discovery is the mean-threshold box of the
branch's own feature energy (as in SCDA) instead of selective-search proposals scored by energy; one backbone
per level reads both the whole image and its region; a softmax head replaces the SVM; everything trains
jointly (one parameter group). The box is detached: region discovery selects, it is not learned through the
crop.

Shapes: B batch, C channels, H/W image, V levels (R regions, one per level), N_v classes at level v.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention_models.backbones import build_backbone, check_backbone_name, pooled
from attention_models.base import Attention, AttentionModel
from attention_models.crop import attention_crop, boxes_xyxy
from attention_models.registry import register_variant
from attention_models.sampling import box_iou


@dataclass(frozen=True)
class MGCNNConfig:
    level_classes: tuple[int, ...] = (3, 10)  # classes per level, coarse → fine; the last is the class count
    fine_to_coarse: tuple[tuple[int, ...], ...] | None = None  # per coarse level, each fine class's label there
    in_channels: int = 1
    image_size: int = 64  # side of the images this variant expects (the whole-image branch resizes to input_size)
    input_size: int = 32  # side of each branch's whole-image input
    region_size: int = 32  # side each discovered region is zoomed to
    backbone: str = "small"  # "small", "efficientnet_lite0" or a torchvision classifier name
    backbone_width: int = 16  # first-stage width of the "small" CNN
    weights_path: str | None = None  # local backbone weights for every branch ("imagenet": Lite0's shipped ones)
    energy_threshold: float = 1.0  # a feature cell is in the region when its energy >= this × the mean (SCDA: 1)
    min_region: float = 0.3  # smallest region side, as a fraction of the image side
    mask_steepness: float = 10.0  # boxcar logistic k of the crop, per pixel of the original image
    whole_weight: float = 1.0  # weight of each level's whole-image CE
    region_weight: float = 1.0  # weight of each level's descriptor CE
    fused_weight: float = 1.0  # weight of the fused fine-class CE

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"model.{field}: {rule}, got {getattr(self, field)!r}")

        need(len(self.level_classes) >= 1, "level_classes", "needs at least one level")
        need(all(n >= 1 for n in self.level_classes), "level_classes", "every level needs >= 1 class")
        need(self.level_classes[-1] >= 2, "level_classes", "the last (fine) level needs >= 2 classes")
        need(self.in_channels >= 1, "in_channels", "must be >= 1")
        for f in ("image_size", "input_size", "region_size"):
            need(getattr(self, f) >= 8, f, "must be >= 8")
        check_backbone_name("model.backbone", self.backbone)
        need(self.backbone_width >= 1, "backbone_width", "must be >= 1")
        need(self.energy_threshold > 0, "energy_threshold", "must be > 0")
        need(0 < self.min_region <= 1, "min_region", "must be in (0, 1]")
        need(self.mask_steepness > 0, "mask_steepness", "must be > 0")
        for f in ("whole_weight", "region_weight", "fused_weight"):
            need(getattr(self, f) >= 0, f, "must be >= 0")
        if self.fine_to_coarse is not None:
            self._check_hierarchy()

    def _check_hierarchy(self) -> None:
        V, n_fine = len(self.level_classes), self.level_classes[-1]
        if len(self.fine_to_coarse) != V - 1:
            raise ValueError(
                f"model.fine_to_coarse: needs one mapping per coarse level ({V - 1}), got {len(self.fine_to_coarse)}"
            )
        for v, mapping in enumerate(self.fine_to_coarse):
            field = f"model.fine_to_coarse[{v}]"
            if len(mapping) != n_fine:
                raise ValueError(f"{field}: needs a level-{v} label for each of the {n_fine} fine classes, got {len(mapping)}")
            bad = [m for m in mapping if not 0 <= m < self.level_classes[v]]
            if bad:
                raise ValueError(f"{field}: labels must be in [0, {self.level_classes[v]}), got {bad[0]}")
            missing = sorted(set(range(self.level_classes[v])) - set(mapping))
            if missing:
                raise ValueError(
                    f"{field}: the hierarchy does not cover every class of level {v}: "
                    f"no fine class maps to {missing[:10]}{' ...' if len(missing) > 10 else ''}"
                )


def _run_around(marked: Tensor, peak: Tensor) -> tuple[Tensor, Tensor]:
    """The contiguous run of True in each row of `marked` (B, n) that contains index `peak` (B,):
    (start, end) with end exclusive. Batched: the nearest unmarked index on either side of the peak."""
    n = marked.shape[1]
    idx = torch.arange(n, device=marked.device).expand_as(marked)  # (B, n)
    gap = ~marked
    start = torch.where(gap & (idx < peak.unsqueeze(1)), idx, -1).amax(dim=1) + 1
    end = torch.where(gap & (idx > peak.unsqueeze(1)), idx, n).amin(dim=1)
    return start, end


def energy_regions(energy: Tensor, height: int, width: int, threshold: float, min_region: float) -> Tensor:
    """Region discovery: the box of the blob of high-energy feature cells around the energy peak.

    Cells with energy >= threshold × the map's mean are marked (SCDA's rule). SCDA keeps the largest connected
    component; here, batched, the region spans the contiguous run of marked columns (rows) containing the
    peak's column (row), on the marked mask projected onto each axis, so separate blobs away from the peak
    do not stretch the box.
    energy: (B, h, w) non-negative. Returns (B, 4) x0, y0, x1, y1 in pixels of an H×W image, each side at least
    min_region × the image side and the box inside the image.
    """
    B, h, w = energy.shape
    marked = energy >= threshold * energy.mean(dim=(1, 2), keepdim=True)  # (B, h, w)
    peak = energy.flatten(1).argmax(dim=1)  # (B,)
    py, px = torch.div(peak, w, rounding_mode="floor"), peak % w
    marked = marked | (energy == energy.amax(dim=(1, 2), keepdim=True))  # the peak is always marked
    x0, x1 = _run_around(marked.any(dim=1), px)  # (B,) columns
    y0, y1 = _run_around(marked.any(dim=2), py)  # (B,) rows
    cells = torch.stack((x0, y0, x1, y1), dim=1).to(energy.dtype)  # (B, 4) in feature cells
    box = cells * energy.new_tensor([width / w, height / h, width / w, height / h])  # (B, 4) pixels
    size = energy.new_tensor([width, height])
    half = ((box[:, 2:] - box[:, :2]) / 2).maximum(min_region * size / 2)  # (B, 2)
    centre = ((box[:, :2] + box[:, 2:]) / 2).clamp(min=half).minimum(size - half)  # (B, 2)
    return boxes_xyxy(centre, half)


@dataclass
class MGCNNOutput:
    """logits: (B, N) fused fine prediction. level_logits: per level v, (B, N_v) from the level-v descriptor;
    whole_logits: per level, (B, N_v) from the whole-image features. attention: boxes (B, V, 1, 4), the region
    of each granularity in original-image pixels. regions: each level's zoomed region (B, C, L, L), for display.
    """

    logits: Tensor
    level_logits: tuple[Tensor, ...]
    whole_logits: tuple[Tensor, ...]
    attention: Attention
    regions: tuple[Tensor, ...]


class MGCNN(AttentionModel):
    """MG-CNN over the levels of `config.level_classes`. See the module docstring."""

    family = "mgcnn"

    def __init__(self, config: MGCNNConfig):
        super().__init__()
        self.config = c = config
        V = len(c.level_classes)
        self.backbones = nn.ModuleList(
            build_backbone(c.backbone, c.in_channels, c.backbone_width, c.weights_path) for _ in range(V)
        )
        cf = self.backbones[0].out_channels
        self.whole_heads = nn.ModuleList(nn.Linear(cf, n) for n in c.level_classes)
        self.level_heads = nn.ModuleList(nn.Linear(2 * cf, n) for n in c.level_classes)
        self.fusion = nn.Linear(V * 2 * cf, c.level_classes[-1])
        if c.fine_to_coarse is not None:
            self.register_buffer("fine_to_coarse", torch.tensor(c.fine_to_coarse, dtype=torch.long), persistent=False)
        else:
            self.fine_to_coarse = None

    def forward(self, images: Tensor) -> MGCNNOutput:
        c = self.config
        B, C, H, W = images.shape
        x = images
        if c.input_size != H or c.input_size != W:
            x = F.interpolate(images, size=(c.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        descriptors, level_logits, whole_logits, boxes, regions = [], [], [], [], []
        for v, net in enumerate(self.backbones):
            feats = net(x)  # (B, Cf, h, w)
            whole = pooled(feats)  # (B, Cf)
            whole_logits.append(self.whole_heads[v](whole))
            box = energy_regions(feats.detach().mean(dim=1), H, W, c.energy_threshold, c.min_region)  # (B, 4)
            centre, half = (box[:, :2] + box[:, 2:]) / 2, (box[:, 2:] - box[:, :2]) / 2
            region = attention_crop(images, centre, half, c.region_size, c.mask_steepness)  # (B, C, L, L)
            desc = torch.cat((whole, pooled(net(region))), dim=1)  # (B, 2 Cf)
            level_logits.append(self.level_heads[v](desc))
            descriptors.append(F.normalize(desc, dim=1))
            boxes.append(box)
            regions.append(region)
        return MGCNNOutput(
            logits=self.fusion(torch.cat(descriptors, dim=1)),
            level_logits=tuple(level_logits),
            whole_logits=tuple(whole_logits),
            attention=Attention(torch.stack(boxes, dim=1).unsqueeze(2), kind="granularity"),  # (B, V, 1, 4)
            regions=tuple(regions),
        )

    def level_labels(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, V) labels coarse → fine: batch["hierarchy"], or derived from batch["label"] via fine_to_coarse."""
        V = len(self.config.level_classes)
        if "hierarchy" in batch:
            hierarchy = batch["hierarchy"]
            if hierarchy.shape[1] != V:
                raise ValueError(f"batch.hierarchy: the model has {V} levels, the batch has {hierarchy.shape[1]}")
            return hierarchy
        if V == 1:
            return batch["label"].unsqueeze(1)
        if self.fine_to_coarse is None:
            raise ValueError("batch: MG-CNN needs batch['hierarchy'], or model.fine_to_coarse to derive it")
        label = batch["label"]
        return torch.cat((self.fine_to_coarse[:, label].T, label.unsqueeze(1)), dim=1)  # (B, V)

    def losses(self, output: MGCNNOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """whole_level{v} and region_level{v} (CE per level, v = 1 coarsest) and fused (CE of the fine class)."""
        c = self.config
        labels = self.level_labels(batch)  # (B, V)
        terms: dict[str, Tensor] = {}
        for v in range(len(c.level_classes)):
            terms[f"whole_level{v + 1}"] = c.whole_weight * F.cross_entropy(output.whole_logits[v], labels[:, v])
            terms[f"region_level{v + 1}"] = c.region_weight * F.cross_entropy(output.level_logits[v], labels[:, v])
        terms["fused"] = c.fused_weight * F.cross_entropy(output.logits, batch["label"])
        return terms

    def predict(self, output: MGCNNOutput) -> Tensor:
        return output.logits.argmax(dim=-1)

    def metrics(self, output: MGCNNOutput, batch: dict[str, Tensor]) -> dict[str, float]:
        """accuracy (fused fine class), accuracy_level{v} (descriptor classifier), iou_level{v} (region vs the
        first true box, samples without one left out)."""
        out = {"accuracy": (self.predict(output) == batch["label"]).float().mean().item()}
        labels = self.level_labels(batch)
        for v, logits in enumerate(output.level_logits):
            out[f"accuracy_level{v + 1}"] = (logits.argmax(-1) == labels[:, v]).float().mean().item()
        if "boxes" in batch:
            iou = box_iou(output.attention.boxes[:, :, 0], batch["boxes"][:, :1].to(output.logits.dtype))  # (B, V)
            valid = ~iou.isnan().any(dim=1)
            if valid.any():
                for v in range(iou.shape[1]):
                    out[f"iou_level{v + 1}"] = iou[valid, v].mean().item()
        return out


# The zoom and digit recipes' two-level hierarchy (jobs.data.recipes.DIGIT_GROUPS): loops 0 6 8 9,
# strokes 1 4 7, curves 2 3 5 → the group of each digit 0-9.
DIGIT_GROUP_OF = (0, 1, 2, 2, 1, 2, 0, 1, 0, 0)

register_variant(
    "mgcnn-zoom",
    MGCNN,
    MGCNNConfig,
    description="MG-CNN, small CNN per level, on the zoom digits: shape group -> digit",
    level_classes=(3, 10),
    fine_to_coarse=(DIGIT_GROUP_OF,),
    image_size=96,
    input_size=96,
    region_size=48,
    backbone_width=8,
    min_region=0.25,
)
register_variant(
    "mgcnn-cub",
    MGCNN,
    MGCNNConfig,
    description="MG-CNN, small CNN per level, CUB-50 order/family/genus/species at 128 px, branches at 64 px (CPU)",
    level_classes=(9, 20, 36, 50),
    in_channels=3,
    image_size=128,
    input_size=64,
    region_size=64,
    backbone_width=8,
)
