"""The shipped weights (attention_models/pretrained/) and `model.init_from`: every shipped file loads with a
strict match and is what its manifest says; a run starts from a checkpoint's or the shipped weights; what
cannot be loaded is refused in one line."""

from __future__ import annotations

import hashlib

import pytest
import torch

from attention_models import create_model
from attention_models.pretrained_files import pretrained_manifest, shipped, weights_file
from jobs.api.spec import JobSpec, SpecError
from jobs.data.manifest import read_manifest
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import checkpoints
from jobs.run.checks import check_spec
from jobs.run.loop import fit, initial_model


def test_the_paper_rows_ship_their_weights():
    assert "ram-cluttered60" in shipped()


@pytest.mark.parametrize("name", shipped())
def test_every_shipped_file_loads_and_matches_its_manifest(name):
    manifest = pretrained_manifest(name)
    data = weights_file(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"] and len(data) == manifest["size_bytes"]
    model = create_model(name, pretrained=True)  # strict key and shape match
    state = torch.load(weights_file(name), weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    for k, v in manifest["config"].items():
        assert getattr(model.config, k) == (tuple(v) if isinstance(v, list) else v), k
    JobSpec.from_dict(manifest["spec"])  # the spec that trained it still validates
    assert manifest["variant"] == name and manifest["commit"] and manifest["data"]["images"] > 0
    paths = {"sampled", "mean", "mc"} if model.samples_paths else {"single"}
    assert set(manifest["errors"]) == paths
    for figures in manifest["errors"].values():
        assert 0 <= figures["error"] <= 1 and 0 <= figures["attention_iou"] <= 1


def test_a_variant_without_weights_says_which_have_them():
    with pytest.raises(ValueError, match=r"model.name: has no pretrained weights \(shipped for: .*ram-cluttered60"):
        create_model("racnn-zoom", pretrained=True)
    spec = JobSpec.from_dict({"model": {"name": "racnn-zoom", "init_from": "pretrained"}, "data": {"path": "x"}})
    with pytest.raises(SpecError, match=r"^model.init_from: has no pretrained weights"):
        check_spec(spec, data=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("init")
    splits = {s: build_recipe("mnist28", count=n, seed=0, split=s) for s, n in (("train", 32), ("test", 8))}
    data = write_dataset(str(root / "mnist28"), splits, {"recipe": "mnist28", "seed": 0})
    base = {"storage_path": str(root / "runs"), "data": {"path": data, "probe_count": 0},
            "model": {"name": "ram-mnist28", "overrides": {"num_glimpses": 2}},
            "optim": {"epochs": 1, "batch_size": 16}, "scaling": {"num_workers": 0}}
    run = str(root / "runs" / "first")
    fit(JobSpec.from_dict({**base, "name": "first"}),
        lambda m, s: checkpoints.save_checkpoint(run, s, keep=1, score="val_accuracy", mode="max"))
    return base, run


def test_a_run_starts_from_another_run_s_weights(trained):
    base, run = trained
    spec = JobSpec.from_dict({**base, "name": "second", "model": {**base["model"], "init_from": run}})
    check_spec(spec)
    manifest = read_manifest(base["data"]["path"])
    start = initial_model(spec, manifest).state_dict()
    want = checkpoints.load_trained(run).model.state_dict()
    assert all(torch.equal(start[k], v) for k, v in want.items())
    fresh = initial_model(spec.replace(model=JobSpec.from_dict({**base}).model), manifest).state_dict()
    assert not all(torch.equal(fresh[k], v) for k, v in want.items())  # not merely the same seed


def test_init_from_refuses_what_it_cannot_load(trained):
    base, run = trained
    missing = JobSpec.from_dict({**base, "model": {**base["model"], "init_from": "/nonexistent/run"}})
    with pytest.raises(SpecError, match=r"^model.init_from: no run, checkpoint or state.pt at /nonexistent/run"):
        check_spec(missing)
    other = JobSpec.from_dict({**base, "model": {"name": "ram-mnist28", "overrides": {"num_glimpses": 2,
                                                                                      "core_hidden": 64},
                                                 "init_from": run}})
    manifest = read_manifest(base["data"]["path"])
    with pytest.raises(ValueError, match=r"model.init_from: .*its weights do not fit ram's model as configured"):
        initial_model(other, manifest)


def test_the_service_takes_init_from_only_inside_its_storage_roots(scripted, trained):
    import dataclasses

    svc, _, spec = scripted  # a ram-cluttered60 spec over 60x60 canvases, storage root tmp_path/out
    shipped_spec = spec.replace(model=dataclasses.replace(spec.model, init_from="pretrained"))
    assert svc.validate(shipped_spec).model.init_from == "pretrained"
    elsewhere = spec.replace(model=dataclasses.replace(spec.model, init_from=trained[1]))
    with pytest.raises(SpecError, match=r"^model.init_from: .*(outside|under)"):
        svc.validate(elsewhere)
