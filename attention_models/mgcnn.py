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

The config (MGCNNConfig) and the named variants (mgcnn-zoom, mgcnn-cub) are in mgcnn_config.py,
torch-free, so the job service can validate a spec without PyTorch.

Shapes: B batch, C channels, H/W image, V levels (R regions, one per level), N_v classes at level v.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention_models.backbones import build_backbone, pooled
from attention_models.base import Attention, AttentionModel
from attention_models.crop import attention_crop, boxes_xyxy
from attention_models.mgcnn_config import MGCNNConfig
from attention_models.sampling import box_iou


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

    def losses(self, output: MGCNNOutput, batch: dict[str, Tensor], phase: str | None = None) -> dict[str, Tensor]:
        """whole_level{v} and region_level{v} (CE per level, v = 1 coarsest) and fused (CE of the fine class).
        Everything trains jointly: no phases."""
        self.check_phase(phase)
        c = self.config
        labels = self.level_labels(batch)  # (B, V)
        terms: dict[str, Tensor] = {}
        for v in range(len(c.level_classes)):
            terms[f"whole_level{v + 1}"] = c.whole_weight * F.cross_entropy(output.whole_logits[v], labels[:, v])
            terms[f"region_level{v + 1}"] = c.region_weight * F.cross_entropy(output.level_logits[v], labels[:, v])
        terms["fused"] = c.fused_weight * F.cross_entropy(output.logits, batch["label"])
        return terms

    def serving_outputs(self, output: MGCNNOutput) -> dict[str, Tensor]:
        """logits (B, N) fused fine class, prediction (B,), boxes (B, V, 4) in original pixels, and
        level{v}_logits (B, N_v) of each level's descriptor classifier (v = 1 coarsest)."""
        levels = {f"level{v + 1}_logits": logits for v, logits in enumerate(output.level_logits)}
        return {"logits": output.logits, "prediction": self.predict(output), "boxes": output.attention.boxes[:, :, 0],
                **levels}

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

