"""DRAM: the Deep Recurrent Attention Model (Ba, Mnih, Kavukcuoglu, ICLR 2015, arXiv 1412.7755).

Reads a sequence of up to `max_digits` labels with `glimpses_per_label` glimpses per label, then one
more label slot for the end-of-sequence class EOS (= num_classes), so S = max_digits + 1 label slots and
T = glimpses_per_label * S glimpses. For n = 0 .. T-1:

    r2_{-1}   = context(x_coarse)              (context net on the down-sampled image; r1_{-1} = 0)
    l_n       ~ N(tanh(emission(r2_{n-1})), std^2 I), clamped to the image
    g_n       = G_image(rho(x, l_n)) * G_loc(l_n)          (conv stack on the retina patches, "what x where")
    r1_n      = LSTM_1(g_n, r1_{n-1})                      (recognition)
    r2_n      = LSTM_2(r1_n, r2_{n-1})                     (where to look next)
    b_n       = baseline(r2_{n-1})
    y_s       = classifier(r1_n)  after every `glimpses_per_label`-th glimpse, s = n // glimpses_per_label

Loss: per-label cross-entropy (digits, then EOS; slots after EOS ignored), summed over the sequence, and
REINFORCE with a learned baseline whose reward is cumulative: label slot s pays 1 if it and every slot
before it are right (the paper's "gradient truncated after the first wrong digit"), and each location
is credited with the reward of the labels emitted from its glimpse on.

Gradient routing, as RAM's: the classification loss trains the glimpse net, the lower LSTM and the
classifier; REINFORCE trains the "where" pathway (context net, upper LSTM, emission net), which reads the
lower layer without back-propagating into it; the baseline regresses on a detached upper state. The whole
where pathway takes `policy_lr_scale`-sized steps (see the config field): until the classifier can read,
REINFORCE's gradient is noise, and at full size Adam walks the emission into a saturated corner.

Letters: B batch, C channels, H/W image size, T glimpses, K retina scales, G patch size, S label slots,
L sequence length in the batch, N digit classes (N + 1 with EOS), M Monte Carlo paths.
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
)

IGNORE = -100  # cross-entropy target of the slots after EOS


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

    def __post_init__(self):
        positive = (
            "image_size", "in_channels", "max_digits", "glimpses_per_label", "patch_size", "num_scales",
            "hidden", "context_size", "classifier_hidden", "eval_samples",
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
        if len(self.conv_channels) != len(self.conv_kernels) or not self.conv_channels:
            raise ValueError("conv_channels: must be non-empty and as long as conv_kernels")
        if len(self.context_channels) != len(self.context_kernels) or not self.context_channels:
            raise ValueError("context_channels: must be non-empty and as long as context_kernels")
        if self.patch_size - sum(k - 1 for k in self.conv_kernels) < 1:
            raise ValueError(f"conv_kernels: the valid convolutions {self.conv_kernels} leave nothing of a "
                             f"{self.patch_size}x{self.patch_size} patch")  # fmt: skip
        if self.context_size > self.image_size:
            raise ValueError(f"context_size: must be <= image_size ({self.image_size}), got {self.context_size}")
        if not self.location_std > 0:
            raise ValueError(f"location_std: must be > 0, got {self.location_std}")
        if not self.policy_lr_scale > 0:
            raise ValueError(f"policy_lr_scale: must be > 0, got {self.policy_lr_scale}")
        for name in ("classification_weight", "baseline_weight", "reinforce_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")

    @property
    def num_slots(self) -> int:
        """S: digit slots plus the end-of-sequence slot."""
        return self.max_digits + 1

    @property
    def num_glimpses(self) -> int:
        """T = glimpses_per_label * S."""
        return self.glimpses_per_label * self.num_slots


@dataclass
class DRAMOutput:
    """One episode. logits (B, S, N + 1) per label slot (class N is EOS); locations / location_means
    (B, T, 2) in [-1, 1]; log_pi (B, T); baselines (B, T); attention boxes (B, T, K, 4)."""

    logits: Tensor
    locations: Tensor
    location_means: Tensor
    log_pi: Tensor
    baselines: Tensor
    attention: Attention


def conv_stack(in_channels: int, channels: tuple[int, ...], kernels: tuple[int, ...], padding: int | str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c, k in zip(channels, kernels):
        layers += [nn.Conv2d(in_channels, c, k, padding=padding), nn.ReLU()]
        in_channels = c
    return nn.Sequential(*layers)


class GlimpseNetwork(nn.Module):
    """g = G_image(rho(x, l)) * G_loc(l): conv stack on the K stacked patches, times a location embedding."""

    def __init__(self, cfg: DRAMConfig):
        super().__init__()
        self.retina = Retina(cfg.patch_size, cfg.num_scales, cfg.scale_factor)
        self.conv = conv_stack(cfg.num_scales * cfg.in_channels, cfg.conv_channels, cfg.conv_kernels, padding=0)
        side = cfg.patch_size - sum(k - 1 for k in cfg.conv_kernels)  # after the valid convolutions
        self.what = nn.Linear(cfg.conv_channels[-1] * side * side, cfg.hidden)
        self.where = nn.Linear(2, cfg.hidden)

    def forward(self, integral: Tensor, loc: Tensor) -> Tensor:
        """integral: the retina's integral image of the batch (built once per episode); loc (B, 2)."""
        patches = self.retina.read(integral, loc).to(self.what.weight.dtype)  # (B, K, C, G, G)
        features = self.conv(patches.flatten(1, 2))  # (B, c, G', G')
        what = F.relu(self.what(features.flatten(1)))  # (B, hidden)
        where = F.relu(self.where(loc.to(what.dtype)))  # (B, hidden)
        return what * where


