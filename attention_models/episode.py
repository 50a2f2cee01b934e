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

Without gradients (inference, export), under autocast or torch.compile it is a plain `F.linear` on the fused
weights.

Letters: B batch, T steps, in/out feature sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Stash:
    """The inputs of every step, and the grad_output of every step whose backward has run, for the weights'
    one GEMM. Inputs go into one (steps * B, in) buffer as they come, so that GEMM reads them without a
    concatenation (a step past `steps`, or of another batch size, keeps its own tensor)."""

    def __init__(self, steps: int | None) -> None:
        self.steps = steps or 0
        self.buffer: Tensor | None = None
        self.rows: list[Tensor] = []  # step t's (B, in) input, a view into the buffer where it fits
        self.all_in_buffer = True  # every row so far is the next block of the buffer
        self.grads: dict[int, Tensor] = {}  # step t -> its (B, out) grad_output

    def write(self, inputs: tuple[Tensor, ...]) -> tuple[int, Tensor]:
        """Store cat(inputs) (B, in) as the next step's input; return the step index and the stored rows."""
        B, width = inputs[0].shape[0], sum(x.shape[1] for x in inputs)
        if self.buffer is None and self.steps:
            self.buffer = inputs[0].new_empty(self.steps * B, width)
        t = len(self.rows)
        fits = self.buffer is not None and (t + 1) * B <= self.buffer.shape[0] and all(r.shape[0] == B for r in self.rows)
        row = self.buffer[t * B : (t + 1) * B] if fits else inputs[0].new_empty(B, width)
        self.all_in_buffer &= fits
        if len(inputs) > 1:
            torch.cat(inputs, dim=1, out=row)
        else:
            row.copy_(inputs[0])
        self.rows.append(row)
        return t, row

    def take(self) -> tuple[Tensor, Tensor] | None:
        """(dy (n, out), x (n, in)) of the steps whose backward ran, in step order; the grads are cleared
        (the inputs stay, for a second backward through a retained graph)."""
        if not self.grads:
            return None
        steps = sorted(self.grads)
        dy = torch.cat([self.grads[t] for t in steps])
        self.grads.clear()
        if self.all_in_buffer and steps == list(range(len(self.rows))):
            x = self.buffer[: len(self.rows) * self.rows[0].shape[0]]  # every step, in order: no copy
        else:
            x = torch.cat([self.rows[t] for t in steps])
        return dy, x


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
        taken = ctx.stash.take()
        if taken is None:
            return (None,) * (2 + 2 * len(ctx.splits))
        dy, x = taken  # (T*B, out), (T*B, sum in_i)
        grad_weights = list((dy.t() @ x).split(ctx.splits, dim=1))  # (out, in_i) each
        grad_bias = dy.sum(dim=0)  # (out,)
        biases = [grad_bias if has else None for has in ctx.has_bias]
        return (None, None, *grad_weights, *biases)


class _Step(torch.autograd.Function):
    """y = cat(x_1, ..., x_n) @ W.T + b for one step; backward returns the dx_i and stashes dy instead of
    computing dW, db (the input is in the stash already)."""

    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor, stash: _Stash, *inputs: Tensor) -> Tensor:
        ctx.step, x = stash.write(inputs)
        ctx.save_for_backward(weight)
        ctx.stash, ctx.widths = stash, [x.shape[1] for x in inputs]
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, dy: Tensor):
        (weight,) = ctx.saved_tensors
        ctx.stash.grads[ctx.step] = dy
        wanted = ctx.needs_input_grad[3:]
        dx = (dy @ weight).split(ctx.widths, dim=1) if any(wanted) else [None] * len(wanted)
        return (None, None, None, *(d if w else None for d, w in zip(dx, wanted)))


class EpisodeLinear:
    """The fused `layers` for one episode: call it as `f(x_1, ..., x_n)` with x_i (B, in_i), once per step,
    for sum_i Linear_i(x_i) (B, out). An nn.LSTMCell counts as its two Linears (input, hidden), so
    `EpisodeLinear(cell)(x, h)` is the cell's (B, 4 * hidden) gates. Build it once per forward pass, never
    keep it across passes (it holds the fused weights of this one). `steps`: how many calls to expect (T),
    so their inputs are written into one buffer; more calls work too, at the cost of a concatenation."""

    def __init__(self, *layers: nn.Linear | nn.LSTMCell, steps: int | None = None, defer: bool = True):
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
            defer
            and torch.is_grad_enabled()
            and any(p.requires_grad for p in params)
            and not torch.is_autocast_enabled(weights[0].device.type)
            and not torch.compiler.is_compiling()  # dynamo cannot trace the stash; it fuses on its own
        )
        if self.deferred:
            self.stash = _Stash(steps)
            self.weight, self.bias = _FuseWeights.apply(self.stash, [w.shape[1] for w in weights], *params)
        else:
            self.weight = torch.cat(weights, dim=1) if len(weights) > 1 else weights[0]
            present = [b for b in biases if b.numel()]
            self.bias = sum(present[1:], present[0]) if present else None

    @staticmethod
    def sequential(module: nn.Module, steps: int | None = None) -> Callable[[Tensor], Tensor]:
        """A Linear, or an nn.Sequential of Linears and ReLUs, as EpisodeLinears: x (B, in) -> (B, out)."""
        layers = list(module) if isinstance(module, nn.Sequential) else [module]
        fns = [EpisodeLinear(m, steps=steps) if isinstance(m, nn.Linear) else m for m in layers]

        def run(x: Tensor) -> Tensor:
            for fn in fns:
                x = fn(x)
            return x

        return run

    def __call__(self, *inputs: Tensor) -> Tensor:
        inputs = tuple(x.to(self.weight.dtype) for x in inputs)
        if self.deferred:
            return _Step.apply(self.weight, self.bias, self.stash, *inputs)
        x = torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0]  # (B, sum in_i)
        return F.linear(x, self.weight, self.bias)


def lstm_step(gates: EpisodeLinear, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """nn.LSTMCell's maths on the fused gates of `EpisodeLinear(cell)`: x (B, in), state (h, c) (B, hidden)
    each -> the next (h, c). Gates in PyTorch's order i, f, g, o."""
    h, c = state
    i, f, g, o = gates(x, h).chunk(4, dim=1)  # (B, hidden) each
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c
