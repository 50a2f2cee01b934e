"""The model-agnostic training loop, in-process (no Ray): metrics, records, checkpoints, resume, NaN stop."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from jobs.api.spec import JobSpec
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import record_files, storage
from jobs.run.layout import RunLayout
from jobs.run.loop import NonFiniteLossError, fit


@pytest.fixture(scope="module")
def digits28(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("ds") / "mnist28"
    splits = {s: build_recipe("mnist28", count=n, seed=0, split=s) for s, n in (("train", 96), ("test", 32))}
    return write_dataset(str(out), splits, {"recipe": "mnist28", "seed": 0})


def _spec(path: str, tmp_path, **optim) -> JobSpec:
    return JobSpec.from_dict({
        "name": "loop", "storage_path": str(tmp_path),
        "model": {"name": "ram-mnist28", "overrides": {"num_glimpses": 2}},
        "data": {"path": path, "probe_count": 4},
        "optim": {"epochs": 2, "batch_size": 32, **optim},
        "scaling": {"num_workers": 0},
    })


def test_fit_reports_every_epoch_with_records_and_complete_checkpoints(digits28, tmp_path):
    spec = _spec(digits28, tmp_path, eval_samples=2)
    reports = []
    last = fit(spec, lambda m, s: reports.append((m, s)))
    assert [m["epoch"] for m, _ in reports] == [0, 1]
    for key in ("train_loss", "train_classification", "train_accuracy", "val_accuracy", "attention_iou",
                "images_per_s"):
        assert key in last, key
    assert 0.0 <= last["val_accuracy"] <= 1.0 and 0.0 <= last["attention_iou"] <= 1.0
    assert 0.0 <= last["train_accuracy"] <= 1.0 and "train_baseline_error" in last
    state = reports[-1][1]
    assert set(state) >= {"model", "optimizers", "epoch", "spec", "metrics"}
    assert JobSpec.from_dict(state["spec"]) == spec
    # The record: one row per probe image, boxes (T, K, 4) in pixels of the 28x28 image.
    run = RunLayout.of(spec)
    table = record_files.read_records(run, epoch=1)
    assert table.num_rows == 4 and record_files.record_epochs(run) == [0, 1]
    assert table.schema == record_files.record_schema(table.column_names)
    row = table.slice(0, 1).to_pylist()[0]
    assert len(row["boxes"]) == row["steps"] * row["patches"] * 4 == 2 * 1 * 4
    assert len(row["image"]) == 28 * 28 and row["gt_boxes"]
    assert len(row["mean_boxes"]) == len(row["boxes"]) and row["mean_prediction"] is not None  # RAM's mean path
    assert len(storage.read_json(run.metrics)) == 2


def test_resume_continues_the_epoch_count_and_weights(digits28, tmp_path):
    spec = _spec(digits28, tmp_path)
    states = []
    fit(spec.replace(optim=dataclasses.replace(spec.optim, epochs=1)), lambda m, s: states.append(s))
    resumed = []
    fit(spec, lambda m, s: resumed.append((m, s)), resume=states[-1])
    assert [m["epoch"] for m, _ in resumed] == [1]
    assert resumed[0][1]["step"] > states[-1]["step"]


class _Poison(nn.Module):
    """Wraps a model so its logits turn NaN: the loop must stop and name the step and terms."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        out = self.model(images)
        return dataclasses.replace(out, logits=out.logits * float("nan"))


