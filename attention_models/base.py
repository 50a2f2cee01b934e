"""The contract every attention model family keeps, so one training loop serves them all.

Letters used in shapes across the package:
    B batch, C channels, H/W image height/width, T glimpses (RAM/DRAM steps), K retina scales,
    S RA-CNN scales, R regions (MG-CNN granularities), G patch size, L label-sequence length, N classes.

A batch is a dict of tensors (what `jobs.data` yields):
    "image":     (B, C, H, W) float in [0, 1]
    "label":     (B,) long, the class (for sequences: the first digit)
    "sequence":  (B, L) long, label sequence padded with -1 (multi-digit data only)
    "boxes":     (B, M, 4) float, ground-truth object boxes x0, y0, x1, y1 in pixels, NaN-padded
    "hierarchy": (B, V) long, labels coarse to fine; the last level is the fine class (hierarchical data only)
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attention_models.registry import family_training


@dataclass
class Attention:
    """Where a model looked, in original-image pixels, so one drawing routine serves every family.

    boxes: (B, T, K, 4) x0, y0, x1, y1. T indexes steps (RAM/DRAM glimpses), scales (RA-CNN) or
        granularities (MG-CNN); K indexes the nested retina patches of one glimpse (K = 1 otherwise).
    kind: "glimpse" | "scale" | "granularity", what T counts.
    """

    boxes: Tensor
    kind: str

    @property
    def centres(self) -> Tensor:
        """(B, T, 2) x, y centre of each step's first (finest) patch, in pixels."""
        b = self.boxes[:, :, 0]
        return torch.stack(((b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2), dim=-1)


class AttentionModel(nn.Module, ABC):
    """Base class of the four families: what a family offers the training loop (jobs/run/loop.py), which
    calls only the methods declared here. Subclasses set `family` and implement the abstract methods; the
    others have defaults that mean "nothing special" (one parameter group, no phases, no attention
    initialisation, no per-step logits).

    The model never steps an optimizer: it returns loss terms and names its parameter groups, and the
    training loop decides what to step when.
    """

    family: str = ""

    @abstractmethod
    def forward(self, images: Tensor):  # -> the family's output dataclass
        """Run the whole episode on (B, C, H, W) images; the output has `.logits` and `.attention`."""

    @abstractmethod
    def losses(self, output, batch: dict[str, Tensor], phase: str | None = None) -> dict[str, Tensor]:
        """Named scalar loss terms, already weighted by the config; the trainer sums them.

        `phase` is one of `phases()`: the terms of that phase only (the loop steps that phase's parameter
        group on them); None: every term (joint training, and evaluation). Families without phases refuse
        any other value (`check_phase`)."""

    @abstractmethod
    def predict(self, output) -> Tensor:
        """(B,) predicted class, or (B, L) predicted label sequence for sequence models."""

    def metrics(self, output, batch: dict[str, Tensor]) -> dict[str, float]:
        """Per-batch metrics beyond the loss terms (accuracy, per-scale accuracy, ...), as floats."""
        pred = self.predict(output)
        return {"accuracy": (pred == batch["label"]).float().mean().item()}

    def evaluate(self, images: Tensor, samples: int | None = None):
        """The output to score at evaluation time, without gradients. Stochastic families (RAM, DRAM)
        average `samples` sampled glimpse paths into `.logits`; the default is one forward pass."""
        with torch.no_grad():
            return self(images)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups. One group ("all") unless the family trains in alternating phases."""
        return {"all": [p for p in self.parameters() if p.requires_grad]}

    def phases(self) -> list[str]:
        """Parameter-group names the loop alternates between (RA-CNN); empty for joint training."""
        return []

    def check_phase(self, phase: str | None, known: list[str] | None = None) -> None:
        """Raise unless `phase` is None or one of `known` (default: `phases()`)."""
        known = self.phases() if known is None else known
        if phase is not None and phase not in known:
            raise ValueError(f"phase: must be one of {', '.join(map(repr, [*known, None]))}, got {phase!r}")

    def has_attention_init(self) -> bool:
        """Whether the family has an attention initialisation (`attention_init_losses`): the loop then steps
        every group on it for its first `optim.attention_init_steps` steps, before `losses`. False here."""
        return False

    def attention_init_losses(self, output, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Loss terms that place the attention before training proper (RA-CNN's APN initialisation, paper
        section 3.4). The default is none, {}; a family that overrides it also says so in
        `has_attention_init`."""
        return {}

    def step_logits(self, output) -> Tensor | None:
        """(B, T, N) class scores per step or scale that the attention records store beside the boxes
        (RA-CNN: one per scale); None (the default) when the family has no such scores."""
        return None

    def path_noise(self, samples: int) -> dict[str, tuple[int, ...]]:
        """The random inputs of `samples` sampled paths per image, name -> per-image shape, which
        `evaluate(images, samples, **noise)` takes with a leading batch dimension; {} for a deterministic
        family (one forward pass, the default), which then has only the mean path (samples 0)."""
        if samples:
            raise ValueError(f"samples: {self.family} is deterministic (one forward pass), must be 0, got {samples}")
        return {}

    @property
    def samples_paths(self) -> bool:
        """Whether evaluation samples glimpse paths (RAM, DRAM), which makes a mean path (samples 0) a
        different answer from a sampled one, and M training rollouts per image possible; the family's
        `Training` record (its `*_config.py`) owns that fact."""
        return family_training(self.family).samples_paths

    def lr_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by learning-rate group (the family's `Training.lr_groups`, the rest in
        "rest"), each group in `named_parameters()` order; groups without parameters are left out."""
        training = family_training(self.family)
        out: dict[str, list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if p.requires_grad:
                out.setdefault(training.group_of(name), []).append(p)
        return out

    def set_location_std(self, std: float) -> None:
        """Anneal the location policy's std (`optim.location_std_end`): the loop sets it each epoch. Only
        a family that samples paths has one; the rest refuse (the spec check refuses it earlier)."""
        if not self.samples_paths:
            raise ValueError(f"optim.location_std_end: {self.family} has no location policy")
        self.config = dataclasses.replace(self.config, location_std=float(std))

    def serving_outputs(self, output) -> dict[str, Tensor]:
        """The named tensors an exported model returns (attention_models/export.py): logits, prediction and
        the attention in original-image pixels. Default: logits (B, N), prediction (B,), boxes (B, T, 4)
        (T scales or granularities)."""
        return {"logits": output.logits, "prediction": self.predict(output), "boxes": output.attention.boxes[:, :, 0]}
