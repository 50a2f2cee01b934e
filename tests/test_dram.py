"""DRAM: every registered variant on a tiny config, sequence targets / rewards / predictions, gradient
routing, MC evaluation."""

from __future__ import annotations

import re

import pytest
import torch

from attention_models import create_model, list_models, model_config
from attention_models.dram import DRAM, IGNORE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(
    conv_channels=(4, 4, 8), context_channels=(4, 4, 4), hidden=16, classifier_hidden=16, glimpses_per_label=2
)


def tiny(name: str, **overrides) -> DRAM:
    torch.manual_seed(0)
    return create_model(name, **{**TINY, **overrides})


def batch_for(model: DRAM, B: int, seed: int = 0) -> dict[str, torch.Tensor]:
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, cfg.max_digits + 1, (B,), generator=g)
    digits = torch.randint(0, cfg.num_classes, (B, cfg.max_digits), generator=g)
    seq = torch.where(torch.arange(cfg.max_digits) < lengths[:, None], digits, -1)
    return {
        "image": torch.rand(B, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g),
        "label": seq[:, 0].clone(),
        "sequence": seq,
    }


def test_variants_registered():
    assert list_models("dram") == ["dram-multidigit", "dram-pairs"]
    assert model_config("dram-multidigit").image_size == 128 and model_config("dram-multidigit").max_digits == 5
    assert model_config("dram-pairs").image_size == 100 and model_config("dram-pairs").max_digits == 2
    assert model_config("dram-multidigit", glimpses_per_label=2).num_glimpses == 12


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("max_digits", 0, "model.max_digits: must be an integer >= 1, got 0"),
        ("conv_kernels", (5, 3),
         "model.conv_channels: must be non-empty and as long as conv_kernels (5, 3), got (32, 32, 64)"),
        ("conv_kernels", (9, 9, 9),
         "model.conv_kernels: must leave something of a 12x12 patch (valid convolutions), got (9, 9, 9)"),
        ("context_size", 1000, "model.context_size: must be <= image_size (128), got 1000"),
        ("location_std", -1.0, "model.location_std: must be > 0, got -1.0"),
        ("policy_lr_scale", 0.0, "model.policy_lr_scale: must be > 0, got 0.0"),
    ],
)
def test_config_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        create_model("dram-multidigit", **{field: value})


