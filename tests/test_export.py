"""Exported models against the eager ones: every family, ONNX (onnxruntime) and TorchScript, the mean path
and given noise, batch sizes the graph was not traced on; no random op and no batch-bound constant."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
import torch

from attention_models import create_model
from attention_models.export import (
    OPSET,
    RANDOM_ONNX_OPS,
    RANDOM_TORCH_OPS,
    Serving,
    export_onnx,
    export_torchscript,
    torchscript_ops,
)
from jobs.api.exports import card_path
from jobs.api.spec import JobSpec
from jobs.cli import main
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import checkpoints
from jobs.run.exporter import run_exported
from jobs.run.layout import CHECKPOINT_STATE
from jobs.run.loop import fit

# Per family: a registered variant made tiny (export time grows with the graph), and the M of a sampled export.
TINY = {
    "ram": ("ram-mnist28", {"num_glimpses": 3, "first_location": "random"}),
    "ram-lstm": ("ram-cluttered60", {"num_glimpses": 2, "core": "lstm", "image_size": 32}),
    "dram": ("dram-multidigit", {"image_size": 48, "max_digits": 1, "hidden": 16, "classifier_hidden": 16,
                                 "context_size": 16, "glimpses_per_label": 1}),
    "racnn": ("racnn-zoom", {}),
    "mgcnn": ("mgcnn-zoom", {}),
}
STOCHASTIC = {"ram", "ram-lstm", "dram"}
CASES = [(f, 0) for f in TINY] + [(f, 3) for f in TINY if f in STOCHASTIC]


def _model(family: str):
    torch.manual_seed(0)
    name, overrides = TINY[family]
    model = create_model(name, **overrides).eval()
    if family in STOCHASTIC:
        # Untrained policies sit at the centre (shrink_last_linear): move them, so paths really vary.
        last = model.location if hasattr(model, "location") else model.emission
        for p in last.parameters():
            with torch.no_grad():
                p.add_(torch.randn_like(p) * 0.5)
    return model


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-m{m}" for f, m in CASES])
def exported(request, tmp_path_factory):
    family, samples = request.param
    serving = Serving(_model(family), samples)
    d = tmp_path_factory.mktemp(f"export-{family}-{samples}")
    files = {"onnx": str(d / "model.onnx"), "torchscript": str(d / "model.pt")}
    export_onnx(serving, files["onnx"])
    export_torchscript(serving, files["torchscript"])
    return family, serving, files


def _assert_close(got, want, names):
    for name, a, b in zip(names, got, want):
        b = b.numpy()
        assert a.shape == b.shape, name
        if np.issubdtype(b.dtype, np.floating):
            scale = max(1.0, float(np.abs(b).max(initial=0)))
            assert float(np.abs(a - b).max(initial=0)) <= 1e-4 * scale, name
        else:
            assert (a == b).all(), name


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("batch", [1, 7])
def test_the_exported_file_gives_the_eager_outputs(exported, fmt, batch):
    family, serving, files = exported
    inputs = serving.example_inputs(batch, seed=100 + batch)  # traced on batch 2, seed 0: new sizes and contents
    with torch.no_grad():
        want = serving(*inputs)
    _assert_close(run_exported(files[fmt], fmt, serving, inputs), want, serving.output_names)


def test_the_file_gives_what_the_model_evaluates_from_the_same_noise(exported):
    """The exported logits and attention are `model.evaluate`'s: the mean path (samples 0), or the Monte
    Carlo average of M paths drawn from the given noise, whose first path's boxes are returned."""
    family, serving, files = exported
    images, *noise = serving.example_inputs(5, seed=7)
    with torch.no_grad():
        reference = serving.model.evaluate(images, samples=serving.samples, **dict(zip(serving.noise_shapes, noise)))
    got = dict(zip(serving.output_names, run_exported(files["onnx"], "onnx", serving, (images, *noise))))
    np.testing.assert_allclose(got["logits"], reference.logits.numpy(), atol=1e-4)
    boxes = got.get("glimpse_boxes", got.get("boxes"))
    np.testing.assert_allclose(boxes, reference.attention.boxes.numpy().reshape(boxes.shape), atol=1e-3)
    if noise:  # ... and the noise is really an input: other noise, other paths
        with torch.no_grad():
            other = serving.model.evaluate(images, samples=serving.samples,
                                           **dict(zip(serving.noise_shapes, [n + 1 for n in noise])))
        assert not np.allclose(boxes, other.attention.boxes.numpy(), atol=1e-3)


