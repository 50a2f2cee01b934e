"""RAM's config and named variants, torch-free (why apart from ram.py: see configs.py). The model, its
output and its loss are in ram.py, which reads this config."""

from __future__ import annotations

from dataclasses import dataclass

from attention_models.configs import Training, need, need_int, variant

FAMILY = "ram"
# Where its parameters live (named_parameters prefixes), for per-group learning rates; see configs.Training.
TRAINING = Training(samples_paths=True, lr_groups={"location": ("location",), "baseline": ("baseline",), "glimpse": ("glimpse",), "core": ("core",), "classifier": ("classifier",)})


@dataclass(frozen=True)
class RAMConfig:
    image_size: int = 28  # H = W of the input; locations are normalised to it, patches are in its pixels
    in_channels: int = 1  # MNIST canvases are grey
    num_classes: int = 10  # digits
    num_glimpses: int = 6  # T; the paper's 28x28 error falls from 3.79 % (2) to 1.07 % (7)
    patch_size: int = 8  # G: 8x8 on 28x28, 12x12 on the 60x60 and 100x100 canvases
    num_scales: int = 1  # K retina patches per glimpse; 3 on 60x60, 4 on 100x100
    scale_factor: float = 2.0  # each patch twice as wide as the previous (paper)
    glimpse_hidden: int = 128  # dim h_g, "for all attention models" in the paper
    location_hidden: int = 128  # dim h_l
    glimpse_dim: int = 256  # dim g_t
    core_hidden: int = 256  # dim h_t, as in every reference implementation
    core: str = "rnn"  # "rnn": the paper's Rect(Linear + Linear); "lstm" for an LSTM cell
    location_std: float = 0.1  # fixed policy std in normalised units; the paper leaves it open, ports use 0.05-0.11
    policy_hidden: int = 0  # 0: the paper's linear f_l; > 0 adds a ReLU hidden layer (kevinzakka PR #32)
    # Step size of the location net relative to the rest (a reparametrisation, so it holds under any
    # optimiser): its only gradient is REINFORCE's, which is noisy, and Adam normalises away
    # reinforce_weight, so at full size the policy random-walks glimpses off the digits early in training.
    policy_lr_scale: float = 0.1
    # False: REINFORCE reaches only f_l (its input h_t detached, as kevinzakka's port). True: it also trains
    # the core and glimpse nets through h_t, as the paper's gradient over all of theta does; then the core
    # state is shaped for choosing where to look, not only for classifying.
    policy_through_core: bool = False
    first_location: str = "random"  # "random" (paper) or "learned" (sampled from the policy at h = 0)
    classification_weight: float = 1.0  # hybrid loss: cross-entropy
    baseline_weight: float = 1.0  # squared error of the baseline to the reward
    reinforce_weight: float = 1.0  # REINFORCE term; ports that use Adam often scale it down
    eval_samples: int = 1  # M glimpse paths averaged by `evaluate` when the caller does not say

    def __post_init__(self) -> None:
        positive = (
            "image_size", "in_channels", "num_glimpses", "patch_size", "num_scales",
            "glimpse_hidden", "location_hidden", "glimpse_dim", "core_hidden", "eval_samples",
        )  # fmt: skip
        for name in positive:
            need_int(self, name, 1)
        need_int(self, "num_classes", 2)
        need(self, self.patch_size <= self.image_size, "patch_size", f"must be <= image_size ({self.image_size})")
        need(self, self.scale_factor >= 1.0, "scale_factor", "must be >= 1")
        need(self, self.core in ("rnn", "lstm"), "core", "must be 'rnn' or 'lstm'")
        need(self, self.location_std > 0, "location_std", "must be > 0")
        need_int(self, "policy_hidden", 0)
        need(self, self.policy_lr_scale > 0, "policy_lr_scale", "must be > 0")
        need(self, isinstance(self.policy_through_core, bool), "policy_through_core", "must be true or false")
        need(self, self.first_location in ("random", "learned"), "first_location", "must be 'random' or 'learned'")
        for name in ("classification_weight", "baseline_weight", "reinforce_weight"):
            need(self, getattr(self, name) >= 0, name, "must be >= 0")


VARIANTS = (
    variant(
        "ram-mnist28", FAMILY, RAMConfig,
        "28x28 MNIST: 6 glimpses of 8x8, 1 scale (paper: 1.12 % error)",
        image_size=28, num_glimpses=6, patch_size=8, num_scales=1,
    ),
    variant(
        "ram-translated60", FAMILY, RAMConfig,
        "60x60 translated MNIST: 8 glimpses of 12x12, 3 scales (paper: 1.20 %)",
        image_size=60, num_glimpses=8, patch_size=12, num_scales=3,
    ),
    variant(
        "ram-cluttered60", FAMILY, RAMConfig,
        "60x60 cluttered translated MNIST: 8 glimpses of 12x12, 3 scales (paper: 4.04 %)",
        image_size=60, num_glimpses=8, patch_size=12, num_scales=3,
    ),
    variant(
        "ram-cluttered100", FAMILY, RAMConfig,
        "100x100 cluttered translated MNIST: 8 glimpses of 12x12, 4 scales (paper: 8.11 %, unverified)",
        image_size=100, num_glimpses=8, patch_size=12, num_scales=4,
    ),
)  # fmt: skip