@pytest.mark.parametrize("name", list_models("dram"))
def test_shapes_and_every_parameter_learns(name):
    model = tiny(name)
    cfg = model.config
    batch = batch_for(model, B=4)
    out = model(batch["image"])
    S, T, K = cfg.max_digits + 1, cfg.num_glimpses, cfg.num_scales
    assert cfg.glimpses_per_label * S == T
    assert out.logits.shape == (4, S, cfg.num_classes + 1)
    assert out.locations.shape == out.location_means.shape == (4, T, 2)
    assert out.log_pi.shape == out.baselines.shape == (4, T)
    assert out.attention.boxes.shape == (4, T, K, 4)
    losses = model.losses(out, batch)
    assert set(losses) == {"classification", "baseline", "reinforce"}
    sum(losses.values()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    pred = model.predict(out)
    assert pred.shape == (4, cfg.max_digits) and pred.dtype == torch.long
    assert set(model.metrics(out, batch)) >= {"accuracy", "label_accuracy"}


@pytest.mark.parametrize("name", list_models("dram"))
def test_batch_of_one_and_blank_images_stay_finite(name):
    model = tiny(name)
    cfg = model.config
    for fill in (0.0, 1.0):
        images = torch.full((1, cfg.in_channels, cfg.image_size, cfg.image_size), fill)
        batch = {"image": images, "label": torch.tensor([3]), "sequence": torch.tensor([[3] + [-1] * (cfg.max_digits - 1)])}
        out = model(images)
        losses = model.losses(out, batch)
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        assert model.evaluate(images, samples=2).logits.shape == (1, cfg.max_digits + 1, cfg.num_classes + 1)
        model.zero_grad()


def test_targets_rewards_and_predictions():
    model = tiny("dram-multidigit", max_digits=3)  # S = 4 slots, 2 glimpses each
    E = model.eos
    batch = {"sequence": torch.tensor([[4, 2, -1, -1, -1], [7, -1, -1, -1, -1], [1, 2, 3, -1, -1]]), "label": torch.tensor([4, 7, 1])}
    targets = model.targets(batch)
    assert targets.tolist() == [[4, 2, E, IGNORE], [7, E, IGNORE, IGNORE], [1, 2, 3, E]]
    # Slot predictions: row 0 all right; row 1 wrong first digit; row 2 right, right, wrong, right.
    pred = torch.tensor([[4, 2, E, 5], [3, E, 0, 0], [1, 2, 9, E]])
    logits = torch.nn.functional.one_hot(pred, E + 1).float()
    out = model(torch.rand(3, 1, 128, 128))
    out.logits = logits
    rewards = model.rewards(out, targets)  # (B, T): reward to go, two glimpses per slot
    assert rewards[:, ::2].tolist() == [[3, 2, 1, 0], [0, 0, 0, 0], [2, 1, 0, 0]]
    assert torch.equal(rewards[:, ::2], rewards[:, 1::2])
    assert model.predict(out).tolist() == [[4, 2, -1], [3, -1, -1], [1, 2, 9]]
    metrics = model.metrics(out, batch)
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["label_accuracy"] == pytest.approx(7 / 9)
    with pytest.raises(ValueError, match="max_digits"):
        model.targets({"sequence": torch.tensor([[1, 2, 3, 4]])})


def _grads(model: DRAM, loss: torch.Tensor) -> set[str]:
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_gradient_routing():
    model = tiny("dram-pairs")
    batch = batch_for(model, B=6)
    losses = model.losses(model(batch["image"]), batch)
    assert _grads(model, losses["classification"]) == {"glimpse", "lower", "classifier"}
    assert _grads(model, losses["reinforce"]) == {"emission", "upper", "context"}
    assert _grads(model, losses["baseline"]) == {"baseline"}


def test_where_pathway_takes_scaled_steps():
    # policy_lr_scale reparametrises the whole where pathway: the same function, its stored weights / scale.
    scaled, plain = tiny("dram-pairs", policy_lr_scale=0.1), tiny("dram-pairs", policy_lr_scale=1.0)
    images = batch_for(plain, B=3)["image"]
    a = scaled(images, generator=torch.Generator().manual_seed(1))
    b = plain(images, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.locations, b.locations)
    torch.testing.assert_close(a.logits, b.logits)
    stored = {n.split(".")[0] for n, _ in scaled.named_parameters() if ".parametrizations." in n}
    assert stored == {"context", "upper", "emission"}
    torch.testing.assert_close(scaled.upper.parametrizations.weight_hh.original * 0.1, plain.upper.weight_hh)


def test_seeded_and_monte_carlo():
    model = tiny("dram-pairs").eval()
    images = batch_for(model, B=2)["image"]
    a = model(images, generator=torch.Generator().manual_seed(5))
    b = model(images, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a.locations, b.locations)
    torch.testing.assert_close(a.logits, b.logits)
    M = 4
    ev = model.evaluate(images, samples=M, generator=torch.Generator().manual_seed(2))
    paths = model(images.repeat_interleave(M, 0), generator=torch.Generator().manual_seed(2))
    want = paths.logits.softmax(-1).view(2, M, 3, 11).mean(1).log()
    torch.testing.assert_close(ev.logits, want)
    torch.testing.assert_close(model.evaluate(images, samples=0).logits, model.evaluate(images, samples=0).logits)
    assert model.predict(ev).shape == (2, 2)


def test_dtype_agnostic():
    model = tiny("dram-pairs").double()
    batch = batch_for(model, B=2)
    batch["image"] = batch["image"].double()
    out = model(batch["image"])
    sum(model.losses(out, batch).values()).backward()
    model = tiny("dram-pairs")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["image"].float())
        losses = model.losses(out, batch)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