def test_no_random_op_and_a_valid_graph(exported):
    family, serving, files = exported
    model = onnx.load(files["onnx"])
    onnx.checker.check_model(model)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
    ops = {n.op_type for n in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
    assert not ops & RANDOM_ONNX_OPS
    assert not torchscript_ops(torch.jit.load(files["torchscript"])) & RANDOM_TORCH_OPS
    assert [i.name for i in model.graph.input] == serving.input_names
    assert [o.name for o in model.graph.output] == serving.output_names
    # The batch dimension is symbolic in every input and output, not the traced 2.
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param, value.name


def test_the_mean_path_starts_at_the_centre_and_is_deterministic():
    serving = Serving(_model("ram"), 0)
    assert serving.input_names == ["images"]
    images = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        a, b = serving(images), serving(images)
    boxes = dict(zip(serving.output_names, a))["glimpse_boxes"]  # (B, T, K, 4)
    centre = (boxes[:, 0, 0, :2] + boxes[:, 0, 0, 2:]) / 2
    torch.testing.assert_close(centre, torch.full_like(centre, 14.0))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_given_noise_is_the_sampled_path():
    """l_t = clamp(mean_t + std * noise_t): the explicit noise is the same sampling, not another one."""
    model = _model("ram")
    images = torch.rand(4, 1, 28, 28)
    noise, first = torch.randn(4, 3, 2), torch.rand(4, 2) * 2 - 1
    with torch.no_grad():
        out = model(images, noise=noise, first_locations=first)
    assert torch.equal(out.locations[:, 0], first)
    expected = (out.location_means[:, 1:] + model.config.location_std * noise[:, 1:]).clamp(-1, 1)
    torch.testing.assert_close(out.locations[:, 1:], expected)
    with pytest.raises(ValueError, match=r"noise: expected shape \(4, 3, 2\)"):
        model(images, noise=torch.randn(4, 2, 2))


def test_a_deterministic_family_has_no_sampled_export():
    with pytest.raises(ValueError, match="samples: racnn is deterministic"):
        Serving(_model("racnn"), 4)


# The command, on a checkpoint the training loop wrote.

@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("trained")
    splits = {s: build_recipe("mnist28", count=n, seed=0, split=s) for s, n in (("train", 64), ("test", 16))}
    data = write_dataset(str(root / "mnist28"), splits, {"recipe": "mnist28", "seed": 0})
    spec = JobSpec.from_dict({
        "name": "exp", "storage_path": str(root / "runs"),
        "model": {"name": "ram-mnist28", "overrides": {"num_glimpses": 2}},
        "data": {"path": data, "probe_count": 2}, "optim": {"epochs": 1, "batch_size": 32},
        "scaling": {"num_workers": 0},
    })
    states = []
    fit(spec, lambda m, s: states.append(s))
    # Where Ray Train puts it: <run>/checkpoint_<stamp>/state.pt (no result.json: a run still going).
    ckpt = root / "runs" / "exp" / "checkpoint_2026-12-03_00-00-00.000000"
    ckpt.mkdir(parents=True)
    torch.save(states[-1], ckpt / CHECKPOINT_STATE)
    return str(root / "runs" / "exp")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_foveate_export_writes_the_file_and_its_card(checkpoint_dir, tmp_path, fmt, capsys):
    out = str(tmp_path / f"ram.{fmt}")
    assert main(["export", checkpoint_dir, "--format", fmt, "--out", out, "--samples", "2"]) == 0
    assert "parity with the eager model" in capsys.readouterr().out
    with open(card_path(out)) as f:
        card = json.load(f)
    assert card["format"] == fmt and card["size_bytes"] == os.path.getsize(out) > 0
    assert os.stat(out).st_mode & 0o044  # readable by others, as any file the user writes (mkstemp's isn't)
    assert card["opset"] == (OPSET if fmt == "onnx" else None)
    assert card["model"]["name"] == "ram-mnist28" and card["model"]["config"]["num_glimpses"] == 2
    assert list(card["inputs"]) == ["images", "noise", "first_locations"]  # ram-mnist28's first glimpse: random
    assert card["inputs"]["noise"] == ["B", 2, 2, 2] and card["inputs"]["first_locations"] == ["B", 2, 2]
    assert card["outputs"]["glimpse_boxes"] == ["B", 2, 1, 4]
    assert 0 <= card["errors"]["val_error"] <= 1 and card["errors"]["val_error"] == 1 - card["validation"]["val_accuracy"]
    assert "attention_iou" in card["validation"] and "val_loss" not in card["errors"]
    assert card["epoch"] == 0 and card["spec"]["name"] == "exp" and card["data"]["path"].endswith("mnist28")
    assert max(card["parity"]["max_relative_difference"].values()) <= 1e-4
    # The file is the checkpoint's model: it reproduces the trained model read back.
    trained = checkpoints.load_trained(checkpoint_dir)
    serving = Serving(trained.model, 2)
    inputs = serving.example_inputs(3, seed=5)
    with torch.no_grad():
        _assert_close(run_exported(out, fmt, serving, inputs), serving(*inputs), serving.output_names)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".export-")]  # no temporary left


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/run"], "/nonexistent/run: no such file or directory"),
    (["{ckpt}", "--samples", "-1"], "samples: must be an integer from 0 to"),
])
def test_foveate_export_refuses_in_one_line(checkpoint_dir, tmp_path, capsys, args, message):
    args = [a.replace("{ckpt}", checkpoint_dir) for a in args]
    assert main(["export", *args, "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not os.listdir(tmp_path)


def test_a_run_directory_without_a_checkpoint_is_named(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "not a run directory, a checkpoint directory or a state.pt file" in capsys.readouterr().err
