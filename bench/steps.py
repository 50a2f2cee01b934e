"""The one optimisation step the plain-loop benches share (the service's loop is jobs/run/loop.py)."""

from __future__ import annotations

import torch
from torch import Tensor


def train_step(model, optimizer: torch.optim.Optimizer, batch: dict[str, Tensor], step: int, clip: float | None = None) -> tuple[object, dict[str, Tensor]]:
    """Forward, summed loss terms, backward, optional grad-norm clip, optimizer step; returns (output, loss terms).
    Raises FloatingPointError naming the terms when the loss is not finite."""
    out = model(batch["image"])
    losses = model.losses(out, batch)
    loss = sum(losses.values())
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {step}: { {k: v.item() for k, v in losses.items()} }")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return out, losses
