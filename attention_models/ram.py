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

The config (RAMConfig) and the named variants (ram-mnist28, ...) are in ram_config.py, torch-free, so
the job service can validate a spec without PyTorch.

Letters: B batch, C channels, H/W image size, T glimpses, K retina scales, G patch size, N classes,
M Monte Carlo paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention_models.base import Attention, AttentionModel
from attention_models.episode import EpisodeLinear, lstm_step
from attention_models.losses import reinforce_terms
from attention_models.ram_config import RAMConfig
from attention_models.retina import (
    IntegralImage,
    Retina,
    check_path_noise,
    gaussian_location,
    monte_carlo_average,
    repeat_paths,
    scale_step_size,
    shrink_last_linear,
    uniform_location,
)


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

    def episode(self) -> Callable[[IntegralImage, Tensor], Tensor]:
        """f_g for the glimpses of one episode: (integral, l (B, 2)) -> g (B, glimpse_dim), with
        Linear(h_g) + Linear(h_l) as one GEMM (EpisodeLinear)."""
        what, where = EpisodeLinear(self.what), EpisodeLinear(self.where)
        out = EpisodeLinear(self.what_out, self.where_out)

        def glimpse(integral: IntegralImage, loc: Tensor) -> Tensor:
            rho = self.retina.read(integral, loc).flatten(1)  # (B, K*C*G*G)
            return F.relu(out(F.relu(what(rho)), F.relu(where(loc))))

        return glimpse

    def forward(self, integral: IntegralImage, loc: Tensor) -> Tensor:
        """integral: the retina's integral image of the batch (built once per episode); loc (B, 2)."""
        return self.episode()(integral, loc)


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

    def episode(self) -> Callable[[Tensor, tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]:
        """f_h for the steps of one episode, its two matmuls fused into one: (g_t, state) -> state."""
        if self.lstm:
            gates = EpisodeLinear(self.cell)
            return lambda g, state: lstm_step(gates, g, state)
        fused = EpisodeLinear(self.input, self.recurrent)
        return lambda g, state: (F.relu(fused(g, state[0])), state[1])

    def forward(self, g: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return self.episode()(g, state)


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
        self,
        images: Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
        first_locations: Tensor | None = None,
    ) -> RAMOutput:
        """images (B, C, H, W) in [0, 1]. `sample=False` follows the policy means (first glimpse at the
        centre when it is random), a deterministic path; `generator` makes the sampled path reproducible.
        `noise` (B, T, 2) standard normal and `first_locations` (B, 2) in [-1, 1] (with a random first
        glimpse) give the path's randomness explicitly (what an exported graph takes as inputs): the path is
        then a function of them, with l_t = mean_t + std * noise[:, t] (noise[:, 0] unused after a random
        first glimpse)."""
        cfg = self.config
        B, C, H, W = images.shape
        if (cfg.in_channels, cfg.image_size, cfg.image_size) != (C, H, W):
            raise ValueError(
                f"images: expected (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(images.shape)} (set image_size / in_channels in the config)"
            )
        check_path_noise(noise, first_locations, B, cfg.num_glimpses)
        h = images.new_zeros(B, cfg.core_hidden)
        state = (h, h)
        integral = self.retina.integral(images)  # (B, C, H+1, W+1), shared by the T glimpses
        # The per-glimpse nets with their weights read (and fused) once per episode, not per glimpse.
        T = cfg.num_glimpses
        glimpse, core, baseline = self.glimpse.episode(), self.core.episode(), EpisodeLinear(self.baseline)
        location = EpisodeLinear.sequential(self.location)
        locations, means, log_pis, baselines = [], [], [], []
        for t in range(T):
            policy_input = h if cfg.policy_through_core else h.detach()
            mean = torch.tanh(location(policy_input).float())  # (B, 2); REINFORCE reaches f_l (and h_t)
            if t == 0 and cfg.first_location == "random":
                if first_locations is not None:
                    loc = first_locations.to(mean.dtype)
                else:
                    loc = uniform_location(images, B, generator) if sample else mean.new_zeros(B, 2)
                log_pi = mean.new_zeros(B)
                mean = loc
            else:
                step_noise = None if noise is None else noise[:, t]
                loc, log_pi = gaussian_location(mean, cfg.location_std, sample, generator, step_noise)
            baselines.append(baseline(h.detach()).float().squeeze(-1))  # (B,)
            locations.append(loc)
            means.append(mean.detach())
            log_pis.append(log_pi)
            g = glimpse(integral, loc)  # (B, glimpse_dim)
            state = core(g, state)
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

    def losses(self, output: RAMOutput, batch: dict[str, Tensor], phase: str | None = None) -> dict[str, Tensor]:
        """classification, baseline and reinforce (the hybrid loss); RAM trains jointly, so no phases."""
        self.check_phase(phase)
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
        self,
        images: Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
        first_locations: Tensor | None = None,
    ) -> RAMOutput:
        """Monte Carlo evaluation: M = `samples` (default config.eval_samples) sampled glimpse paths per
        image, run as one batch of B * M; logits (B, N) are the log of the path-averaged class
        probabilities. samples=0 follows the deterministic mean path. Other fields come from each
        image's first path. No gradients. `noise` (B, M, T, 2) and `first_locations` (B, M, 2) give the
        paths' randomness explicitly (see `forward`)."""
        M = self.config.eval_samples if samples is None else samples
        if M == 0:
            return self(images, sample=False)
        noise, first_locations = repeat_paths(M, noise, first_locations)
        out = self(images.repeat_interleave(M, dim=0), sample=True, generator=generator,
                   noise=noise, first_locations=first_locations)
        return monte_carlo_average(out, M)

    def path_noise(self, samples: int) -> dict[str, tuple[int, ...]]:
        """The randomness of M = `samples` paths per image, as per-image shapes: noise (M, T, 2) standard
        normal, and first_locations (M, 2) uniform in [-1, 1] when the first glimpse is random."""
        if samples == 0:
            return {}
        shapes = {"noise": (samples, self.config.num_glimpses, 2)}
        if self.config.first_location == "random":
            shapes["first_locations"] = (samples, 2)
        return shapes

    def serving_outputs(self, output: RAMOutput) -> dict[str, Tensor]:
        """logits (B, N), prediction (B,) and glimpse_boxes (B, T, K, 4) in pixels."""
        return {"logits": output.logits, "prediction": self.predict(output), "glimpse_boxes": output.attention.boxes}

