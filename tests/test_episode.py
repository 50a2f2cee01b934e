"""The fused, deferred-gradient episode code of RAM and DRAM against the plain maths it replaces.

`EpisodeLinear` (attention_models/episode.py) fuses Linears whose outputs are summed, with the weights
read once per episode; RAM and DRAM run their glimpse loops on it. Here: its gradients equal nn.Linear's, and each model's
losses and gradients equal a plain reference episode (nn modules called step by step, the per-sample
area-averaging retina of test_retina.py), on a fixed batch and seed.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_retina import area_reference
from torch import nn

from attention_models import create_model
from attention_models.episode import EpisodeLinear, lstm_step
from attention_models.losses import reinforce_terms
from attention_models.retina import gaussian_location, uniform_location

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grads(params) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in params]


def test_episode_linear_and_lstm_step_have_nn_gradients():
    torch.manual_seed(0)
    a, b, cell = nn.Linear(5, 4), nn.Linear(3, 4), nn.LSTMCell(4, 3)
    params = [*a.parameters(), *b.parameters(), *cell.parameters()]
    xs = [torch.randn(6, 5) for _ in range(4)]

    def run(fused: bool) -> torch.Tensor:
        h = c = torch.zeros(6, 3)
        ab, gates = EpisodeLinear(a, b), EpisodeLinear(cell)
        for x in xs:
            y = torch.tanh(ab(x, h) if fused else a(x) + b(h))
            h, c = lstm_step(gates, y, (h, c)) if fused else cell(y, (h, c))
        return h.square().sum()

    grads = []
    for fused in (False, True):
        for p in params:
            p.grad = None
        loss = run(fused)
        loss.backward()
        grads.append((loss.detach(), _grads(params)))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    for want, got in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(got, want)
    with torch.no_grad():  # inference: plain F.linear on the fused weights, same values
        torch.testing.assert_close(run(True), grads[0][0])


def reference_ram(model, images, label, seed):
    """RAM's episode and hybrid loss, step by step with the nn modules (the maths before EpisodeLinear)."""
    cfg, gen = model.config, torch.Generator().manual_seed(seed)
    B = images.shape[0]
    h = c = images.new_zeros(B, cfg.core_hidden)
    net, core = model.glimpse, model.core
    log_pis, baselines = [], []
    for t in range(cfg.num_glimpses):
        mean = torch.tanh(model.location(h.detach()))
        if t == 0 and cfg.first_location == "random":
            loc, log_pi = uniform_location(images, B, gen), mean.new_zeros(B)
        else:
            loc, log_pi = gaussian_location(mean, cfg.location_std, True, gen)
        baselines.append(model.baseline(h.detach()).squeeze(-1))
        log_pis.append(log_pi)
        rho = area_reference(images, loc, cfg.patch_size, cfg.num_scales, cfg.scale_factor).flatten(1)
        g = F.relu(net.what_out(F.relu(net.what(rho))) + net.where_out(F.relu(net.where(loc))))
        if cfg.core == "lstm":
            h, c = core.cell(g, (h, c))
        else:
            h = F.relu(core.input(g) + core.recurrent(h))
    logits = model.classifier(h)
    reward = (logits.detach().argmax(dim=-1) == label).float()
    policy, baseline = reinforce_terms(torch.stack(log_pis, 1), torch.stack(baselines, 1), reward)
    return {"classification": F.cross_entropy(logits, label), "baseline": baseline, "reinforce": policy}


def reference_dram(model, images, batch, seed):
    """DRAM's episode and loss, step by step with the nn modules (the maths before EpisodeLinear)."""
    cfg, gen = model.config, torch.Generator().manual_seed(seed)
    B = images.shape[0]
    zeros = images.new_zeros(B, cfg.hidden)
    r1, context = (zeros, zeros), model.context(images)
    r2 = (context, torch.zeros_like(context))
    net = model.glimpse
    log_pis, baselines, logits = [], [], []
    for n in range(cfg.num_glimpses):
        mean = torch.tanh(model.emission(r2[0]))
        loc, log_pi = gaussian_location(mean, cfg.location_std, True, gen)
        baselines.append(model.baseline(r2[0].detach()).squeeze(-1))
        log_pis.append(log_pi)
        patches = area_reference(images, loc, cfg.patch_size, cfg.num_scales, cfg.scale_factor)
        features = net.conv(patches.flatten(1, 2)).flatten(1)
        g = F.relu(net.what(features)) * F.relu(net.where(loc))
        r1 = model.lower(g, r1)
        r2 = model.upper(r1[0].detach(), r2)
        if (n + 1) % cfg.glimpses_per_label == 0:
            logits.append(model.classifier(r1[0]))
    logits = torch.stack(logits, dim=1)  # (B, S, N + 1)
    targets = model.targets(batch)
    S, V = logits.shape[1:]
    ce = F.cross_entropy(logits.reshape(B * S, V), targets.reshape(B * S), ignore_index=-100, reduction="sum") / B
    out = type("Out", (), {"logits": logits})  # rewards() reads only the logits
    policy, baseline = reinforce_terms(torch.stack(log_pis, 1), torch.stack(baselines, 1), model.rewards(out, targets))
    return {"classification": ce, "baseline": baseline, "reinforce": policy}


CASES = [
    ("ram-cluttered60", dict(glimpse_hidden=16, location_hidden=16, glimpse_dim=32, core_hidden=32, num_glimpses=4)),
    ("ram-mnist28", dict(core="lstm", policy_through_core=False, num_glimpses=3, core_hidden=32, glimpse_dim=32)),
    ("ram-translated60", dict(first_location="learned", num_glimpses=3, core_hidden=32, glimpse_dim=32)),
    ("dram-pairs", dict(conv_channels=(4, 4, 8), context_channels=(4, 4, 4), hidden=16, classifier_hidden=16)),
]


@pytest.mark.parametrize("name,overrides", CASES, ids=[c[0] + "-" + str(i) for i, c in enumerate(CASES)])
def test_losses_and_gradients_equal_the_plain_episode(name, overrides):
    torch.manual_seed(0)
    model = create_model(name, **overrides).train()
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    B = 5
    images = torch.rand(B, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    batch = {"image": images, "label": torch.randint(0, 10, (B,), generator=g)}
    if name.startswith("dram"):
        batch["sequence"] = torch.randint(0, 10, (B, cfg.max_digits), generator=g)
        reference = reference_dram(model, images, batch, seed=3)
    else:
        reference = reference_ram(model, images, batch["label"], seed=3)
    params = list(model.parameters())
    sum(reference.values()).backward()
    want = _grads(params)
    model.zero_grad(set_to_none=True)
    got = model.losses(model(images, generator=torch.Generator().manual_seed(3)), batch)
    sum(got.values()).backward()
    assert set(got) == set(reference)
    for key in reference:
        torch.testing.assert_close(got[key], reference[key], atol=1e-5, rtol=1e-5, msg=key)
    for (pname, _), w, a in zip(model.named_parameters(), want, _grads(params)):
        assert (w is None) == (a is None), pname
        if w is not None:
            torch.testing.assert_close(a, w, atol=1e-5, rtol=1e-4, msg=pname)
