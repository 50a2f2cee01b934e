"""The loop's data-parallel step on CPU without DDP: rank 0's weights broadcast to every rank, and one
flat all-reduce giving every rank the mean of the ranks' gradients, as DDP with unused parameters would:
a parameter only one rank used gets half its gradient, one no rank used keeps none (real gloo, 2 processes).

The ranks are plain `python -c` processes, not multiprocessing's spawn: spawn re-runs the parent's
`__main__`, which other tests in the session (Streamlit's AppTest) replace with scripts of their own."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

RANK = """
import json, sys
import torch
import torch.distributed as dist
from jobs.run.loop import _average_gradients, broadcast_weights

rank, port = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)

def net():
    torch.manual_seed(seed)
    return torch.nn.ModuleDict({
        "body": torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.Linear(7, 3),
                                    torch.nn.Linear(3, 2)),
        "side": torch.nn.Linear(5, 1),   # used on rank 0 only (a data-dependent branch)
        "idle": torch.nn.Linear(2, 2)})  # used on no rank: keeps no gradient

def loss(m, x, r):
    out = m["body"](x).square().sum()
    return out + m["side"](x).sum() if r == 0 else out

seed = rank  # different weights on each rank: the broadcast must make them rank 0's
model = broadcast_weights(net())
seed = 0
reference = net()  # rank 0's weights, built again on this rank
same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
batches = [torch.randn(4, 5, generator=torch.Generator().manual_seed(10 + r)) for r in range(2)]
for m in (model, reference):
    m["body"][3].weight.requires_grad_(False)  # frozen (RA-CNN's other phase): not sent at all
loss(model, batches[rank], rank).backward()
_average_gradients(model, 2)()
grads = []
for r, x in enumerate(batches):  # what a single process gets from both ranks' batches
    reference.zero_grad(set_to_none=True)
    loss(reference, x, r).backward()
    grads.append({n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                  for n, p in reference.named_parameters() if p.requires_grad})
want = {n: (grads[0][n] + grads[1][n]) / 2 for n in grads[0] if not n.startswith("idle")}
got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
ok = got.keys() == want.keys() and all(torch.allclose(got[n], want[n], atol=1e-6) for n in want)
dist.destroy_process_group()
print(json.dumps({"rank": rank, "same_weights": same, "mean_gradient": ok}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flat_all_reduce_gives_every_rank_the_mean_gradient_of_rank_0s_weights():
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", RANK, str(r), str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results == [{"rank": r, "same_weights": True, "mean_gradient": True} for r in range(2)]
