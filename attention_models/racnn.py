"""RA-CNN: Recurrent Attention CNN ("Look Closer to See Better", Fu, Zheng and Mei, CVPR 2017).

S scales. Scale 1 sees the whole image; at every scale s a backbone gives features F_s, a classifier gives
p_s = softmax(W_s pool(F_s)), and (for s < S) an attention proposal network (APN) gives a square
(t_x, t_y, t_l) (centre and half side, pixels of scale s's input) that is cut out with the boxcar mask and
zoomed to scale s+1's input (`crop.attention_crop`). Loss (paper eq. 6-7), as named terms:

    L = sum_s CE(p_s, y)  +  sum_{s<S} max(0, p_t(s) - p_t(s+1) + margin)     (p_t: true-class probability)

Training alternates (paper section 3.4): the classifier phase steps the backbones and classifiers on the
cross-entropy terms with the APNs fixed; the APN phase steps the APNs on the ranking term with the
classifiers fixed. The model names the two groups; the training loop alternates (see `RACNN.losses`):

    1. APN initialisation: step "apn" on `apn_init_losses` (~100 steps) so each box sits on the
       highest-response square of its scale's features (after classifier pre-training when there is any);
    2. step "classifiers" on `losses(out, batch, phase="classifiers")` until the CE terms level off;
    3. step "apn" on `losses(out, batch, phase="apn")` (the ranking term), then back to 2.

Measured on the zoom digits: an APN phase run while the finer classifier is still at chance undoes the
initialisation (its ranking gradient is noise, and Adam turns noise into full-size steps), so run phase 3
only once the classifiers have trained, and give the "apn" group a smaller learning rate (1e-4 against
1e-3 with Adam worked).

Departures from the paper, each for a stated reason:
- every scale's crop is read from the original image (its box composed through the scales) rather than from
  the previous scale's zoomed input, so scale 3 is not interpolated twice;
- (t_x, t_y, t_l) come from sigmoids mapped so that the box always lies inside the scale's input and
  t_l >= min_half_side * side (the paper's clamps have zero gradient where they bite);
- prediction fuses the scales by a linear classifier on the concatenated L2-normalised descriptors
  (the paper's "scale 1+2(+3)" fusion), trained with the classifiers.

The config (RACNNConfig) and the named variants (racnn-zoom, ...) are in racnn_config.py, torch-free, so
the job service can validate a spec without PyTorch.

Shapes: B batch, C channels, H/W image, S scales, N classes, L_s side of scale s's input, Cf feature channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention_models.backbones import build_backbone, pooled
from attention_models.base import Attention, AttentionModel
from attention_models.crop import attention_crop, boxes_xyxy, compose_boxes
from attention_models.losses import pairwise_ranking_loss
from attention_models.racnn_config import RACNNConfig
from attention_models.sampling import box_iou

CLASSIFIERS, APN = "classifiers", "apn"


class AttentionProposal(nn.Module):
    """APN: features (B, Cf, h, w) → square box (B, 3) t_x, t_y, t_l in pixels of a side×side input.

    FC → tanh → FC(3) → sigmoid (the paper's layers), then a = sigmoid outputs are mapped so that
    t_l = side * (lo + (hi - lo) a_l) and the centre keeps the box inside: t_x = t_l + (side - 2 t_l) a_x.
    """

    def __init__(self, in_channels: int, pool: int, hidden: int, min_half: float, max_half: float):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * pool * pool, hidden), nn.Tanh(), nn.Linear(hidden, 3))
        nn.init.normal_(self.fc[-1].weight, std=1e-3)  # paper: gaussian std 0.001, so boxes start centred
        nn.init.zeros_(self.fc[-1].bias)
        self.min_half, self.max_half = min_half, max_half

    def forward(self, features: Tensor, side: int) -> Tensor:
        a = torch.sigmoid(self.fc(self.pool(features)))  # (B, 3)
        half = side * (self.min_half + (self.max_half - self.min_half) * a[:, 2])  # (B,)
        centre = half.unsqueeze(1) + (side - 2 * half).unsqueeze(1) * a[:, :2]  # (B, 2)
        return torch.cat((centre, half.unsqueeze(1)), dim=1)  # (B, 3)


@dataclass
class RACNNOutput:
    """What one forward pass saw and predicted.

    logits: (B, N) fused prediction. scale_logits / scale_probs: (B, S, N) per scale.
    attention: boxes (B, S, 1, 4) in original-image pixels; scale 1's box is the whole image, scale s's box
        is the region its input was zoomed from.
    apn_boxes: (B, S-1, 3) t_x, t_y, t_l of each APN in pixels of its own scale's input.
    energy: per scale, (B, h_s, w_s) channel-mean of its last feature map (used by `apn_init_losses`).
    inputs: each scale's input image, (B, C, L_s, L_s) per scale, for display.
    """

    logits: Tensor
    scale_logits: Tensor
    scale_probs: Tensor
    attention: Attention
    apn_boxes: Tensor
    energy: tuple[Tensor, ...]
    inputs: tuple[Tensor, ...]


class RACNN(AttentionModel):
    """RA-CNN over `config.num_scales` scales. See the module docstring for the equations and phases."""

    family = "racnn"

    def __init__(self, config: RACNNConfig):
        super().__init__()
        self.config = c = config
        S = c.num_scales

        def backbone():
            return build_backbone(c.backbone, c.in_channels, c.backbone_width, c.weights_path)

        shared = backbone() if c.share_backbone else None
        self.backbones = nn.ModuleList(shared if shared is not None else backbone() for _ in range(S))
        cf = self.backbones[0].out_channels
        self.classifiers = nn.ModuleList(nn.Linear(cf, c.num_classes) for _ in range(S))
        self.fusion = nn.Linear(S * cf, c.num_classes)
        self.apns = nn.ModuleList(
            AttentionProposal(cf, c.apn_pool, c.apn_hidden, c.min_half_side, c.max_half_side) for _ in range(S - 1)
        )

    def forward(self, images: Tensor) -> RACNNOutput:
        c = self.config
        B, C, H, W = images.shape
        sizes = c.scale_sizes
        region = images.new_tensor([0.0, 0.0, W, H]).expand(B, 4)  # (B, 4) scale 1 sees the whole image
        x = images
        if sizes[0] != H or sizes[0] != W:
            x = F.interpolate(images, size=(sizes[0], sizes[0]), mode="bilinear", align_corners=False, antialias=True)
        logits, descriptors, regions, apn_boxes, energy, inputs = [], [], [region], [], [], []
        for s in range(c.num_scales):
            inputs.append(x)
            feats = self.backbones[s](x)  # (B, Cf, h, w)
            desc = pooled(feats)  # (B, Cf)
            logits.append(self.classifiers[s](desc))
            descriptors.append(F.normalize(desc, dim=1))
            energy.append(feats.mean(dim=1))  # (B, h, w)
            if s == c.num_scales - 1:
                break
            box = self.apns[s](feats, sizes[s])  # (B, 3) pixels of scale s's input
            apn_boxes.append(box)
            # The box in original pixels; the next scale zooms it out of the original image.
            region = compose_boxes(region, boxes_xyxy(box[:, :2], box[:, 2]), sizes[s])  # (B, 4)
            regions.append(region)
            centre = (region[:, :2] + region[:, 2:]) / 2  # (B, 2)
            half = (region[:, 2:] - region[:, :2]) / 2  # (B, 2)
            x = attention_crop(images, centre, half, sizes[s + 1], c.mask_steepness)  # (B, C, L, L)
        scale_logits = torch.stack(logits, dim=1)  # (B, S, N)
        return RACNNOutput(
            logits=self.fusion(torch.cat(descriptors, dim=1)),
            scale_logits=scale_logits,
            scale_probs=scale_logits.softmax(dim=-1),
            attention=Attention(torch.stack(regions, dim=1).unsqueeze(2), kind="scale"),  # (B, S, 1, 4)
            apn_boxes=torch.stack(apn_boxes, dim=1) if apn_boxes else images.new_zeros(B, 0, 3),
            energy=tuple(energy),
            inputs=tuple(inputs),
        )

    def losses(self, output: RACNNOutput, batch: dict[str, Tensor], phase: str | None = None) -> dict[str, Tensor]:
        """Named, weighted loss terms for `phase`.

        phase "classifiers": cls_scale{s} (CE of each scale) and cls_fused (CE of the fused prediction);
        phase "apn": rank (the pairwise ranking loss, the only APN objective in the paper);
        phase None: all of them (joint training, or evaluation).
        The loop should zero every gradient each step (`model.zero_grad()`) and step only the phase's group:
        in the classifier phase the CE gradient also reaches the APNs through the crop, and is discarded.
        """
        self.check_phase(phase, [CLASSIFIERS, APN])  # "apn" with one scale: no terms, not an error
        c = self.config
        label = batch["label"]
        terms: dict[str, Tensor] = {}
        if phase in (None, CLASSIFIERS):
            for s in range(c.num_scales):
                terms[f"cls_scale{s + 1}"] = c.cls_weight * F.cross_entropy(output.scale_logits[:, s], label)
            terms["cls_fused"] = c.fused_weight * F.cross_entropy(output.logits, label)
        if phase in (None, APN) and c.num_scales > 1:
            p_true = output.scale_probs.gather(2, label.view(-1, 1, 1).expand(-1, c.num_scales, 1)).squeeze(2)  # (B, S)
            terms["rank"] = c.rank_weight * pairwise_ranking_loss(p_true, c.margin)
        return terms

    def apn_init_targets(self, output: RACNNOutput) -> Tensor:
        """The square centred on the strongest response of each scale's last feature map, with half side
        `init_half_side` x side: (B, S-1, 3) t_x, t_y, t_l in pixels of that scale's input (paper section 3.4).
        Detached: the target comes from the features, it does not train them."""
        c = self.config
        targets = []
        for s in range(c.num_scales - 1):
            e = output.energy[s].detach()  # (B, h, w)
            B, h, w = e.shape
            side = c.scale_sizes[s]
            half = c.init_half_side * side
            # The highest-response square: total energy in every window the size of the target box
            # (a box filter, stride 1, windows inside the map), then the best window's centre.
            kh, kw = max(1, min(h, round(2 * half * h / side))), max(1, min(w, round(2 * half * w / side)))
            window = F.avg_pool2d(e.unsqueeze(1), (kh, kw), stride=1).squeeze(1)  # (B, h-kh+1, w-kw+1)
            peak = window.flatten(1).argmax(dim=1)  # (B,)
            cols = window.shape[2]
            cx = ((peak % cols).to(e.dtype) + kw / 2) * side / w
            cy = (torch.div(peak, cols, rounding_mode="floor").to(e.dtype) + kh / 2) * side / h
            centre = torch.stack((cx, cy), dim=1).clamp(half, side - half)  # (B, 2): the box stays inside
            targets.append(torch.cat((centre, centre.new_full((B, 1), half)), dim=1))  # (B, 3)
        if not targets:
            return output.apn_boxes.new_zeros(output.apn_boxes.shape[0], 0, 3)
        return torch.stack(targets, dim=1)

    def apn_init_losses(self, output: RACNNOutput, batch: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """APN initialisation (paper section 3.4): regress each APN's box onto `apn_init_targets`.

        Returns {"apn_init": smooth-L1 on (t_x, t_y, t_l) / side}. Step the "apn" group on it for a few hundred
        steps (after some classifier-phase steps, so that the features mean something), before alternating.
        `batch` is unused: the target comes from the model's own features.
        """
        c = self.config
        if c.num_scales < 2:
            return {"apn_init": output.logits.new_zeros(())}
        sides = output.apn_boxes.new_tensor(c.scale_sizes[:-1]).view(1, -1, 1)
        pred, target = output.apn_boxes / sides, self.apn_init_targets(output) / sides  # (B, S-1, 3)
        return {"apn_init": F.smooth_l1_loss(pred, target, beta=0.05)}

    def has_attention_init(self) -> bool:
        """True with more than one scale: there are APNs to initialise."""
        return self.config.num_scales > 1

    def attention_init_losses(self, output: RACNNOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """`apn_init_losses`, under the name jobs/run/loop.py calls for its first `attention_init_steps`."""
        return self.apn_init_losses(output, batch)

    def step_logits(self, output: RACNNOutput) -> Tensor:
        """(B, S, N) each scale's class scores, stored in the attention records beside each scale's box."""
        return output.scale_logits

    def serving_outputs(self, output: RACNNOutput) -> dict[str, Tensor]:
        """logits (B, N) fused, prediction (B,), scale_logits (B, S, N), boxes (B, S, 4) in original pixels."""
        return {"logits": output.logits, "prediction": self.predict(output), "scale_logits": output.scale_logits,
                "boxes": output.attention.boxes[:, :, 0]}

    def predict(self, output: RACNNOutput) -> Tensor:
        return output.logits.argmax(dim=-1)

    def metrics(self, output: RACNNOutput, batch: dict[str, Tensor]) -> dict[str, float]:
        """accuracy (fused), accuracy_scale{s}, and iou_scale{s}: mean IoU of scale s's box with the first
        true box (samples without one are left out)."""
        label = batch["label"]
        out = {"accuracy": (self.predict(output) == label).float().mean().item()}
        for s in range(self.config.num_scales):
            out[f"accuracy_scale{s + 1}"] = (output.scale_logits[:, s].argmax(-1) == label).float().mean().item()
        if "boxes" in batch:
            iou = box_iou(output.attention.boxes[:, :, 0], batch["boxes"][:, :1].to(output.logits.dtype))  # (B, S)
            valid = ~iou.isnan().any(dim=1)
            if valid.any():
                for s in range(self.config.num_scales):
                    out[f"iou_scale{s + 1}"] = iou[valid, s].mean().item()
        return out

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """{"classifiers": backbones, per-scale classifiers and fusion; "apn": the APNs} (disjoint)."""
        apn = [p for p in self.apns.parameters() if p.requires_grad]
        apn_ids = {id(p) for p in apn}
        return {CLASSIFIERS: [p for p in self.parameters() if p.requires_grad and id(p) not in apn_ids], APN: apn}

    def phases(self) -> list[str]:
        """["classifiers", "apn"]: alternate, stepping only that group on `losses(..., phase=...)`."""
        return [CLASSIFIERS, APN] if self.config.num_scales > 1 else [CLASSIFIERS]

