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

The config (DRAMConfig) and the named variants (dram-multidigit, dram-pairs) are in dram_config.py,
torch-free, so the job service can validate a spec without PyTorch.

Letters: B batch, C channels, H/W image size, T glimpses, K retina scales, G patch size, S label slots,
L sequence length in the batch, N digit classes (N + 1 with EOS), M Monte Carlo paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention_models.base import Attention, AttentionModel
from attention_models.dram_config import DRAMConfig
from attention_models.episode import EpisodeLinear, lstm_step
from attention_models.losses import reinforce_terms
from attention_models.retina import (
    IntegralImage,
    Retina,
    check_path_noise,
    gaussian_location,
    monte_carlo_average,
    repeat_paths,
    scale_step_size,
    shrink_last_linear,
)

IGNORE = -100  # cross-entropy target of the slots after EOS


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

    def episode(self) -> Callable[[IntegralImage, Tensor], Tensor]:
        """The glimpse net for the glimpses of one episode: (integral, l (B, 2)) -> g (B, hidden)."""
        what, where = EpisodeLinear(self.what), EpisodeLinear(self.where)

        def glimpse(integral: IntegralImage, loc: Tensor) -> Tensor:
            patches = self.retina.read(integral, loc).to(self.what.weight.dtype)  # (B, K, C, G, G)
            features = self.conv(patches.flatten(1, 2))  # (B, c, G', G')
            return F.relu(what(features.flatten(1))) * F.relu(where(loc))  # (B, hidden)

        return glimpse

    def forward(self, integral: IntegralImage, loc: Tensor) -> Tensor:
        """integral: the retina's integral image of the batch (built once per episode); loc (B, 2)."""
        return self.episode()(integral, loc)


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
        self,
        images: Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> DRAMOutput:
        """images (B, C, H, W) in [0, 1]. `sample=False` follows the emission means (deterministic).
        `noise` (B, T, 2) standard normal gives the path's randomness explicitly (what an exported graph
        takes as an input): l_n = mean_n + std * noise[:, n]."""
        cfg = self.config
        B, C, H, W = images.shape
        if (cfg.in_channels, cfg.image_size, cfg.image_size) != (C, H, W):
            raise ValueError(
                f"images: expected (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(images.shape)} (set image_size / in_channels in the config)"
            )
        check_path_noise(noise, None, B, cfg.num_glimpses)
        zeros = images.new_zeros(B, cfg.hidden)
        r1 = (zeros, zeros)
        context = self.context(images)  # (B, hidden)
        r2 = (context, torch.zeros_like(context))
        integral = self.retina.integral(images)  # (B, C, H+1, W+1), shared by the T glimpses
        # The per-glimpse nets with their weights read (and fused) once per episode, not per glimpse.
        T = cfg.num_glimpses
        glimpse, emission = self.glimpse.episode(), EpisodeLinear(self.emission)
        baseline, lower, upper = (EpisodeLinear(m) for m in (self.baseline, self.lower, self.upper))
        classifier = EpisodeLinear.sequential(self.classifier)
        locations, means, log_pis, baselines, logits = [], [], [], [], []
        for n in range(T):
            mean = torch.tanh(emission(r2[0]).float())  # (B, 2)
            step_noise = None if noise is None else noise[:, n]
            loc, log_pi = gaussian_location(mean, cfg.location_std, sample, generator, step_noise)
            baselines.append(baseline(r2[0].detach()).float().squeeze(-1))  # (B,)
            locations.append(loc)
            means.append(mean.detach())
            log_pis.append(log_pi)
            g = glimpse(integral, loc)  # (B, hidden)
            r1 = lstm_step(lower, g, r1)
            r2 = lstm_step(upper, r1[0].detach(), r2)  # the "where" pathway does not train recognition
            if (n + 1) % cfg.glimpses_per_label == 0:
                logits.append(classifier(r1[0]))  # (B, N + 1)
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

    def losses(self, output: DRAMOutput, batch: dict[str, Tensor], phase: str | None = None) -> dict[str, Tensor]:
        """classification (summed over the label slots), baseline and reinforce; trained jointly, no phases."""
        self.check_phase(phase)
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
        self,
        images: Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> DRAMOutput:
        """M = `samples` sampled paths per image in one batch of B * M; logits (B, S, N + 1) are the log of
        the path-averaged label probabilities per slot. samples=0: the deterministic mean path. `noise`
        (B, M, T, 2) gives the paths' randomness explicitly (see `forward`)."""
        M = self.config.eval_samples if samples is None else samples
        if M == 0:
            return self(images, sample=False)
        noise, _ = repeat_paths(M, noise, None)
        out = self(images.repeat_interleave(M, dim=0), sample=True, generator=generator, noise=noise)
        return monte_carlo_average(out, M)

    def path_noise(self, samples: int) -> dict[str, tuple[int, ...]]:
        """The randomness of M = `samples` paths per image, as per-image shapes: noise (M, T, 2); none for
        the mean path (samples 0)."""
        return {"noise": (samples, self.config.num_glimpses, 2)} if samples else {}

    def serving_outputs(self, output: DRAMOutput) -> dict[str, Tensor]:
        """logits (B, S, N + 1) per label slot, prediction (B, max_digits) padded with -1, glimpse_boxes
        (B, T, K, 4) in pixels."""
        return {"logits": output.logits, "prediction": self.predict(output), "glimpse_boxes": output.attention.boxes}
