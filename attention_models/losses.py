"""Loss terms that more than one family uses: REINFORCE with a learned baseline, pairwise ranking."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def reinforce_terms(log_pi: Tensor, baselines: Tensor, reward: Tensor) -> tuple[Tensor, Tensor]:
    """REINFORCE with a learned baseline (Williams 1992; RAM eq. 2 with b_t).

    log_pi: (B, T) log-probability of each sampled location; baselines: (B, T) predicted reward;
    reward: (B,) or (B, T) return of the episode (e.g. 1 for a correct answer).
    Returns (policy_loss, baseline_loss). The advantage is detached, so the policy loss reaches only the
    location policy, and the baseline loss (MSE) reaches only the baseline network.
    """
    if reward.dim() == 1:
        reward = reward.unsqueeze(1).expand_as(baselines)
    reward = reward.to(baselines.dtype)
    advantage = (reward - baselines).detach()
    policy_loss = -(log_pi * advantage).sum(dim=1).mean()
    baseline_loss = F.mse_loss(baselines, reward)
    return policy_loss, baseline_loss


def pairwise_ranking_loss(p_true: Tensor, margin: float) -> Tensor:
    """RA-CNN's inter-scale ranking loss: sum over s of max(0, p_t(s) - p_t(s+1) + margin), batch mean.

    p_true: (B, S) probability of the true class at each scale. Rewards each finer scale for being more
    confident than the coarser one by at least `margin`.
    """
    if p_true.shape[1] < 2:
        return p_true.new_zeros(())
    gaps = p_true[:, :-1] - p_true[:, 1:] + margin  # (B, S-1)
    return torch.clamp(gaps, min=0).sum(dim=1).mean()
