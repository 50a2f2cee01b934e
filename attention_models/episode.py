"""Linear layers applied at every step of a glimpse episode, with one weight gradient for all T steps.

A recurrent episode applies the same Linear T times to (B, in) inputs. Plain autograd then computes, per
step, a (out, B) @ (B, in) weight gradient and adds it into the parameter's gradient: T small GEMMs and T
accumulations. `EpisodeLinear` keeps the forward exactly `x @ W.T + b` per step, but each step's backward
computes only its input gradient and stashes (grad_output, input); when autograd reaches the weights (after
every step, since each step reads them), one (out, T*B) @ (T*B, in) GEMM gives the whole weight gradient.
Same maths, up to float summation order; a few large GEMMs instead of many small ones is what a CPU runs
near its peak.

Several Linears whose outputs are summed (RAM's Linear(h_g) + Linear(h_l), an LSTM's input and hidden
projections) are fused into one: y = cat(x_1, x_2) @ cat(W_1, W_2).T + (b_1 + b_2), the weights
concatenated once per episode (the modules and their state_dict keys stay as they are).

Without gradients (inference, export) or under autocast it is a plain `F.linear` on the fused weights.

Letters: B batch, T steps, in/out feature sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Stash:
    """(grad_output, input) of every step whose backward has run, for the weights' one GEMM."""

    def __init__(self) -> None:
        self.grads: list[Tensor] = []
        self.inputs: list[Tensor] = []


class _FuseWeights(torch.autograd.Function):
    """Forward: the fused (out, sum in_i) weight and (out,) bias. Backward (after every step's): the weight
    and bias gradients of all stashed steps from two big reductions, split back to each Linear."""

    @staticmethod
    def forward(ctx, stash: _Stash, splits: list[int], *params: Tensor) -> tuple[Tensor, Tensor]:
        n = len(splits)
        weights, biases = params[:n], params[n:]
        ctx.stash, ctx.splits, ctx.has_bias = stash, splits, [b.numel() > 0 for b in biases]
        ctx.set_materialize_grads(False)
        bias = sum((b for b in biases if b.numel()), weights[0].new_zeros(weights[0].shape[0]))
        return torch.cat(weights, dim=1), bias

    @staticmethod
    def backward(ctx, _grad_weight: Tensor | None, _grad_bias: Tensor | None):
        stash = ctx.stash
        nones = [None] * (2 + 2 * len(ctx.splits))
        if not stash.grads:
            return tuple(nones)
        dy = torch.cat(stash.grads)  # (T*B, out)
        x = torch.cat(stash.inputs)  # (T*B, sum in_i)
        stash.grads.clear()
        stash.inputs.clear()
        grad_weights = list((dy.t() @ x).split(ctx.splits, dim=1))  # (out, in_i) each
        grad_bias = dy.sum(dim=0)  # (out,)
        biases = [grad_bias if has else None for has in ctx.has_bias]
        return (None, None, *grad_weights, *biases)


class _Step(torch.autograd.Function):
    """y = x @ W.T + b for one step; backward returns dx and stashes (dy, x) instead of dW, db."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, stash: _Stash) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stash = stash
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, weight = ctx.saved_tensors
        ctx.stash.grads.append(dy)
        ctx.stash.inputs.append(x)
        dx = dy @ weight if ctx.needs_input_grad[0] else None
        return dx, None, None, None


class EpisodeLinear:
    """The fused `layers` for one episode: call it as `f(x_1, ..., x_n)` with x_i (B, in_i), once per step,
    for sum_i Linear_i(x_i) (B, out). An nn.LSTMCell counts as its two Linears (input, hidden), so
    `EpisodeLinear(cell)(x, h)` is the cell's (B, 4 * hidden) gates. Build it once per forward pass, never
    keep it across passes (it holds the fused weights of this one)."""

    def __init__(self, *layers: nn.Linear | nn.LSTMCell):
        pairs = []
        for m in layers:
            if isinstance(m, nn.LSTMCell):
                pairs += [(m.weight_ih, m.bias_ih), (m.weight_hh, m.bias_hh)]
            else:
                pairs.append((m.weight, m.bias))  # a parametrised weight is computed here, once per episode
        weights = [w for w, _ in pairs]
        biases = [b if b is not None else weights[0].new_empty(0) for _, b in pairs]
        params = [*weights, *biases]
        self.deferred = (
            torch.is_grad_enabled()
            and any(p.requires_grad for p in params)
            and not torch.is_autocast_enabled(weights[0].device.type)
        )
        if self.deferred:
            self.stash = _Stash()
            self.weight, self.bias = _FuseWeights.apply(self.stash, [w.shape[1] for w in weights], *params)
        else:
            self.weight = torch.cat(weights, dim=1) if len(weights) > 1 else weights[0]
            present = [b for b in biases if b.numel()]
            self.bias = sum(present[1:], present[0]) if present else None

    @staticmethod
    def sequential(module: nn.Module) -> Callable[[Tensor], Tensor]:
        """A Linear, or an nn.Sequential of Linears and ReLUs, as EpisodeLinears: x (B, in) -> (B, out)."""
        layers = list(module) if isinstance(module, nn.Sequential) else [module]
        steps = [EpisodeLinear(m) if isinstance(m, nn.Linear) else m for m in layers]

        def run(x: Tensor) -> Tensor:
            for step in steps:
                x = step(x)
            return x

        return run

    def __call__(self, *inputs: Tensor) -> Tensor:
        x = torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0]  # (B, sum in_i)
        x = x.to(self.weight.dtype)
        if not self.deferred:
            return F.linear(x, self.weight, self.bias)
        return _Step.apply(x, self.weight, self.bias, self.stash)


def lstm_step(gates: EpisodeLinear, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """nn.LSTMCell's maths on the fused gates of `EpisodeLinear(cell)`: x (B, in), state (h, c) (B, hidden)
    each -> the next (h, c). Gates in PyTorch's order i, f, g, o."""
    h, c = state
    i, f, g, o = gates(x, h).chunk(4, dim=1)  # (B, hidden) each
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c
