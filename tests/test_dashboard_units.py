"""The dashboard's pure parts on synthetic data: grouping metrics into charts, the trials' charts, building
specs from the form, progress, the spec as YAML, and the `foveate dashboard` command line. Drawing attention
records: tests/test_dashboard_drawing.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from dashboard import charts, forms


def test_metric_groups_sort_every_family_metric():
    cols = ["trial", "epoch", "step", "train_loss", "train_cls_scale1", "val_rank", "val_loss", "val_accuracy",
            "val_accuracy_scale1", "val_accuracy_scale2", "val_iou_scale2", "attention_iou", "images_per_s",
            "val_baseline_error", "val_label_accuracy", "val_accuracy_level1", "train_accuracy", "seconds"]
    g = charts.metric_groups(cols)
    assert g["Accuracy"] == ["val_accuracy", "train_accuracy", "val_label_accuracy"]  # train beside val
    assert g["Training loss terms"] == ["train_loss", "train_cls_scale1"]
    assert g["Validation loss terms"] == ["val_rank", "val_loss"]
    assert g["Per-scale accuracy"] == ["val_accuracy_scale1", "val_accuracy_scale2", "val_accuracy_level1"]
    assert g["Attention score"] == ["val_iou_scale2", "attention_iou"]
    assert g["Throughput"] == ["images_per_s"] and g["Baseline error"] == ["val_baseline_error"]
    assert g["seconds"] == ["seconds"]  # a metric of no known unit: a chart of its own
    for metrics in g.values():
        assert len({charts.unit(m) for m in metrics}) == 1, metrics
    assert charts.column_order(cols) == ["trial", "epoch", "step", *[m for ms in g.values() for m in ms]]


def _epochs(trials: tuple[str, ...] = ("",)) -> pd.DataFrame:
    """Two epochs of a RAM run per trial, each metric at its usual magnitude."""
    rows = [{"trial": t, "epoch": e, "step": 2 * (e + 1), "images_per_s": 3000.0 + e, "val_baseline_error": 0.45,
             "train_loss": 2.4 - e, "train_classification": 2.3 - e, "train_baseline": 0.2, "train_reinforce": 0.05 * e,
             "val_accuracy": 0.1 + e / 10, "train_accuracy": 0.2, "attention_iou": 0.3} for t in trials for e in (0, 1)]
    return pd.DataFrame(rows)


def test_no_chart_puts_metrics_of_different_scales_on_one_axis():
    epochs = _epochs()
    panels = charts.panels(epochs)
    where = {m: i for i, p in enumerate(panels) for m in p.metrics}
    assert where["images_per_s"] != where["val_baseline_error"]
    assert where["train_loss"] == where["train_classification"] != where["train_reinforce"]
    assert where["train_accuracy"] == where["val_accuracy"]
    for p in panels:
        assert {charts.unit(m) for m in p.metrics} == {p.unit}
        assert "(" in p.unit.axis and p.unit.axis.endswith(")"), p.unit.axis  # the unit, in parentheses
        sizes = [epochs[m].abs().max() for m in p.metrics]
        assert p.unit.bounded or max(sizes) <= charts.SCALE_FACTOR * max(min(sizes), 1e-12), (p.title, sizes)


def _encoding(chart) -> dict:
    return chart.to_dict()["encoding"]


def test_curves_title_the_y_axis_and_tell_every_legend_entry_apart():
    train = _encoding(charts.curves(_epochs(), ["val_accuracy", "train_accuracy"], "Accuracy", charts.ACCURACY.axis))
    assert train["y"]["axis"]["title"] == "accuracy (fraction right)" and train["color"]["field"] == "metric"
    tuned = _encoding(charts.curves(_epochs(("a", "b")), ["train_loss", "train_classification"], "Loss"))
    assert tuned["y"]["axis"]["title"] == charts.LOSS.axis and tuned["color"]["field"] == "trial"
    # Colour says the trial: the metrics differ by point shape and dash, both in the legend.
    for channel in ("shape", "strokeDash"):
        enc = tuned[channel]
        assert enc["field"] == "metric" and enc["scale"]["domain"] == ["train_loss", "train_classification"]
        assert len({str(v) for v in enc["scale"]["range"]}) == 2 and enc.get("legend") is not None
    assert tuned["strokeDash"]["legend"]["symbolType"] == "stroke"
    one = _encoding(charts.curves(_epochs(("a", "b")), ["val_accuracy"], "Accuracy"))
    assert one["color"]["field"] == "trial" and "shape" not in one
    assert one["y"]["axis"]["title"] == "val_accuracy (fraction right)"  # the legend names trials: the axis, the metric


def _trials() -> pd.DataFrame:
    return pd.DataFrame({"trial": ["a", "a", "b", "b"], "epoch": [0, 1, 0, 1],
                         "param.model.num_glimpses": [2, 2, 4, 4], "param.optim.lr": [1e-3, 1e-3, 1e-2, 1e-2],
                         "val_accuracy": [0.2, 0.5, 0.4, 0.3]})


def test_final_rows_take_each_trials_best_epoch_best_first():
    rows = charts.final_rows(_trials(), "val_accuracy", "max")
    assert rows[["trial", "epoch", "val_accuracy"]].values.tolist() == [["a", 1, 0.5], ["b", 0, 0.4]]
    assert charts.final_rows(_trials(), "val_accuracy", "min")["trial"].tolist() == ["a", "b"]


def test_trial_charts_mark_the_best_and_need_a_glimpse_param():
    rows = charts.final_rows(_trials(), "val_accuracy", "max")
    spec = charts.param_scatter(rows, "param.optim.lr", "val_accuracy", "a").to_dict()
    assert spec["encoding"]["x"]["scale"]["type"] == "log" and spec["encoding"]["x"]["title"] == "optim.lr"
    data = spec["datasets"][next(iter(spec["datasets"]))]
    # Field names without dots (Vega-Lite would read "param.optim.lr" as a nested field and plot nothing).
    assert [(r["x"], r["y"], r["best"]) for r in data] == [(1e-3, 0.5, True), (1e-2, 0.4, False)]
    assert charts.budget_chart(rows, "val_accuracy", "a") is not None
    assert charts.budget_chart(rows.drop(columns=["param.model.num_glimpses"]), "val_accuracy", "a") is None


def test_form_builds_the_spec_the_service_expects():
    raw = {"num_scales": 3, "scale_sizes": "32, 24,16", "margin": 0.1, "optim.alternate_every": 5}
    spec = forms.build_spec(kind="tune", model="racnn-zoom", overrides=forms.parse_overrides("racnn", raw),
                            data={"path": "/d", "probe_count": 4}, optim={"epochs": 2}, scaling={"num_workers": 1},
                            tune={"num_trials": 3, "space": "none",
                                  "rows": [{"key": "model.margin", "sampler": "uniform", "values": "0.01, 0.2"},
                                           {"key": "lr", "sampler": "choice", "values": "1e-3, 3e-3"},
                                           {"key": "", "sampler": "choice", "values": ""}]})
    assert spec["model"] == {"name": "racnn-zoom", "overrides": {"num_scales": 3, "scale_sizes": [32, 24, 16],
                                                                 "margin": 0.1}}
    assert spec["optim"] == {"epochs": 2, "alternate_every": 5}
    assert spec["tune"] == {"num_trials": 3, "space": "none",
                            "params": {"model.margin": {"uniform": [0.01, 0.2]}, "lr": {"choice": [1e-3, 3e-3]}}}
    assert "storage_path" not in spec  # left to the service's default


def test_form_parse_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^model.level_classes: must be integers"):
        forms.parse_overrides("mgcnn", {"level_classes": "3, ten"})
    with pytest.raises(ValueError, match=r"^tune.params.lr \(row 1\): give at least one value"):
        forms.search_params([{"key": "lr", "sampler": "choice", "values": ""}])


def test_every_registered_variant_gets_its_family_fields():
    """The form's family map covers the registry, and offers only fields the model's config has."""
    import dataclasses

    from attention_models import list_models, model_config, model_family

    for name in list_models():
        fields = {f.name for f in dataclasses.fields(model_config(name))}
        offered = {f.name for f in forms.FAMILY_FIELDS[model_family(name)] if not f.name.startswith("optim.")}
        assert offered and offered <= fields, (name, offered - fields)


def test_list_models_carries_every_variant_with_typed_defaults():
    """ListModels's answer (what the submit form is built from), as the client reads it back."""
    from attention_models import list_models, model_config
    from jobs.api.client import FoveateClient
    from jobs.api.spec import SpecError
    from jobs.service.wire import models_to_proto

    resp = models_to_proto()
    assert [m.name for m in resp.models] == list_models()
    stub = type("Stub", (), {"ListModels": lambda self, req, metadata, timeout: models_to_proto(req.family)})()
    client = FoveateClient("127.0.0.1:1")
    client._stub = stub
    racnn = {m["name"]: m for m in client.models("racnn")}
    assert set(racnn) == set(list_models("racnn"))
    zoom = racnn["racnn-zoom"]["defaults"]
    assert zoom["scale_sizes"] == list(model_config("racnn-zoom").scale_sizes) and type(zoom["num_scales"]) is int
    assert zoom["weights_path"] is None and zoom["margin"] == model_config("racnn-zoom").margin
    client.close()
    with pytest.raises(SpecError, match="^family: unknown family 'vit'"):
        models_to_proto("vit")


