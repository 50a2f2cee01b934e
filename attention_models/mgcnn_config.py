"""MG-CNN's config and named variants, torch-free (why apart from mgcnn.py: see configs.py). The model,
its region discovery, output and losses are in mgcnn.py, which reads this config."""

from __future__ import annotations

from dataclasses import dataclass

from attention_models.configs import Training, check_backbone, field_error, need, need_int, variant

FAMILY = "mgcnn"
# Where its parameters live (named_parameters prefixes), for per-group learning rates; see configs.Training.
TRAINING = Training(samples_paths=False, lr_groups={"trunk": ("backbones",), "heads": ("whole_heads", "level_heads", "fusion")})


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
        need(self, len(self.level_classes) >= 1, "level_classes", "needs at least one level")
        need(self, all(isinstance(n, int) and n >= 1 for n in self.level_classes), "level_classes",
             "must be class counts, integers >= 1")  # fmt: skip
        need(self, self.level_classes[-1] >= 2, "level_classes", "the last (fine) level needs >= 2 classes")
        need_int(self, "in_channels", 1)
        for f in ("image_size", "input_size", "region_size"):
            need_int(self, f, 8)
        check_backbone(self)
        need_int(self, "backbone_width", 1)
        need(self, self.energy_threshold > 0, "energy_threshold", "must be > 0")
        need(self, 0 < self.min_region <= 1, "min_region", "must be in (0, 1]")
        need(self, self.mask_steepness > 0, "mask_steepness", "must be > 0")
        for f in ("whole_weight", "region_weight", "fused_weight"):
            need(self, getattr(self, f) >= 0, f, "must be >= 0")
        if self.fine_to_coarse is not None:
            self._check_hierarchy()

    def _check_hierarchy(self) -> None:
        V, n_fine = len(self.level_classes), self.level_classes[-1]
        need(self, len(self.fine_to_coarse) == V - 1, "fine_to_coarse", f"needs one mapping per coarse level ({V - 1})")
        for v, mapping in enumerate(self.fine_to_coarse):
            field, n = f"model.fine_to_coarse[{v}]", self.level_classes[v]
            if len(mapping) != n_fine:
                raise field_error(field, f"needs a level-{v} label for each of the {n_fine} fine classes", mapping)
            bad = [m for m in mapping if not 0 <= m < n]
            if bad:
                raise field_error(field, f"labels must be in [0, {n}) (first outside: {bad[0]})", mapping)
            missing = sorted(set(range(n)) - set(mapping))
            if missing:
                shown = f"{missing[:10]}{' ...' if len(missing) > 10 else ''}"
                raise field_error(field, f"must map some fine class to every class of level {v} (none maps to {shown})",
                                  mapping)  # fmt: skip


# The zoom and digit recipes' two-level hierarchy (jobs.data.recipes.DIGIT_GROUPS): loops 0 6 8 9,
# strokes 1 4 7, curves 2 3 5 → the group of each digit 0-9.
DIGIT_GROUP_OF = (0, 1, 2, 2, 1, 2, 0, 1, 0, 0)

VARIANTS = (
    variant(
        "mgcnn-zoom", FAMILY, MGCNNConfig,
        "MG-CNN, small CNN per level, on the zoom digits: shape group -> digit",
        level_classes=(3, 10), fine_to_coarse=(DIGIT_GROUP_OF,), image_size=96, input_size=96, region_size=48,
        backbone_width=8, min_region=0.25,
    ),
    variant(
        "mgcnn-cub", FAMILY, MGCNNConfig,
        "MG-CNN, small CNN per level, CUB-50 order/family/genus/species at 128 px, branches at 64 px (CPU)",
        level_classes=(9, 20, 36, 50), in_channels=3, image_size=128, input_size=64, region_size=64,
        backbone_width=8,
    ),
)  # fmt: skip
