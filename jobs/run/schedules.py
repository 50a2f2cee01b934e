"""Per-epoch schedules of the learning rate and of the location policy's std, as plain functions of the
spec and the epoch (no torch), so the loop sets them at the start of each epoch and a resumed run lands on
the same values. Models never step a schedule (STYLE.md).

Learning rate at epoch e, with W = optim.warmup_epochs and E = optim.epochs:
    warm-up    e < W:  lr * (e + 1) / (W + 1)            (a ramp that reaches lr at epoch W)
    then, with s = e - W over the remaining n = E - W epochs, lr * f(s), never below optim.min_lr:
    constant   f = 1
    cosine     f = (1 + cos(pi * s / n)) / 2
    linear     f = 1 - s / n
    step       f = 0.1 ** (s // step_every)
    exponential f = lr_decay ** s                         (tfRAM's x0.98 per epoch, floor 1e-5)
A parameter group's rate is that times its `optim.lr_scales` entry (1 when absent).
"""

from __future__ import annotations

import math

from jobs.api.spec import OptimSpec


def lr_factor(o: OptimSpec, epoch: int) -> float:
    """f(s) of the schedule at `epoch` after the warm-up (1 during it: the ramp is `scheduled_lr`'s)."""
    s, n = epoch - o.warmup_epochs, max(o.epochs - o.warmup_epochs, 1)
    if s < 0:
        return 1.0
    if o.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * s / n))
    if o.schedule == "linear":
        return 1 - s / n
    if o.schedule == "step":
        return 0.1 ** (s // o.step_every)
    if o.schedule == "exponential":
        return o.lr_decay**s
    return 1.0


def scheduled_lr(o: OptimSpec, epoch: int) -> float:
    """The base learning rate of `epoch` (before a group's scale)."""
    if epoch < o.warmup_epochs:
        return o.lr * (epoch + 1) / (o.warmup_epochs + 1)
    return max(o.lr * lr_factor(o, epoch), o.min_lr)


def group_lr(o: OptimSpec, epoch: int, group: str) -> float:
    """The learning rate of parameter group `group` (a family's lr group name) at `epoch`."""
    return scheduled_lr(o, epoch) * o.lr_scales.get(group, 1.0)


def location_std(o: OptimSpec, start: float, epoch: int) -> float:
    """The location policy's std at `epoch`: `start` (the model's location_std) when no end is set, else
    linear from `start` at epoch 0 to `optim.location_std_end` at the last epoch."""
    if not o.location_std_end:
        return start
    return start + (o.location_std_end - start) * epoch / max(o.epochs - 1, 1)