def test_dashboard_command_passes_server_and_token_in_the_environment(monkeypatch):
    from dashboard.cli import APP, command
    from jobs.cli import build_parser

    monkeypatch.delenv("FOVEATE_SERVER", raising=False)
    args = build_parser().parse_args(["dashboard", "--server", "head:50051", "--token", "t", "--port", "8600"])
    cmd, env = command(args)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(APP) and APP.is_file()
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--client.toolbarMode") + 1] == "viewer"  # no Deploy button, no developer menu
    assert env["FOVEATE_SERVER"] == "head:50051" and env["FOVEATE_TOKEN"] == "t"
    assert isinstance(args, argparse.Namespace)


def test_the_dashboard_needs_neither_ray_nor_the_models():
    """DESIGN.md's import rule: the dashboard reaches the service through its gRPC client only, so it runs
    on a machine with neither Ray nor PyTorch's models (every page module is compiled and its imports run)."""
    import subprocess
    import sys

    code = (
        "import ast, importlib, pathlib, sys\n"
        "for m in ('dashboard.data', 'dashboard.drawing', 'dashboard.forms', 'dashboard.charts',\n"
        "          'dashboard.widgets', 'dashboard.cli'):\n"
        "    importlib.import_module(m)\n"
        "for page in pathlib.Path('dashboard/views').glob('*.py'):\n"
        "    for node in ast.walk(ast.parse(page.read_text())):\n"
        "        if isinstance(node, ast.ImportFrom) and node.module:\n"
        "            importlib.import_module(node.module)\n"
        "        elif isinstance(node, ast.Import):\n"
        "            [importlib.import_module(a.name) for a in node.names]\n"
        "bad = sorted(m for m in ('ray', 'torch', 'attention_models') if m in sys.modules)\n"
        "print(bad)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_forms_spec_fields_exist_in_the_schema():
    """The form names spec fields only by path; kind, label and help come from the schema."""
    paths = [p for row in forms.TRAINING_ROWS for p in row] + forms.TUNE_ROW + ["data.path", "storage_path"]
    paths += [k if k.startswith("optim.") else f"optim.{k}" for keys in forms.TUNE_KEYS.values()
              for k in keys if not k.startswith("model.")]
    for path in paths:
        f = forms.spec_field(path)
        assert f["title"] and f["description"] and "default" in f, path
    knob = next(f for f in forms.FAMILY_FIELDS["racnn"] if f.name == "optim.alternate_every")
    schema = forms.spec_field("optim.alternate_every")
    assert (knob.label, knob.type, knob.help, knob.default) == (schema["title"], "int", schema["description"], 50)


def test_changed_leaves_schema_defaults_to_the_service():
    sections = forms.changed({"data.path": "/d", "data.probe_count": 16, "optim.epochs": 9, "scaling.use_gpu": False,
                              "storage_path": ""}, keep=("data.path",))
    assert sections == {"data": {"path": "/d"}, "optim": {"epochs": 9}}


def _form_script():
    import streamlit as st

    from dashboard import forms

    data, optim, scaling, storage = forms.training_ui(data_paths=["/data/latest"])
    tune = forms.tune_ui("ram")
    st.session_state["answer"] = {"data": data, "optim": optim, "scaling": scaling, "storage": storage,
                                  "tune": {k: v for k, v in tune.items() if k != "rows"}}


def test_form_widgets_follow_the_schema_and_return_what_changed():
    """The spec's widgets, drawn without a service: defaults, bounds, choices and help are the schema's."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_form_script, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    epochs, crop = at.number_input(key="submit_optim_epochs"), at.number_input(key="submit_data_min_crop")
    assert epochs.value == forms.spec_field("optim.epochs")["default"] and epochs.min == 1
    assert epochs.help == forms.spec_field("optim.epochs")["description"] and epochs.label == "Epochs"
    assert (crop.value, crop.min, crop.max) == (1.0, 0.0, 1.0)
    assert at.selectbox(key="submit_tune_scheduler").options == forms.spec_field("tune.scheduler")["enum"]
    assert at.text_input(key="submit_data_path").value == "/data/latest"
    assert at.session_state["answer"] == {"data": {"path": "/data/latest"}, "optim": {}, "scaling": {}, "storage": "",
                                          "tune": {"num_trials": 4, "metric": "val_accuracy", "mode": "max",
                                                   "scheduler": "asha", "search": "random", "space": "default"}}
    at.number_input(key="submit_optim_epochs").set_value(9)
    at.checkbox(key="submit_scaling_use_gpu").check()
    at.number_input(key="submit_data_min_crop").set_value(0.5)
    at.text_input(key="submit_storage_path").set_value(" /out ")
    at.selectbox(key="submit_tune_metric").set_value("val_loss").run()
    answer = at.session_state["answer"]
    assert answer["optim"] == {"epochs": 9} and answer["scaling"] == {"use_gpu": True}
    assert answer["data"] == {"path": "/data/latest", "min_crop": 0.5} and answer["storage"] == "/out"
    assert answer["tune"]["metric"] == "val_loss"


def _job(kind: str, state: str, trials: int = 3, epochs: int = 2) -> dict:
    return {"kind": kind, "state": state, "trials": trials, "epochs": epochs}


def test_a_tune_jobs_progress_is_its_trials_finished_of_those_planned():
    from dashboard import data

    one_of_three = pd.DataFrame({"trial": ["a", "a", "b"], "epoch": [0, 1, 0]})  # b stopped mid-way
    assert data.progress(_job("tune", "CANCELLED"), one_of_three) == pytest.approx(1 / 3)
    assert data.progress_text(_job("tune", "CANCELLED"), one_of_three).startswith("1 of 3 trials finished")
    assert data.progress(_job("tune", "RUNNING"), one_of_three.iloc[2:]) == 0.0
    # An ended search counts every trial it ran as finished (a scheduler may have stopped some early).
    assert data.trials_finished(_job("tune", "SUCCEEDED"), one_of_three) == 2
    assert data.progress(_job("tune", "SUCCEEDED"), one_of_three) == 1.0
    assert data.progress(_job("train", "RUNNING", trials=1, epochs=4), pd.DataFrame({"trial": [""], "epoch": [0]})) == 0.25


def _spec_message(**sections):
    from jobs.api.spec import JobSpec
    from jobs.api.spec_proto import spec_to_proto

    return spec_to_proto(JobSpec.from_dict({"name": "job-1", "data": {"path": "/d"}, **sections}))


def test_a_spec_reads_as_yaml_as_its_user_wrote_it():
    import yaml

    from dashboard import specs
    from jobs.api.spec import JobSpec

    msg = _spec_message(kind="tune", model={"name": "ram-cluttered60", "overrides": {"num_glimpses": 4}},
                        scaling={"num_workers": 1}, optim={"lr": 0.002},
                        tune={"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2, 3]}}, "search": "grid"})
    text = specs.to_yaml(specs.written(specs.plain(msg), "job-1"))
    assert text.splitlines()[:5] == ["kind: tune", "model:", "  name: ram-cluttered60", "  overrides:",
                                     "    num_glimpses: 4"]
    assert "grid: [1, 2, 3]" in text and "lr: 0.002" in text
    assert "JOB_KIND" not in text and "int_value" not in text and "optimizer" not in text and "name: job-1" not in text
    # What it shows is the spec: read back, it is the job's spec (the name aside, which the service sets).
    full = JobSpec.from_dict(specs.plain(msg))
    assert JobSpec.from_dict({**yaml.safe_load(text), "name": "job-1"}) == full
    every = specs.to_yaml(specs.ordered(specs.plain(msg)))
    assert [ln.split(":")[0] for ln in every.splitlines() if not ln.startswith(" ")] == [
        "kind", "name", "model", "data", "optim", "scaling", "checkpoint", "tune", "storage_path"]
