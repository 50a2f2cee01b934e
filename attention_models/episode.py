"""Linears applied at every step of a glimpse episode, fused: one GEMM per step where the paper writes two.

Several Linears whose outputs are summed (RAM's Linear(h_g) + Linear(h_l) and Linear(g_t) + Linear(h_{t-1}),
an LSTM's input and hidden projections) are one Linear on the concatenated inputs:
    sum_i x_i @ W_i.T + b_i  =  cat(x_1, ..., x_n) @ cat(W_1, ..., W_n).T + (b_1 + ... + b_n)
`EpisodeLinear` concatenates the weights (and sums the biases) once per episode, not per step; autograd
splits their gradient back once. The modules and their state_dict keys stay as they are (checkpoints and
shipped weights load unchanged), and parametrised weights (retina.scale_step_size) are computed once per
episode too. Same maths up to float summation order; on a 2-core CPU, measured with one thread at batch 128,
a step of ram-cluttered60 takes 30 ms against 34 ms before. Deferring every weight gradient to one
(out, T*B) @ (T*B, in) GEMM in a custom autograd.Function made the GEMMs faster but cost more in Python per
step than it saved (36 ms), so it is not done.

Letters: B batch, T steps, in/out feature sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
        biases = [b for _, b in pairs if b is not None]
        self.weight = torch.cat(weights, dim=1) if len(weights) > 1 else weights[0]  # (out, sum in_i)
        self.bias = sum(biases[1:], biases[0]) if biases else None  # (out,)

    @staticmethod
    def sequential(module: nn.Module) -> Callable[[Tensor], Tensor]:
        """A Linear, or an nn.Sequential of Linears and activations, with its weights read once per episode:
        x (B, in) -> (B, out)."""
        layers = list(module) if isinstance(module, nn.Sequential) else [module]
        fns = [EpisodeLinear(m) if isinstance(m, nn.Linear) else m for m in layers]

        def run(x: Tensor) -> Tensor:
            for fn in fns:
                x = fn(x)
            return x

        return run

    def __call__(self, *inputs: Tensor) -> Tensor:
        x = torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0]  # (B, sum in_i)
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias)


def lstm_step(gates: EpisodeLinear, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """nn.LSTMCell's maths on the fused gates of `EpisodeLinear(cell)`: x (B, in), state (h, c) (B, hidden)
    each -> the next (h, c). Gates in PyTorch's order i, f, g, o."""
    h, c = state
    i, f, g, o = gates(x, h).chunk(4, dim=1)  # (B, hidden) each
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c