def test_non_finite_loss_stops_with_step_and_terms(digits28, tmp_path):
    spec = _spec(digits28, tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 0: .*classification=nan"):
        fit(spec, lambda m, s: None, wrap=_Poison)


class _Seen(nn.Module):
    """Wraps a model and keeps every training input it is given (the loop evaluates on the raw model)."""

    seen: list[torch.Tensor] = []

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        _Seen.seen.append(images.detach().clone())
        return self.model(images)


@pytest.mark.parametrize("augment", [False, True])
def test_augmentation_changes_what_training_sees_and_only_that(digits28, tmp_path, augment):
    from jobs.data.store import read_split

    data = {"path": digits28, "probe_count": 4, "hflip": augment, "max_shift": 3 if augment else 0,
            "min_crop": 0.8 if augment else 1.0}
    spec = _spec(digits28, tmp_path).replace(data=JobSpec.from_dict({"model": {"name": "ram-mnist28"}, "data": data}).data)
    _Seen.seen = []
    last = fit(spec, lambda m, s: None, wrap=_Seen)
    stored = {bytes(img.numpy()) for img in read_split(digits28, "train").to_batch()["image"]}
    seen = torch.cat(_Seen.seen)  # (epochs x 96, 1, 28, 28)
    unchanged = sum(bytes(img.numpy()) in stored for img in seen) / len(seen)
    # Augmented: a digit stays put only when the shift is (0, 0) and it is not mirrored (1/98 of draws).
    assert unchanged < 0.1 if augment else unchanged == 1.0, unchanged
    assert seen.sum().item() > 0 and 0.0 <= last["val_accuracy"] <= 1.0


def test_mirroring_digit_sequences_is_refused_before_training(tmp_path):
    from jobs.run.checks import check_data

    splits = {s: build_recipe("multidigit", count=4, seed=0, split=s) for s in ("train", "test")}
    path = write_dataset(str(tmp_path / "md"), splits, {"recipe": "multidigit", "seed": 0})
    spec = JobSpec.from_dict({"model": {"name": "dram-multidigit"}, "data": {"path": path, "hflip": True}})
    with pytest.raises(ValueError, match=r"data.hflip: .* digit sequences"):
        check_data(spec)
    cropped = spec.replace(data=dataclasses.replace(spec.data, hflip=False, min_crop=0.8))
    with pytest.raises(ValueError, match=r"data.min_crop: .* digit sequences"):
        check_data(cropped)
    check_data(spec.replace(data=dataclasses.replace(spec.data, hflip=False, max_shift=4)))  # a shift is fine


def test_the_loop_runs_the_attention_init_then_alternates_the_phases(tmp_path, monkeypatch):
    """RA-CNN through the loop: its declared attention initialisation first, then `losses` with each phase in
    turn (the loop asks the model, base.AttentionModel), and its per-scale logits in the attention record."""
    from attention_models.racnn import RACNN

    splits = {s: build_recipe("zoom", count=n, seed=0, split=s) for s, n in (("train", 48), ("test", 8))}
    path = write_dataset(str(tmp_path / "zoom"), splits, {"recipe": "zoom", "seed": 0})
    phases: list[str | None] = []
    real = RACNN.losses

    def recording(self, output, batch, phase=None):
        phases.append(phase)
        return real(self, output, batch, phase)

    monkeypatch.setattr(RACNN, "losses", recording)
    spec = JobSpec.from_dict({
        "name": "racnn", "storage_path": str(tmp_path),
        "model": {"name": "racnn-zoom", "overrides": {"scale_sizes": [24, 24], "backbone_width": 4, "apn_hidden": 8}},
        "data": {"path": path, "probe_count": 2},
        "optim": {"epochs": 1, "batch_size": 16, "attention_init_steps": 1, "alternate_every": 1},
        "scaling": {"num_workers": 0},
    })
    last = fit(spec, lambda m, s: None)
    # Step 0 is the APN initialisation (no call to losses); steps 1 and 2 alternate; evaluation asks for all.
    assert phases[:2] == ["apn", "classifiers"] and set(phases[2:]) == {None}
    assert {"train_apn_init", "train_rank", "train_cls_scale1", "train_cls_fused"} <= set(last)
    row = record_files.read_records(RunLayout.of(spec), epoch=0).slice(0, 1).to_pylist()[0]
    assert len(row["step_probs"]) == len(row["step_predictions"]) == 2  # one per scale


def test_a_family_without_attention_init_trains_on_its_losses_from_the_first_step(digits28, tmp_path):
    last = fit(_spec(digits28, tmp_path, epochs=1, attention_init_steps=2), lambda m, s: None)
    assert "train_classification" in last and not any("init" in k for k in last)
    row = record_files.read_records(RunLayout.of(_spec(digits28, tmp_path)), epoch=0).slice(0, 1).to_pylist()[0]
    assert row.get("step_probs") is None  # RAM's records carry no per-step logits
