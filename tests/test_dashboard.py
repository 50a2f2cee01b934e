"""The Jobs, Job and Cluster pages with Streamlit's AppTest, against a real job service with real finished
jobs (tests/dashboard_harness.py): the jobs table and its filters, the submit form's error and success
paths, the verdict, a job's curves, spec, history, log tail, cancel and model export, the cluster, and a
missing token. Trials and Attention: tests/test_dashboard_trials_attention.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dashboard_pages as pages
import pandas as pd
import pytest
from service_harness import wait_for
from streamlit.testing.v1 import AppTest

pytest_plugins = ["dashboard_harness"]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


# ---------------------------------------------------------------------------------------------- jobs


def test_jobs_table_shows_every_finished_job_with_progress_and_best_metric(app, finished_jobs):
    at = app()
    assert not pages.errors(at)
    table = pages.table(at, "jobs_table").set_index("job")
    for job_id, kind, model in ((finished_jobs.ram, "train", "ram-cluttered60"),
                                (finished_jobs.racnn, "train", "racnn-zoom"), (finished_jobs.tune, "tune", "ram-cluttered60")):
        row = table.loc[job_id]
        assert row["state"].endswith("SUCCEEDED") and row["kind"] == kind and row["model"] == model
        assert row["progress"] == 1.0 and 0.0 <= row["best"] <= 1.0
        assert row["dataset"] == Path(finished_jobs.client.get(job_id).spec.data.path).name
        assert row["age"].endswith((" s", " min"))
    assert table.loc[finished_jobs.ram, "best"] == pytest.approx(
        finished_jobs.client.get(finished_jobs.ram).result.metrics["val_accuracy"])
    assert next(d for d in at.dataframe if d.key == "jobs_table").proto.placeholder == "–"  # not "None"


def test_filters_narrow_the_table(app, finished_jobs):
    at = app()
    at.selectbox(key="filter_kind").set_value("tune").run()
    # The session's service may hold other tune jobs (the running search of the harness): tune jobs only.
    tune_only = pages.table(at, "jobs_table")
    assert set(tune_only["kind"]) == {"tune"} and finished_jobs.tune in set(tune_only["job"])
    assert not {finished_jobs.ram, finished_jobs.racnn} & set(tune_only["job"])
    at.selectbox(key="filter_kind").set_value("any")
    at.text_input(key="filter_owner").set_value("bob").run()
    table = pages.table(at, "jobs_table")
    assert set(table["owner"]) == {"bob"} and finished_jobs.racnn in set(table["job"])
    at.text_input(key="filter_owner").set_value("")
    at.multiselect(key="filter_states").set_value(["FAILED"]).run()
    assert not any(d.key == "jobs_table" for d in at.dataframe) and "No jobs match." in pages.text(at)


def _fill_form(at: AppTest, data: str, model: str = "ram-cluttered60", **fields) -> None:
    at.selectbox(key="submit_model").set_value(model).run()
    at.text_input(key="submit_data_path").set_value(data)
    for key, value in fields.items():
        widget = at.get_by_key(key) if hasattr(at, "get_by_key") else None
        (widget or at.number_input(key=key)).set_value(value)


def test_submit_form_fields_follow_the_models_family(app):
    """Models and their defaults come from the service (ListModels); the fields follow the family."""
    from attention_models import list_models, model_config

    at = app()
    model = at.selectbox(key="submit_model")
    assert sorted(model.options) == sorted(f"{n} ({n.split('-')[0]})" for n in list_models())
    keys = lambda: {w.key for w in [*at.number_input, *at.text_input, *at.selectbox]}  # noqa: E731
    model.set_value("ram-cluttered60").run()
    assert {"submit_ram_num_glimpses", "submit_ram_patch_size", "submit_ram_core"} <= keys()
    assert at.number_input(key="submit_ram_num_glimpses").proto.placeholder == str(model_config("ram-cluttered60").num_glimpses)
    at.selectbox(key="submit_model").set_value("racnn-zoom").run()
    assert {"submit_racnn_margin", "submit_racnn_scale_sizes", "submit_racnn_optim.alternate_every"} <= keys()
    assert not any(k.startswith("submit_ram_") for k in keys())
    placement = at.selectbox(key="submit_scaling_placement_strategy")  # from the spec schema's enum
    assert placement.value == "PACK" and placement.options == ["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]
    sizes = ", ".join(map(str, model_config("racnn-zoom").scale_sizes))
    assert at.text_input(key="submit_racnn_scale_sizes").proto.placeholder == sizes
    at.selectbox(key="submit_model").set_value("mgcnn-zoom").run()
    assert at.text_input(key="submit_mgcnn_level_classes").proto.placeholder == "the dataset's hierarchy"
    assert not at.data_editor  # the search space only for tune jobs
    at.radio(key="submit_kind").set_value("tune").run()
    assert {"submit_tune_num_trials", "submit_tune_metric", "submit_tune_scheduler"} <= keys() and len(at.data_editor) == 1


def test_submit_form_shows_the_services_validation_error_beside_the_form(app, finished_jobs, tmp_path):
    at = app()
    _fill_form(at, str(tmp_path / "no-such-dataset"))
    at.button(key="FormSubmitter:submit_form-Validate").click().run()
    assert not at.exception
    errors = pages.errors(at)
    assert len(errors) == 1 and "data.path: no dataset at" in errors[0] and "INVALID_ARGUMENT" not in errors[0]
    assert "`data.path`" in pages.text(at)

    # A model field out of range: the model's own config names it, and no job is created.
    before = len(finished_jobs.client.list_all())
    _fill_form(at, finished_jobs.data)
    at.number_input(key="submit_ram_num_glimpses").set_value(0)
    at.button(key="FormSubmitter:submit_form-Submit").click().run()
    assert not at.exception
    assert any(e.startswith("**The service refused the spec.**") and "model.num_glimpses" in e for e in pages.errors(at))
    assert len(finished_jobs.client.list_all()) == before


def test_yaml_tab_reports_spec_errors_and_validates_a_good_spec(app, finished_jobs):
    at = app()
    bad = f"kind: train\nmodel: {{name: ram-cluttered60}}\ndata: {{path: {finished_jobs.data}}}\noptim: {{lr: -1}}\n"
    at.text_area(key="yaml_body_the form's last spec").set_value(bad)
    at.button(key="FormSubmitter:yaml_form-Validate").click().run()
    assert any("optim.lr: must be > 0" in e for e in pages.errors(at)), pages.errors(at)
    good = bad.replace("lr: -1", "lr: 0.002") + "scaling: {num_workers: 0}\n"
    at.text_area(key="yaml_body_the form's last spec").set_value(good)
    at.button(key="FormSubmitter:yaml_form-Validate").click().run()
    assert not pages.errors(at) and any("The spec is valid" in s.value for s in at.success)
    verdict = at.code[0]
    normalised = verdict.value
    assert "lr: 0.002" in normalised and "num_workers: 0" in normalised and "batch_size: 64" in normalised
    # The validated spec in YAML as a user writes it, not protobuf's text, and wrapped rather than cut off.
    assert normalised.startswith("kind: train\nname: ''\nmodel:\n  name: ram-cluttered60\n") and verdict.proto.wrap_lines
    assert not re.search(r"JOB_KIND|int_value|intValue|float_value|string_value", normalised)


def test_the_verdict_on_a_search_says_how_many_trials_it_plans(app, finished_jobs):
    at = app()
    spec = (f"kind: tune\nmodel: {{name: ram-cluttered60}}\ndata: {{path: {finished_jobs.data}}}\n"
            "scaling: {num_workers: 1}\ntune: {space: none, params: {model.num_glimpses: {grid: [2, 4, 6]}}, num_trials: 1}\n")
    at.text_area(key="yaml_body_the form's last spec").set_value(spec)
    at.button(key="FormSubmitter:yaml_form-Validate").click().run()
    assert not pages.errors(at), pages.errors(at)
    assert [s.value for s in at.success] == ["The spec is valid: the service would run it like this, "
                                             "a search of 3 trials."]


def test_yaml_examples_keep_their_comments(app):
    at = app()
    at.selectbox(key="yaml_start").set_value("ram-tune-tiny").run()
    text = (Path(__file__).resolve().parents[1] / "examples" / "ram-tune-tiny.yaml").read_text()
    body = at.text_area(key="yaml_body_ram-tune-tiny").value
    assert body == text and body.startswith("# ")


def test_relative_paths_are_resolved_where_the_dashboard_runs_and_shown_before_submission(app, finished_jobs):
    at = app()
    relative = os.path.relpath(finished_jobs.data)
    assert not relative.startswith("/")
    spec = f"kind: train\nmodel: {{name: ram-cluttered60}}\ndata: {{path: {relative}}}\nscaling: {{num_workers: 0}}\n"
    at.text_area(key="yaml_body_the form's last spec").set_value(spec)
    at.button(key="FormSubmitter:yaml_form-Validate").click().run()
    assert not pages.errors(at), pages.errors(at)
    there = os.path.realpath(finished_jobs.data)
    assert f"`data.path`: `{relative}` resolved here to `{there}`" in pages.text(at)
    assert f"  path: {there}\n" in at.code[0].value  # the spec the service validated has the resolved path
    # The form says where its path resolves as soon as the page has it, before anything is sent.
    _fill_form(at, relative)
    at.button(key="FormSubmitter:submit_form-Validate").click().run()
    assert f"`data.path` resolves here to `{there}`" in pages.text(at)


def test_a_job_submitted_with_the_form_can_be_followed_and_cancelled(app, finished_jobs):
    at = app()
    _fill_form(at, finished_jobs.data)
    at.number_input(key="submit_ram_num_glimpses").set_value(2)
    at.number_input(key="submit_optim_epochs").set_value(500)
    at.number_input(key="submit_scaling_num_workers").set_value(0)
    at.checkbox(key="submit_data_hflip").check()
    at.number_input(key="submit_data_max_shift").set_value(4)
    at.number_input(key="submit_data_min_crop").set_value(0.7)
    at.button(key="FormSubmitter:submit_form-Submit").click().run()
    assert not pages.errors(at)
    submitted = next(s.value for s in at.success if s.value.startswith("Submitted"))
    job_id = submitted.split("**")[1]
    # In the table at once (the run that submitted it), its best metric missing (the job is seconds from its
    # first epoch), which the table shows as a dash.
    table = pages.table(at, "jobs_table").set_index("job")
    assert job_id in table.index and table.loc[job_id, "state"] in ("QUEUED", "PENDING", "RUNNING")
    assert pd.isna(table.loc[job_id, "best"]) and table.loc[job_id, "progress"] == 0.0
    assert next(d for d in at.dataframe if d.key == "jobs_table").proto.placeholder == "–"
    job = finished_jobs.client.get(job_id)
    assert job.spec.model.overrides["num_glimpses"].int_value == 2 and job.spec.optim.epochs == 500
    assert job.spec.data.hflip and job.spec.data.max_shift == 4 and job.spec.data.min_crop == pytest.approx(0.7)
    assert job.owner  # the dashboard's user

    page = app("views/job.py", job=job_id)
    assert pages.picker(page, "job_picker").value == job_id
    assert f"export_{job_id}" not in [b.key for b in page.button]  # nothing to export before it succeeds
    page.button(key=f"cancel_{job_id}").click().run()
    assert not page.exception and not pages.errors(page)
    outcome = [s.value for s in page.success if s.value.startswith(job_id)]
    assert outcome and outcome[0].endswith(("CANCELLED", "cancel requested; Ray is stopping it"))
    wait_for(finished_jobs.client, job_id, ("CANCELLED",), timeout=60)  # Ray confirms within seconds


# ----------------------------------------------------------------------------------------------- job


def test_job_page_draws_curves_history_log_and_result(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.racnn)
    assert not pages.errors(at)
    titles = [spec["title"] for spec, _ in pages.charts(at)]
    for group in ("Training loss terms", "Validation loss terms", "Accuracy", "Per-scale accuracy",
                  "Attention score"):  # RA-CNN has them all
        assert any(t == group or t.startswith(f"{group} (") for t in titles), (group, titles)
    history = pages.table(at)[1]
    assert [s.split()[-1] for s in history["state"]] == ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"]
    assert "Running entrypoint" in at.code[0].value
    # Ray colours its lines for a terminal; the page shows the text without the escape codes.
    assert "\x1b[" in "".join(finished_jobs.client.logs(finished_jobs.racnn)) and "\x1b" not in at.code[0].value
    assert at.get("progress")[0].proto.value == 100
    assert "cancel_" + finished_jobs.racnn not in [b.key for b in at.button]  # finished: no cancel


@pytest.mark.parametrize("which", ["ram", "tune"])
def test_every_chart_has_a_unit_and_no_axis_mixes_scales(app, finished_jobs, which):
    """images_per_s (~1,000) beside val_baseline_error (~0.4) drew the error flat at 0: no chart shares an
    axis between metrics of different units, or of magnitudes more than 10x apart."""
    from dashboard import charts

    at = app("views/job.py", job=getattr(finished_jobs, which))
    assert not pages.errors(at)
    seen = set()
    for spec, rows in pages.charts(at):
        y = spec["encoding"]["y"]
        assert re.fullmatch(r".+ \(.+\)", y["axis"]["title"]), y  # "loss (mean per image)"
        sizes = rows.assign(value=rows["value"].abs()).groupby("metric")["value"].max()
        seen |= set(sizes.index)
        assert len({charts.unit(m) for m in sizes.index}) == 1, (spec["title"], list(sizes.index))
        if not charts.unit(sizes.index[0]).bounded:
            assert sizes.max() <= 10 * max(sizes.min(), 1e-9), (spec["title"], sizes.to_dict())
    assert {"images_per_s", "val_baseline_error", "val_accuracy", "train_loss"} <= seen
    if which == "ram":
        assert "train_accuracy" in seen  # train accuracy beside val accuracy


def test_job_page_of_a_tune_job_shows_every_trials_curves(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.tune)
    assert not pages.errors(at)
    epochs = pages.table(at)[0]
    assert len(set(epochs["trial"])) == 2 and list(epochs["epoch"]) == [0, 0]
    assert "Best trial:" in pages.text(at)
    # The grid over 1 and 2 glimpses with tune.num_trials 1 ran two trials, and the page says so.
    assert "ram-cluttered60** · tune · 2 trials · " in pages.text(at)
    assert at.get("progress")[0].proto.text.startswith("SUCCEEDED · 2 of 2 trials finished")
    # Every legend tells its lines apart: colour is the trial, and several metrics differ by shape and dash.
    for spec, rows in pages.charts(at):
        enc = spec["encoding"]
        assert enc["color"]["field"] == "trial"
        if rows["metric"].nunique() > 1:
            assert len(set(map(str, enc["shape"]["scale"]["range"]))) == len(enc["shape"]["scale"]["domain"]) > 1


def test_the_epoch_table_keeps_a_fixed_meaningful_column_order(app, finished_jobs):
    from dashboard import charts

    at = app("views/job.py", job=finished_jobs.ram)
    epochs = pages.table(at)[0]
    columns = list(epochs.columns)
    # No empty trial column; train accuracy beside val accuracy.
    assert columns[:4] == ["epoch", "step", "val_accuracy", "train_accuracy"] and "attention_iou" in columns
    assert columns == charts.column_order(columns) and str(epochs["epoch"].dtype) == "Int64"
    losses = [c for c in columns if charts.unit(c) is charts.LOSS]
    assert columns.index("images_per_s") > max(map(columns.index, losses))
    tune = pages.table(app("views/job.py", job=finished_jobs.tune))[0]
    assert list(tune.columns)[:3] == ["trial", "epoch", "step"]


def test_job_page_shows_the_spec_in_yaml_as_its_user_wrote_it(app, finished_jobs):
    import yaml

    from jobs.api.spec import JobSpec
    from jobs.api.spec_proto import spec_from_proto

    job = finished_jobs.tune
    at = app("views/job.py", job=job)
    text = at.code[-1].value
    assert text.startswith("kind: tune\nmodel:\n  name: ram-cluttered60\n")
    assert "      grid: [1, 2]\n" in text and "num_trials: 1" in text and "optimizer" not in text
    assert not re.search(r"JOB_KIND|int_value|intValue|\{|\bNone\b", text)
    stored = spec_from_proto(finished_jobs.client.get(job).spec)
    assert JobSpec.from_dict({**yaml.safe_load(text), "name": job}) == stored  # nothing lost
    at.toggle(key=f"spec_full_{job}").set_value(True).run()
    assert "optimizer: adam" in at.code[-1].value and yaml.safe_load(at.code[-1].value) == stored.to_dict()


def test_job_page_prepares_a_finished_jobs_model_for_download(app, finished_jobs):
    job = finished_jobs.ram
    at = app("views/job.py", job=job)
    assert not pages.errors(at)
    fmt = at.radio(key=f"export_format_{job}")
    assert fmt.options == ["ONNX", "TorchScript"] and fmt.value == "onnx"
    assert at.number_input(key=f"export_samples_{job}").disabled is False  # RAM samples its glimpse paths
    assert not at.get("download_button")  # nothing is exported before it is asked for
    at.button(key=f"export_{job}").click().run()
    assert not at.exception and not pages.errors(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download model-mean.onnx", "Model card"]
    name, card, blob = finished_jobs.client.export_model(job, "onnx")
    assert json.loads(at.json[0].value) == card
    assert f"`{name}` · {len(blob):,} bytes · ONNX · opset {card['opset']}" in pages.text(at)
    tensors = next(t for t in pages.table(at) if "tensor" in t)
    assert list(tensors["tensor"]) == [*card["inputs"], *card["outputs"]]
    assert tensors.set_index("tensor").loc["images", "shape"].startswith("B × ")
    at.radio(key=f"export_format_{job}").set_value("torchscript").run()  # prepared only when asked again
    assert not at.get("download_button")


def test_job_page_offers_no_sampled_paths_for_a_deterministic_family(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.racnn)
    samples = at.number_input(key=f"export_samples_{finished_jobs.racnn}")
    assert samples.disabled and samples.value == 0 and "deterministic" in samples.help


# ------------------------------------------------------------------------------------ cluster, token


def test_cluster_page_shows_nodes_resources_and_queue(app, finished_jobs):
    at = app("views/cluster.py")
    assert not pages.errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Nodes"] == "1" and metrics["CPUs in use"].endswith("/ 4")
    assert metrics["Queued jobs"] == "0"
    nodes = pages.table(at)[0]
    assert list(nodes["head"]) == [True] and list(nodes["CPUs"]) == [4.0]


def test_a_wrong_token_is_explained_on_the_page_not_raised(app, monkeypatch):
    monkeypatch.setenv("FOVEATE_TOKEN", "wrong")
    for page in ("views/jobs.py", "views/job.py", "views/cluster.py"):
        at = app(page)
        assert not at.exception
        assert any("[UNAUTHENTICATED]" in e and "token" in e for e in pages.errors(at)), (page, pages.errors(at))