class ContextNetwork(nn.Module):
    """Initial upper-layer state from the whole image, down-sampled to context_size (antialiased)."""

    def __init__(self, cfg: DRAMConfig):
        super().__init__()
        self.size = cfg.context_size
        self.conv = conv_stack(cfg.in_channels, cfg.context_channels, cfg.context_kernels, padding="same")
        self.grid = max(1, cfg.context_size // 4)  # pooled 4x before the FC: cheaper, a little shift-tolerant
        self.out = nn.Linear(cfg.context_channels[-1] * self.grid**2, cfg.hidden)

    def forward(self, images: Tensor) -> Tensor:
        coarse = F.interpolate(images, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        features = F.adaptive_avg_pool2d(self.conv(coarse), self.grid)  # (B, c, grid, grid)
        return torch.tanh(self.out(features.flatten(1)))  # (B, hidden), in an LSTM state's range


class DRAM(AttentionModel):
    """The deep recurrent attention model. `forward(images)` runs all T glimpses; `predict` returns the
    (B, max_digits) label sequences padded with -1 from the predicted EOS on."""

    family = "dram"

    def __init__(self, config: DRAMConfig):
        super().__init__()
        self.config = config
        self.glimpse = GlimpseNetwork(config)
        self.lower = nn.LSTMCell(config.hidden, config.hidden)  # r1: recognition
        self.upper = nn.LSTMCell(config.hidden, config.hidden)  # r2: where to look
        self.context = ContextNetwork(config)
        self.emission = nn.Linear(config.hidden, 2)
        shrink_last_linear(self.emission)
        for where in (self.context, self.upper, self.emission):
            scale_step_size(where, config.policy_lr_scale)
        self.baseline = nn.Linear(config.hidden, 1)
        self.classifier = nn.Sequential(
            nn.Linear(config.hidden, config.classifier_hidden),
            nn.ReLU(),
            nn.Linear(config.classifier_hidden, config.num_classes + 1),
        )

    @property
    def eos(self) -> int:
        return self.config.num_classes

    def forward(
        self, images: Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> DRAMOutput:
        """images (B, C, H, W) in [0, 1]. `sample=False` follows the emission means (deterministic)."""
        cfg = self.config
        B, C, H, W = images.shape
        if (cfg.in_channels, cfg.image_size, cfg.image_size) != (C, H, W):
            raise ValueError(
                f"images: expected (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(images.shape)} (set image_size / in_channels in the config)"
            )
        zeros = images.new_zeros(B, cfg.hidden)
        r1 = (zeros, zeros)
        context = self.context(images)  # (B, hidden)
        r2 = (context, torch.zeros_like(context))
        integral = self.retina.integral(images)  # (B, C, H+1, W+1), shared by the T glimpses
        locations, means, log_pis, baselines, logits = [], [], [], [], []
        for n in range(cfg.num_glimpses):
            mean = torch.tanh(self.emission(r2[0]).float())  # (B, 2)
            loc, log_pi = gaussian_location(mean, cfg.location_std, sample, generator)
            baselines.append(self.baseline(r2[0].detach()).float().squeeze(-1))  # (B,)
            locations.append(loc)
            means.append(mean.detach())
            log_pis.append(log_pi)
            g = self.glimpse(integral, loc)  # (B, hidden)
            r1 = self.lower(g, r1)
            r2 = self.upper(r1[0].detach(), r2)  # the "where" pathway does not train recognition
            if (n + 1) % cfg.glimpses_per_label == 0:
                logits.append(self.classifier(r1[0]))  # (B, N + 1)
        locations = torch.stack(locations, dim=1)  # (B, T, 2)
        return DRAMOutput(
            logits=torch.stack(logits, dim=1),  # (B, S, N + 1)
            locations=locations,
            location_means=torch.stack(means, dim=1),
            log_pi=torch.stack(log_pis, dim=1),  # (B, T)
            baselines=torch.stack(baselines, dim=1),  # (B, T)
            attention=Attention(self.retina.boxes(locations, H, W), kind="glimpse"),  # (B, T, K, 4)
        )

    @property
    def retina(self) -> Retina:
        return self.glimpse.retina

    def targets(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, S) slot targets: the digits, EOS, then IGNORE. Falls back to batch["label"] as a
        one-digit sequence when the batch has no "sequence"."""
        seq = batch.get("sequence")
        if seq is None:
            seq = batch["label"].unsqueeze(1)  # (B, 1)
        S = self.config.num_slots
        B, L = seq.shape
        lengths = (seq >= 0).sum(dim=1)  # (B,)
        if int(lengths.max()) > self.config.max_digits:
            raise ValueError(f"sequence: {int(lengths.max())} digits, more than max_digits={self.config.max_digits}")
        padded = seq.new_full((B, S), -1)
        padded[:, : min(L, S)] = seq[:, :S]
        slot = torch.arange(S, device=seq.device).unsqueeze(0)  # (1, S)
        eos = torch.full_like(padded, self.eos)
        ignore = torch.full_like(padded, IGNORE)
        return torch.where(slot < lengths.unsqueeze(1), padded, torch.where(slot == lengths.unsqueeze(1), eos, ignore))

    def rewards(self, output: DRAMOutput, targets: Tensor) -> Tensor:
        """(B, T) return of each glimpse: number of correctly read leading labels from its slot on."""
        cfg = self.config
        valid = targets != IGNORE
        right = (output.logits.detach().argmax(dim=-1) == targets) | ~valid  # (B, S)
        per_slot = (right.long().cumprod(dim=1).bool() & valid).float()  # (B, S) truncated at first error
        to_go = per_slot.flip(1).cumsum(dim=1).flip(1)  # (B, S) reward of slot s and after
        return to_go.repeat_interleave(cfg.glimpses_per_label, dim=1)  # (B, T)

    def losses(self, output: DRAMOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.config
        targets = self.targets(batch)  # (B, S)
        B, S, V = output.logits.shape
        ce = F.cross_entropy(output.logits.float().reshape(B * S, V), targets.reshape(B * S), ignore_index=IGNORE, reduction="sum") / B
        policy, baseline = reinforce_terms(output.log_pi, output.baselines, self.rewards(output, targets))
        return {
            "classification": cfg.classification_weight * ce,
            "baseline": cfg.baseline_weight * baseline,
            "reinforce": cfg.reinforce_weight * policy,
        }

    def predict(self, output: DRAMOutput) -> Tensor:
        """(B, max_digits) predicted digits, -1 from the first predicted EOS on."""
        pred = output.logits.argmax(dim=-1)  # (B, S)
        is_eos = pred == self.eos
        first_eos = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), pred.new_full(pred.shape[:1], self.config.max_digits))
        slot = torch.arange(self.config.max_digits, device=pred.device).unsqueeze(0)
        digits = pred[:, : self.config.max_digits]
        return torch.where(slot < first_eos.unsqueeze(1), digits, torch.full_like(digits, -1))

    def metrics(self, output: DRAMOutput, batch: dict[str, Tensor]) -> dict[str, float]:
        """accuracy: whole sequence right; label_accuracy: per label slot (digits and EOS)."""
        pred = self.predict(output)  # (B, max_digits)
        seq = batch.get("sequence")
        if seq is None:
            seq = batch["label"].unsqueeze(1)
        width = max(pred.shape[1], seq.shape[1])
        pred = F.pad(pred, (0, width - pred.shape[1]), value=-1)
        seq = F.pad(seq, (0, width - seq.shape[1]), value=-1)
        targets = self.targets(batch)
        valid = targets != IGNORE
        slot_right = (output.logits.argmax(dim=-1) == targets) & valid
        return {
            "accuracy": (pred == seq).all(dim=1).float().mean().item(),
            "label_accuracy": (slot_right.sum() / valid.sum()).item(),
            "first_digit_accuracy": (pred[:, 0] == seq[:, 0]).float().mean().item(),
        }

    @torch.no_grad()
    def evaluate(
        self, images: Tensor, samples: int | None = None, generator: torch.Generator | None = None
    ) -> DRAMOutput:
        """M = `samples` sampled paths per image in one batch of B * M; logits (B, S, N + 1) are the log of
        the path-averaged label probabilities per slot. samples=0: the deterministic mean path."""
        M = self.config.eval_samples if samples is None else samples
        if M == 0:
            return self(images, sample=False)
        out = self(images.repeat_interleave(M, dim=0), sample=True, generator=generator)
        return monte_carlo_average(out, M)


register_variant(
    "dram-multidigit", DRAM, DRAMConfig,
    description="multidigit recipe: 1-5 MNIST digits in a row on 128x128, read left to right",
    image_size=128, max_digits=5, glimpses_per_label=3, patch_size=12, num_scales=3, context_size=32,
    conv_channels=(32, 32, 64), hidden=256, classifier_hidden=256,
)  # fmt: skip
register_variant(
    "dram-pairs", DRAM, DRAMConfig,
    description="pairs recipe: two MNIST digits in a cluttered 100x100 canvas, read left to right",
    image_size=100, max_digits=2, glimpses_per_label=3, patch_size=12, num_scales=3, context_size=25,
    conv_channels=(32, 32, 64), hidden=256, classifier_hidden=256,
)  # fmt: skip
