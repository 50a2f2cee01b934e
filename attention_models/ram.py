"""RAM: the Recurrent Attention Model (Mnih, Heess, Graves, Kavukcuoglu, NIPS 2014, arXiv 1406.6247).

One episode of T glimpses on an image x, t = 0 .. T-1:
    l_0        random (paper) or ~ pi(. | h_{-1} = 0)
    g_t        = f_g(rho(x, l_t), l_t)
               = Rect(Linear(h_g) + Linear(h_l)),  h_g = Rect(Linear(rho)), h_l = Rect(Linear(l_t))
    h_t        = f_h(h_{t-1}, g_t) = Rect(Linear(h_{t-1}) + Linear(g_t))      (or an LSTM cell)
    l_{t+1}    ~ N(tanh(f_l(h_t)), std^2 I), clamped to the image; f_l = Linear, fixed std
    b_{t+1}    = f_b(h_t)                                                     (baseline: expected reward)
    logits     = f_a(h_{T-1}) = Linear(h_{T-1})                               (action net, last step only)

Index convention: log_pi[:, t] is the log-probability of l_t and baselines[:, t] the reward predicted from
the state that chose it (h_{t-1}); with the random first glimpse log_pi[:, 0] = 0.

Hybrid loss: cross-entropy trains the action, core and glimpse nets; the baseline regresses the reward
(1 if the final answer is right); REINFORCE with the baseline subtracted trains only the location net f_l
(its input h_t is detached, and the sampled l_t carries no gradient into the glimpse net); with
`policy_through_core` it also trains the core and glimpse nets through h_t, as in the paper.

Two choices the paper leaves open, both config fields: f_l starts near zero (glimpses start at the
centre) and takes `policy_lr_scale`-sized steps; see `retina.shrink_last_linear` and `retina.scale_step_size`
for why (in short runs a full-size policy random-walks the glimpses off the digits).

Letters: B batch, C channels, H/W image size, T glimpses, K retina scales, G patch size, N classes,
M Monte Carlo paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention_models.base import Attention, AttentionModel
from attention_models.losses import reinforce_terms
from attention_models.registry import register_variant
from attention_models.retina import (
    Retina,
    gaussian_location,
    monte_carlo_average,
    scale_step_size,
    shrink_last_linear,
    uniform_location,
)


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

    def __post_init__(self):
        positive = (
            "image_size", "in_channels", "num_glimpses", "patch_size", "num_scales",
            "glimpse_hidden", "location_hidden", "glimpse_dim", "core_hidden", "eval_samples",
        )  # fmt: skip
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes: must be an integer >= 2, got {self.num_classes!r}")
        if self.patch_size > self.image_size:
            raise ValueError(f"patch_size: must be <= image_size ({self.image_size}), got {self.patch_size}")
        if not self.scale_factor >= 1.0:
            raise ValueError(f"scale_factor: must be >= 1, got {self.scale_factor}")
        if self.core not in ("rnn", "lstm"):
            raise ValueError(f"core: must be 'rnn' or 'lstm', got {self.core!r}")
        if not self.location_std > 0:
            raise ValueError(f"location_std: must be > 0, got {self.location_std}")
        if not isinstance(self.policy_hidden, int) or self.policy_hidden < 0:
            raise ValueError(f"policy_hidden: must be an integer >= 0, got {self.policy_hidden!r}")
        if not self.policy_lr_scale > 0:
            raise ValueError(f"policy_lr_scale: must be > 0, got {self.policy_lr_scale}")
        if not isinstance(self.policy_through_core, bool):
            raise ValueError(f"policy_through_core: must be true or false, got {self.policy_through_core!r}")
        if self.first_location not in ("random", "learned"):
            raise ValueError(f"first_location: must be 'random' or 'learned', got {self.first_location!r}")
        for name in ("classification_weight", "baseline_weight", "reinforce_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


@dataclass
class RAMOutput:
    """One episode. logits (B, N); locations (B, T, 2) glimpse centres in [-1, 1]; location_means (B, T, 2)
    the policy means they were drawn from; log_pi (B, T); baselines (B, T); attention boxes (B, T, K, 4)."""

    logits: Tensor
    locations: Tensor
    location_means: Tensor
    log_pi: Tensor
    baselines: Tensor
    attention: Attention


class GlimpseNetwork(nn.Module):
    """f_g: (B, C, H, W), l (B, 2) -> g (B, glimpse_dim) = Rect(Linear(h_g) + Linear(h_l))."""

    def __init__(self, cfg: RAMConfig):
        super().__init__()
        self.retina = Retina(cfg.patch_size, cfg.num_scales, cfg.scale_factor)
        self.what = nn.Linear(cfg.in_channels * self.retina.feature_size, cfg.glimpse_hidden)
        self.where = nn.Linear(2, cfg.location_hidden)
        self.what_out = nn.Linear(cfg.glimpse_hidden, cfg.glimpse_dim)
        self.where_out = nn.Linear(cfg.location_hidden, cfg.glimpse_dim)

    def forward(self, integral: Tensor, loc: Tensor) -> Tensor:
        """integral: the retina's integral image of the batch (built once per episode); loc (B, 2)."""
        rho = self.retina.read(integral, loc).flatten(1).to(self.what.weight.dtype)  # (B, K*C*G*G)
        h_g = F.relu(self.what(rho))
        h_l = F.relu(self.where(loc.to(rho.dtype)))
        return F.relu(self.what_out(h_g) + self.where_out(h_l))


