"""DRAM's config and named variants, torch-free (why apart from dram.py: see configs.py). The model, its
output and its loss are in dram.py, which reads this config."""

from __future__ import annotations

from dataclasses import dataclass

from attention_models.configs import Training, need, need_int, variant

FAMILY = "dram"
# Where its parameters live (named_parameters prefixes), for per-group learning rates; see configs.Training.
TRAINING = Training(samples_paths=True, lr_groups={"location": ("emission",), "baseline": ("baseline",), "context": ("context",), "glimpse": ("glimpse",), "core": ("lower", "upper"), "classifier": ("classifier",)})


@dataclass(frozen=True)
class DRAMConfig:
    image_size: int = 64  # H = W of the input canvas
    in_channels: int = 1  # grey MNIST canvases
    num_classes: int = 10  # digit classes; the classifier has one more output, EOS
    max_digits: int = 5  # longest sequence read; sequences of 1 .. max_digits work
    glimpses_per_label: int = 3  # the paper's N = 3 glimpses per emitted label
    patch_size: int = 12  # G
    num_scales: int = 2  # a full-resolution patch and a 2x wider, down-sampled surround
    scale_factor: float = 2.0
    conv_channels: tuple[int, ...] = (64, 64, 128)  # the paper's glimpse conv stack (SVHN)
    conv_kernels: tuple[int, ...] = (5, 3, 3)  # valid convolutions, no pooling, as in the paper
    hidden: int = 512  # units per LSTM layer and glimpse feature size; 512 on SVHN
    context_size: int = 24  # side of the down-sampled image the context net reads
    context_channels: tuple[int, ...] = (16, 32, 32)  # three conv layers, as in the paper
    context_kernels: tuple[int, ...] = (5, 3, 3)  # "same" convolutions on the coarse image
    classifier_hidden: int = 256  # the classification net's FC hidden layer
    location_std: float = 0.1  # fixed policy std, normalised units (ports use 0.1-0.11)
    # Step size of the whole "where" pathway (context net, upper LSTM, emission net) relative to the rest,
    # a reparametrisation (retina.scale_step_size), so it holds under Adam. Until the classifier can read,
    # the reward is noise, and Adam turns noise into full-size steps: at scale 1 the emission drifts to a
    # corner, where tanh saturates and it stays (and the context net's output stops depending on the image).
    policy_lr_scale: float = 0.1
    classification_weight: float = 1.0
    baseline_weight: float = 1.0
    reinforce_weight: float = 1.0
    eval_samples: int = 1  # M paths averaged by `evaluate` when the caller does not say

    def __post_init__(self) -> None:
        positive = (
            "image_size", "in_channels", "max_digits", "glimpses_per_label", "patch_size", "num_scales",
            "hidden", "context_size", "classifier_hidden", "eval_samples",
        )  # fmt: skip
        for name in positive:
            need_int(self, name, 1)
        need_int(self, "num_classes", 2)
        need(self, self.patch_size <= self.image_size, "patch_size", f"must be <= image_size ({self.image_size})")
        need(self, self.scale_factor >= 1.0, "scale_factor", "must be >= 1")
        for channels, kernels in (("conv_channels", "conv_kernels"), ("context_channels", "context_kernels")):
            need(self, 0 < len(getattr(self, channels)) == len(getattr(self, kernels)), channels,
                 f"must be non-empty and as long as {kernels} {getattr(self, kernels)}")  # fmt: skip
        need(self, self.patch_size - sum(k - 1 for k in self.conv_kernels) >= 1, "conv_kernels",
             f"must leave something of a {self.patch_size}x{self.patch_size} patch (valid convolutions)")  # fmt: skip
        need(self, self.context_size <= self.image_size, "context_size", f"must be <= image_size ({self.image_size})")
        need(self, self.location_std > 0, "location_std", "must be > 0")
        need(self, self.policy_lr_scale > 0, "policy_lr_scale", "must be > 0")
        for name in ("classification_weight", "baseline_weight", "reinforce_weight"):
            need(self, getattr(self, name) >= 0, name, "must be >= 0")

    @property
    def num_slots(self) -> int:
        """S: digit slots plus the end-of-sequence slot."""
        return self.max_digits + 1

    @property
    def num_glimpses(self) -> int:
        """T = glimpses_per_label * S."""
        return self.glimpses_per_label * self.num_slots


VARIANTS = (
    variant(
        "dram-multidigit", FAMILY, DRAMConfig,
        "multidigit recipe: 1-5 MNIST digits in a row on 128x128, read left to right",
        image_size=128, max_digits=5, glimpses_per_label=3, patch_size=12, num_scales=3, context_size=32,
        conv_channels=(32, 32, 64), hidden=256, classifier_hidden=256,
    ),
    variant(
        "dram-pairs", FAMILY, DRAMConfig,
        "pairs recipe: two MNIST digits in a cluttered 100x100 canvas, read left to right",
        image_size=100, max_digits=2, glimpses_per_label=3, patch_size=12, num_scales=3, context_size=25,
        conv_channels=(32, 32, 64), hidden=256, classifier_hidden=256,
    ),
)  # fmt: skip
