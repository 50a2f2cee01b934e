"""`foveate evaluate` on checkpoints the training loop wrote: the errors a hand-written loop gives, for a
family that samples paths (RAM) and one that does not (RA-CNN), the JSON and PNG it writes, and its
one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jobs.api.spec import JobSpec
from jobs.cli import main
from jobs.data.recipes import build_recipe
from jobs.data.store import read_split, write_dataset
from jobs.run import checkpoints, records
from jobs.run.evaluator import evaluate_trained, object_distance
from jobs.run.loop import fit


def _trained(root, recipe: str, model: str, overrides: dict) -> tuple[str, str]:
    splits = {s: build_recipe(recipe, count=n, seed=0, split=s) for s, n in (("train", 48), ("test", 20))}
    data = write_dataset(str(root / recipe), splits, {"recipe": recipe, "seed": 0})
    spec = JobSpec.from_dict({
        "name": model, "storage_path": str(root / "runs"),
        "model": {"name": model, "overrides": overrides},
        "data": {"path": data, "probe_count": 2}, "optim": {"epochs": 1, "batch_size": 16},
        "scaling": {"num_workers": 0},
    })
    run = str(root / "runs" / model)
    fit(spec, lambda m, s: checkpoints.save_checkpoint(run, s, keep=1, score="val_accuracy", mode="max"))
    return run, data


@pytest.fixture(scope="module")
def ram_run(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("ev"), "mnist28", "ram-mnist28", {"num_glimpses": 3})


@pytest.fixture(scope="module")
def racnn_run(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("ev"), "zoom", "racnn-zoom", {})


def _wrong(model, out, batch) -> int:
    return int((model.predict(out) != batch["label"]).sum())


def test_the_three_errors_of_a_sampling_model_are_a_hand_written_loop_s(ram_run):
    run, data = ram_run
    report = evaluate_trained(run, samples=4, batch_size=8, seed=3)
    model = checkpoints.load_trained(run).model
    test = read_split(data, "test")
    generator = torch.Generator().manual_seed(3)
    wrong = {"sampled": 0, "mean": 0, "mc": 0}
    ious, dist = [], []
    with torch.no_grad():
        for start in range(0, len(test), 8):
            batch = test.to_batch(np.arange(start, min(start + 8, len(test))))
            images = batch["image"]
            wrong["sampled"] += _wrong(model, model.evaluate(images, samples=1, generator=generator), batch)
            mean = model.evaluate(images, samples=0)
            wrong["mean"] += _wrong(model, mean, batch)
            wrong["mc"] += _wrong(model, model.evaluate(images, samples=4, generator=generator), batch)
            ious.append(records.attention_iou(mean.attention, batch["boxes"]))
            dist.append(object_distance(mean.attention.centres, batch["boxes"]))
    assert report["images"] == 20 and report["samples"] == 4 and report["family"] == "ram"
    for path, n in wrong.items():
        assert report["paths"][path]["wrong"] == n and report["paths"][path]["error"] == pytest.approx(n / 20), path
    assert report["error"] == report["paths"]["mc"]["error"]
    assert report["paths"]["mean"]["attention_iou"] == pytest.approx(float(torch.cat(ious).mean()), rel=1e-6)
    assert report["paths"]["mean"]["object_distance_px"] == pytest.approx(
        torch.cat(dist).mean(dim=0).tolist(), abs=1e-3)
    matrix = np.array(report["confusion"]["matrix"])
    assert matrix.shape == (10, 11) and matrix.sum() == 20
    assert int(matrix.trace()) == 20 - wrong["mc"]  # the confusion matrix is the headline (mc) answer's
    # the same seed and batch size give the same figures
    assert evaluate_trained(run, samples=4, batch_size=8, seed=3)["paths"] == report["paths"]


def test_a_crop_family_has_one_answer_with_its_boxes(racnn_run):
    run, data = racnn_run
    report = evaluate_trained(run, batch_size=7)
    model = checkpoints.load_trained(run).model
    test = read_split(data, "test")
    with torch.no_grad():
        batch = test.to_batch(np.arange(len(test)))
        out = model.evaluate(batch["image"])
    assert list(report["paths"]) == ["single"] and report["samples"] is None
    assert report["paths"]["single"]["wrong"] == _wrong(model, out, batch)
    assert len(report["paths"]["single"]["object_distance_px"]) == model.config.num_scales


def test_the_command_writes_json_and_a_picture(ram_run, tmp_path, capsys):
    run, data = ram_run
    out, png = tmp_path / "ev.json", tmp_path / "ev.png"
    assert main(["evaluate", run, "--data", data, "--samples", "2", "--out", str(out), "--png", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "error sampled" in printed and "wrote" in printed
    report = json.loads(out.read_text())
    assert report["data"] == data and report["picture"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(("args", "message"), [
    (["--samples", "0"], "--samples: must be between 1 and 1000, got 0"),
    (["--split", "nope"], "--split: no split 'nope' in"),
    (["--data", "/nonexistent/ds"], "--data: no dataset at /nonexistent/ds"),
])
def test_the_command_refuses_in_one_line(ram_run, capsys, args, message):
    assert main(["evaluate", ram_run[0], *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_data_of_another_size_is_refused(ram_run, racnn_run, capsys):
    assert main(["evaluate", ram_run[0], "--data", racnn_run[1]]) == 2
    assert "holds 96x96x1 images; the model takes 28x28x1" in capsys.readouterr().err