class CoreNetwork(nn.Module):
    """f_h: h_t = Rect(Linear(h_{t-1}) + Linear(g_t)), or an LSTM cell. State is h or (h, c)."""

    def __init__(self, cfg: RAMConfig):
        super().__init__()
        self.lstm = cfg.core == "lstm"
        if self.lstm:
            self.cell = nn.LSTMCell(cfg.glimpse_dim, cfg.core_hidden)
        else:
            self.input = nn.Linear(cfg.glimpse_dim, cfg.core_hidden)
            self.recurrent = nn.Linear(cfg.core_hidden, cfg.core_hidden)

    def forward(self, g: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        if self.lstm:
            return self.cell(g, (h, c))
        return F.relu(self.input(g) + self.recurrent(h)), c


class RAM(AttentionModel):
    """The recurrent attention model. `forward(images)` runs the whole episode and returns a RAMOutput."""

    family = "ram"

    def __init__(self, config: RAMConfig):
        super().__init__()
        self.config = config
        self.glimpse = GlimpseNetwork(config)
        self.core = CoreNetwork(config)
        if config.policy_hidden:  # f_l: mean of the location policy (pre-tanh)
            f_l = nn.Sequential(
                nn.Linear(config.core_hidden, config.policy_hidden), nn.ReLU(), nn.Linear(config.policy_hidden, 2)
            )
        else:
            f_l = nn.Linear(config.core_hidden, 2)
        shrink_last_linear(f_l)
        scale_step_size(f_l, config.policy_lr_scale)
        self.location = f_l
        self.baseline = nn.Linear(config.core_hidden, 1)  # f_b
        self.classifier = nn.Linear(config.core_hidden, config.num_classes)  # f_a

    @property
    def retina(self) -> Retina:
        return self.glimpse.retina

    def forward(
        self, images: Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> RAMOutput:
        """images (B, C, H, W) in [0, 1]. `sample=False` follows the policy means (first glimpse at the
        centre when it is random), a deterministic path; `generator` makes the sampled path reproducible."""
        cfg = self.config
        B, C, H, W = images.shape
        if (cfg.in_channels, cfg.image_size, cfg.image_size) != (C, H, W):
            raise ValueError(
                f"images: expected (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(images.shape)} (set image_size / in_channels in the config)"
            )
        h = images.new_zeros(B, cfg.core_hidden)
        state = (h, h)
        integral = self.retina.integral(images)  # (B, C, H+1, W+1), shared by the T glimpses
        locations, means, log_pis, baselines = [], [], [], []
        for t in range(cfg.num_glimpses):
            policy_input = h if cfg.policy_through_core else h.detach()
            mean = torch.tanh(self.location(policy_input).float())  # (B, 2); REINFORCE reaches f_l (and h_t)
            if t == 0 and cfg.first_location == "random":
                loc = uniform_location(images, B, generator) if sample else mean.new_zeros(B, 2)
                log_pi = mean.new_zeros(B)
                mean = loc
            else:
                loc, log_pi = gaussian_location(mean, cfg.location_std, sample, generator)
            baselines.append(self.baseline(h.detach()).float().squeeze(-1))  # (B,)
            locations.append(loc)
            means.append(mean.detach())
            log_pis.append(log_pi)
            g = self.glimpse(integral, loc)  # (B, glimpse_dim)
            state = self.core(g, state)
            h = state[0]
        logits = self.classifier(h)  # (B, N)
        locations = torch.stack(locations, dim=1)  # (B, T, 2)
        return RAMOutput(
            logits=logits,
            locations=locations,
            location_means=torch.stack(means, dim=1),
            log_pi=torch.stack(log_pis, dim=1),  # (B, T)
            baselines=torch.stack(baselines, dim=1),  # (B, T)
            attention=Attention(self.retina.boxes(locations, H, W), kind="glimpse"),  # (B, T, K, 4)
        )

    def losses(self, output: RAMOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.config
        label = batch["label"]
        reward = (output.logits.detach().argmax(dim=-1) == label).float()  # (B,) 1 for a right answer
        policy, baseline = reinforce_terms(output.log_pi, output.baselines, reward)
        return {
            "classification": cfg.classification_weight * F.cross_entropy(output.logits.float(), label),
            "baseline": cfg.baseline_weight * baseline,
            "reinforce": cfg.reinforce_weight * policy,
        }

    def predict(self, output: RAMOutput) -> Tensor:
        return output.logits.argmax(dim=-1)  # (B,)

    def metrics(self, output: RAMOutput, batch: dict[str, Tensor]) -> dict[str, float]:
        reward = (self.predict(output) == batch["label"]).float()
        return {
            "accuracy": reward.mean().item(),
            "baseline_error": (output.baselines - reward.unsqueeze(1)).abs().mean().item(),
        }

    @torch.no_grad()
    def evaluate(
        self, images: Tensor, samples: int | None = None, generator: torch.Generator | None = None
    ) -> RAMOutput:
        """Monte Carlo evaluation: M = `samples` (default config.eval_samples) sampled glimpse paths per
        image, run as one batch of B * M; logits (B, N) are the log of the path-averaged class
        probabilities. samples=0 follows the deterministic mean path. Other fields come from each
        image's first path. No gradients."""
        M = self.config.eval_samples if samples is None else samples
        if M == 0:
            return self(images, sample=False)
        out = self(images.repeat_interleave(M, dim=0), sample=True, generator=generator)
        return monte_carlo_average(out, M)


register_variant(
    "ram-mnist28", RAM, RAMConfig,
    description="28x28 MNIST: 6 glimpses of 8x8, 1 scale (paper: 1.12 % error)",
    image_size=28, num_glimpses=6, patch_size=8, num_scales=1,
)  # fmt: skip
register_variant(
    "ram-translated60", RAM, RAMConfig,
    description="60x60 translated MNIST: 8 glimpses of 12x12, 3 scales (paper: 1.20 %)",
    image_size=60, num_glimpses=8, patch_size=12, num_scales=3,
)  # fmt: skip
register_variant(
    "ram-cluttered60", RAM, RAMConfig,
    description="60x60 cluttered translated MNIST: 8 glimpses of 12x12, 3 scales (paper: 4.04 %)",
    image_size=60, num_glimpses=8, patch_size=12, num_scales=3,
)  # fmt: skip
register_variant(
    "ram-cluttered100", RAM, RAMConfig,
    description="100x100 cluttered translated MNIST: 8 glimpses of 12x12, 4 scales (paper: 8.11 %, unverified)",
    image_size=100, num_glimpses=8, patch_size=12, num_scales=4,
)  # fmt: skip
