"""Every dashboard page with Streamlit's AppTest, against a real job service with real finished jobs
(tests/dashboard_harness.py): the jobs table and its filters, the submit form's error and success paths,
a job's curves, history, log tail, cancel and model export, a tune job's trials, attention drawings per
family, the cluster, and a missing token. The tests of a running tune job come last: it runs from the
first of them to the end of the session."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from dashboard_harness import long_train_job
from service_harness import wait_for
from streamlit.testing.v1 import AppTest

pytest_plugins = ["dashboard_harness"]
pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture
def app(finished_jobs, monkeypatch):
    """An AppTest of the dashboard pointed at the fixture's service (address and token from the environment,
    as `foveate dashboard` passes them)."""
    monkeypatch.setenv("FOVEATE_SERVER", finished_jobs.address)
    monkeypatch.setenv("FOVEATE_TOKEN", finished_jobs.token)

    def open_page(page: str = "views/jobs.py", **query: str) -> AppTest:
        # A deadline, not a pause: exports and cold caches take long on a loaded machine.
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        if page != "views/jobs.py":
            at.query_params.update(query)
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return open_page


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _table(at: AppTest, key: str | None = None):
    frames = [d.value for d in at.dataframe]
    return frames if key is None else next(d.value for d in at.dataframe if d.key == key)


def _captions(at: AppTest) -> list[str]:
    """The captions of every image on the page (one st.image may show several)."""
    return [c for img in at.get("image") for c in img.captions]


def _text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption, *at.info, *at.success, *at.error])


def _picker(at: AppTest, key: str):
    """The selectbox of widgets.labelled_choice(key=...): its key is `key` and a digest of its labels."""
    return next(s for s in at.selectbox if s.key and s.key.rsplit("_", 1)[0] == key)


def _shown(at: AppTest, key: str, before: tuple[str, str] | None = None) -> tuple[str, str]:
    """(widget id, the label the browser shows as the choice) of a labelled_choice after a run, as the browser
    keeps it: a value the server sets is shown; else a widget the browser already has (`before`: its id and
    label after the previous run) keeps the label it had; else a new widget shows its default option."""
    w = _picker(at, key)
    if w.proto.set_value:
        return w.id, w.proto.raw_value
    if before is not None and before[0] == w.id:
        return before
    return w.id, w.proto.options[w.proto.default]


def _picked(at: AppTest, key: str) -> tuple[str, str]:
    """(widget id, label) of a labelled_choice right after the user picked in it: the option clicked."""
    w = _picker(at, key)
    return w.id, w.options[w.index]


def _charts(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """(Vega-Lite spec, its data) of every chart on the page (Streamlit sends the data beside the spec)."""
    from streamlit import dataframe_util

    out = []
    for c in at.get("vega_lite_chart"):
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in c.proto.datasets]
        out.append((json.loads(c.proto.spec), pd.concat(frames) if frames else pd.DataFrame()))
    return out


# ---------------------------------------------------------------------------------------------- jobs


def test_jobs_table_shows_every_finished_job_with_progress_and_best_metric(app, finished_jobs):
    at = app()
    assert not _errors(at)
    table = _table(at, "jobs_table").set_index("job")
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
    assert list(_table(at, "jobs_table")["job"]) == [finished_jobs.tune]
    at.selectbox(key="filter_kind").set_value("any")
    at.text_input(key="filter_owner").set_value("bob").run()
    table = _table(at, "jobs_table")
    assert set(table["owner"]) == {"bob"} and finished_jobs.racnn in set(table["job"])
    at.text_input(key="filter_owner").set_value("")
    at.multiselect(key="filter_states").set_value(["FAILED"]).run()
    assert not any(d.key == "jobs_table" for d in at.dataframe) and "No jobs match." in _text(at)


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
    errors = _errors(at)
    assert len(errors) == 1 and "data.path: no dataset at" in errors[0] and "INVALID_ARGUMENT" not in errors[0]
    assert "`data.path`" in _text(at)

    # A model field out of range: the model's own config names it, and no job is created.
    before = len(finished_jobs.client.list_all())
    _fill_form(at, finished_jobs.data)
    at.number_input(key="submit_ram_num_glimpses").set_value(0)
    at.button(key="FormSubmitter:submit_form-Submit").click().run()
    assert not at.exception
    assert any(e.startswith("**The service refused the spec.**") and "model.num_glimpses" in e for e in _errors(at))
    assert len(finished_jobs.client.list_all()) == before


def test_yaml_tab_reports_spec_errors_and_validates_a_good_spec(app, finished_jobs):
    at = app()
    bad = f"kind: train\nmodel: {{name: ram-cluttered60}}\ndata: {{path: {finished_jobs.data}}}\noptim: {{lr: -1}}\n"
    at.text_area(key="yaml_body_the form's last spec").set_value(bad)
    at.button(key="FormSubmitter:yaml_form-Validate").click().run()
    assert any("optim.lr: must be > 0" in e for e in _errors(at)), _errors(at)
    good = bad.replace("lr: -1", "lr: 0.002") + "scaling: {num_workers: 0}\n"
    at.text_area(key="yaml_body_the form's last spec").set_value(good)
    at.button(key="FormSubmitter:yaml_form-Validate").click().run()
    assert not _errors(at) and any("The spec is valid" in s.value for s in at.success)
    verdict = at.code[0]
    normalised = verdict.value
    assert "lr: 0.002" in normalised and "num_workers: 0" in normalised and "batch_size: 64" in normalised
    # The validated spec in YAML as a user writes it, not protobuf's text, and wrapped rather than cut off.
    assert normalised.startswith("kind: train\nname: ''\nmodel:\n  name: ram-cluttered60\n") and verdict.proto.wrap_lines
    assert not re.search(r"JOB_KIND|int_value|intValue|float_value|string_value", normalised)


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
    assert not _errors(at), _errors(at)
    there = os.path.realpath(finished_jobs.data)
    assert f"`data.path`: `{relative}` resolved here to `{there}`" in _text(at)
    assert f"  path: {there}\n" in at.code[0].value  # the spec the service validated has the resolved path
    # The form says where its path resolves as soon as the page has it, before anything is sent.
    _fill_form(at, relative)
    at.button(key="FormSubmitter:submit_form-Validate").click().run()
    assert f"`data.path` resolves here to `{there}`" in _text(at)


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
    assert not _errors(at)
    submitted = next(s.value for s in at.success if s.value.startswith("Submitted"))
    job_id = submitted.split("**")[1]
    # In the table at once (the run that submitted it), its best metric missing (the job is seconds from its
    # first epoch), which the table shows as a dash.
    table = _table(at, "jobs_table").set_index("job")
    assert job_id in table.index and table.loc[job_id, "state"] in ("QUEUED", "PENDING", "RUNNING")
    assert pd.isna(table.loc[job_id, "best"]) and table.loc[job_id, "progress"] == 0.0
    assert next(d for d in at.dataframe if d.key == "jobs_table").proto.placeholder == "–"
    job = finished_jobs.client.get(job_id)
    assert job.spec.model.overrides["num_glimpses"].int_value == 2 and job.spec.optim.epochs == 500
    assert job.spec.data.hflip and job.spec.data.max_shift == 4 and job.spec.data.min_crop == pytest.approx(0.7)
    assert job.owner  # the dashboard's user

    page = app("views/job.py", job=job_id)
    assert _picker(page, "job_picker").value == job_id
    assert f"export_{job_id}" not in [b.key for b in page.button]  # nothing to export before it succeeds
    page.button(key=f"cancel_{job_id}").click().run()
    assert not page.exception and not _errors(page)
    outcome = [s.value for s in page.success if s.value.startswith(job_id)]
    assert outcome and outcome[0].endswith(("CANCELLED", "cancel requested; Ray is stopping it"))
    wait_for(finished_jobs.client, job_id, ("CANCELLED",), timeout=60)  # Ray confirms within seconds


# ----------------------------------------------------------------------------------------------- job


def test_job_page_draws_curves_history_log_and_result(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.racnn)
    assert not _errors(at)
    titles = [spec["title"] for spec, _ in _charts(at)]
    for group in ("Training loss terms", "Validation loss terms", "Accuracy", "Per-scale accuracy",
                  "Attention score"):  # RA-CNN has them all
        assert any(t == group or t.startswith(f"{group} (") for t in titles), (group, titles)
    history = _table(at)[1]
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
    assert not _errors(at)
    seen = set()
    for spec, rows in _charts(at):
        y = spec["encoding"]["y"]
        assert re.fullmatch(r".+ \(.+\)", y["axis"]["title"]), y  # "loss (mean per image)"
        sizes = rows.assign(value=rows["value"].abs()).groupby("metric")["value"].max()
        seen |= set(sizes.index)
        assert len({charts.unit(m) for m in sizes.index}) == 1, (spec["title"], list(sizes.index))
        if not charts.unit(sizes.index[0]).bounded:
            assert sizes.max() <= 10 * max(sizes.min(), 1e-9), (spec["title"], sizes.to_dict())
    assert {"images_per_s", "val_baseline_error", "val_accuracy", "train_loss"} <= seen


def test_job_page_of_a_tune_job_shows_every_trials_curves(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.tune)
    assert not _errors(at)
    epochs = _table(at)[0]
    assert len(set(epochs["trial"])) == 2 and list(epochs["epoch"]) == [0, 0]
    assert "Best trial:" in _text(at)
    # The grid over 1 and 2 glimpses with tune.num_trials 1 ran two trials, and the page says so.
    assert "ram-cluttered60** · tune · 2 trials · " in _text(at)
    assert at.get("progress")[0].proto.text.startswith("SUCCEEDED · 2 of 2 trials finished")
    # Every legend tells its lines apart: colour is the trial, and several metrics differ by shape and dash.
    for spec, rows in _charts(at):
        enc = spec["encoding"]
        assert enc["color"]["field"] == "trial"
        if rows["metric"].nunique() > 1:
            assert len(set(map(str, enc["shape"]["scale"]["range"]))) == len(enc["shape"]["scale"]["domain"]) > 1


def test_the_epoch_table_keeps_a_fixed_meaningful_column_order(app, finished_jobs):
    from dashboard import charts

    at = app("views/job.py", job=finished_jobs.ram)
    epochs = _table(at)[0]
    columns = list(epochs.columns)
    assert columns[:4] == ["epoch", "step", "val_accuracy", "attention_iou"]  # no empty trial column
    assert columns == charts.column_order(columns) and str(epochs["epoch"].dtype) == "Int64"
    losses = [c for c in columns if charts.unit(c) is charts.LOSS]
    assert columns.index("images_per_s") > max(map(columns.index, losses))
    tune = _table(app("views/job.py", job=finished_jobs.tune))[0]
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
    assert not _errors(at)
    fmt = at.radio(key=f"export_format_{job}")
    assert fmt.options == ["ONNX", "TorchScript"] and fmt.value == "onnx"
    assert at.number_input(key=f"export_samples_{job}").disabled is False  # RAM samples its glimpse paths
    assert not at.get("download_button")  # nothing is exported before it is asked for
    at.button(key=f"export_{job}").click().run()
    assert not at.exception and not _errors(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download model-mean.onnx", "Model card"]
    name, card, blob = finished_jobs.client.export_model(job, "onnx")
    assert json.loads(at.json[0].value) == card
    assert f"`{name}` · {len(blob):,} bytes · ONNX · opset {card['opset']}" in _text(at)
    tensors = next(t for t in _table(at) if "tensor" in t)
    assert list(tensors["tensor"]) == [*card["inputs"], *card["outputs"]]
    assert tensors.set_index("tensor").loc["images", "shape"].startswith("B × ")
    at.radio(key=f"export_format_{job}").set_value("torchscript").run()  # prepared only when asked again
    assert not at.get("download_button")


def test_job_page_offers_no_sampled_paths_for_a_deterministic_family(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.racnn)
    samples = at.number_input(key=f"export_samples_{finished_jobs.racnn}")
    assert samples.disabled and samples.value == 0 and "deterministic" in samples.help


# -------------------------------------------------------------------------------------------- trials


def test_trials_page_highlights_the_best_trial_and_links_its_attention(app, finished_jobs):
    at = app("views/trials.py", job=finished_jobs.tune)
    assert not _errors(at)
    picker = _picker(at, "job_picker")
    assert picker.value == finished_jobs.tune and all(" · tune · " in o for o in picker.options)  # only tune jobs
    table = _table(at)[0]
    best = finished_jobs.client.get(finished_jobs.tune).result.best_trial
    assert len(table) == 2 and set(table["param.model.num_glimpses"]) == {1, 2}
    assert str(table["epoch"].dtype) == "Int64" and list(table["epoch"]) == [0, 0]  # epochs as integers
    assert table["trial"].iloc[0] == best  # best first
    assert f"Best trial: `{best}`" in _text(at) and "2 trials reported of the 2 it plans." in _text(at)
    links = [(link.proto.page, link.proto.query_string) for link in at.get("page_link")]
    assert ("attention", f"job={finished_jobs.tune}&trial={best}") in links
    titles = [spec.get("title") for spec, _ in _charts(at)]
    assert "model.num_glimpses vs val_accuracy" in titles and "val_accuracy vs glimpse budget" in titles
    assert "did not vary a glimpse count" not in _text(at)


def test_trials_page_says_a_train_job_has_no_trials(app, finished_jobs):
    """A train job in ?job= is not swapped for a tune job: the page says why there is nothing to show."""
    at = app("views/trials.py", job=finished_jobs.ram)
    assert not _errors(at)
    assert f"**{finished_jobs.ram}** is a train job: it has no trials" in _text(at)
    assert _picker(at, "job_picker").value is None and not at.dataframe and not at.get("vega_lite_chart")
    assert at.query_params["job"] == finished_jobs.ram  # left as the link had it
    _picker(at, "job_picker").set_value(finished_jobs.tune).run()  # the user may still pick a tune job
    assert len(_table(at)[0]) == 2 and at.query_params["job"] == finished_jobs.tune


# ----------------------------------------------------------------------------------------- attention


def test_attention_of_ram_draws_glimpse_paths_with_a_replay(app, finished_jobs):
    at = app("views/attention.py", job=finished_jobs.ram)
    assert not _errors(at)
    captions = _captions(at)
    # 4 probes in the grid, the detail, the replay, and the 3 retina patches of the step shown.
    assert len(captions) == 4 + 2 + 3
    assert all(" · IoU " in c for c in captions[:4]) and "glimpses 1–6 of 6" in captions
    assert "replay (loops)" in captions and at.get("image")[5].value[0].endswith(".gif")
    # Which path is drawn, and how the prediction shown was made (eval_samples is 1 in the harness).
    assert ("Drawn: one sampled glimpse path per image, its first glimpse at a random place. "
            "Prediction shown (x → y): that path's own prediction.") in _text(at)
    slider = at.select_slider(key=f"epoch_{finished_jobs.ram}_")
    assert slider.value == 1 and slider.options == ["0", "1"]
    slider.set_value(0).run()
    assert not at.exception and not _errors(at)
    step = next(s for s in at.slider if s.key.startswith("step_"))
    assert step.value == 6
    step.set_value(1).run()
    assert not at.exception and "glimpses 1–1 of 6" in _captions(at)


def test_every_label_follows_the_epoch(app, finished_jobs):
    """The probe picker kept epoch 11's "3 → 5 ✗ IoU 0.33" at epoch 0: after the epoch changes, what the
    browser shows as the chosen probe is that probe's caption at the new epoch."""
    from dashboard import drawing

    job = finished_jobs.ram
    captions = {e: [drawing.caption(drawing.record_from_row(r)) for r in finished_jobs.client.attention(job, epoch=e)
                    .to_pylist()] for e in (0, 1)}
    sample = next(i for i, (a, b) in enumerate(zip(captions[0], captions[1])) if a != b)  # a probe whose caption moves
    at = app("views/attention.py", job=job)
    key = f"sample_{job}_"
    _picker(at, key).set_value(sample).run()
    before = _picked(at, key)
    assert before[1] == captions[1][sample]
    at.select_slider(key=f"epoch_{job}_").set_value(0).run()
    assert _picker(at, key).value == sample  # the same probe stays chosen
    assert _shown(at, key, before)[1] == captions[0][sample]
    assert "epoch 0 · 4 probe images" in _text(at)


def test_the_detail_draws_the_finest_scale_and_the_others_on_request(app, finished_jobs):
    from dashboard import drawing

    job = finished_jobs.ram
    at = app("views/attention.py", job=job)
    scales = at.button_group(key=f"scales_{job}_")
    assert scales.value == [0] and scales.options and len(scales.options) == 3  # the job's 3 retina scales
    steps = _table(at)[-1]
    assert list(steps.columns) == ["glimpse", "box", "IoU of this box"]
    rec = drawing.record_from_row(finished_jobs.client.attention(job).to_pylist()[0])
    want = [round(float(v), 3) for v in drawing.patch_iou(rec, 0)]  # the IoU of the (finest) box shown
    assert list(steps["IoU of this box"]) == want
    scales.set_value([0, 2]).run()
    steps = _table(at)[-1]
    assert list(steps.columns) == ["glimpse", "box (scale 1)", "IoU of this box (scale 1)", "box (scale 3)",
                                   "IoU of this box (scale 3)"]
    assert list(steps["IoU of this box (scale 3)"]) == [round(float(v), 3) for v in drawing.patch_iou(rec, 2)]


def test_attention_of_racnn_shows_each_scales_crop_and_prediction(app, finished_jobs):
    at = app("views/attention.py", job=finished_jobs.racnn)
    assert not _errors(at)
    crops = [c for c in _captions(at) if c.startswith("scale ")]
    assert [c.split(" · ")[0] for c in crops] == ["scale 1", "scale 2"]
    assert all(" · predicts " in c and " · p(true) " in c for c in crops)
    steps = _table(at)[-1]
    assert list(steps["scale"]) == [1, 2] and "IoU of this box" in steps
    assert "sampled glimpse path" not in _text(at)  # RA-CNN's crops are deterministic


def test_attention_of_a_tune_job_picks_a_trial(app, finished_jobs):
    best = finished_jobs.client.get(finished_jobs.tune).result.best_trial
    at = app("views/attention.py", job=finished_jobs.tune, trial=best)
    assert not _errors(at)
    key = f"trial_{finished_jobs.tune}"
    trial = _picker(at, key)
    assert trial.value == best and len(trial.options) == 2 and f"{best} (best)" in trial.options
    other = next(o for o in trial.options if best not in o)
    trial.set_value(other).run()
    assert not at.exception and not _errors(at) and len(_captions(at)) == 2 + 2 + 3  # 2 probes
    assert _picker(at, key).value == other and at.query_params["trial"] == other


def test_the_job_picker_follows_a_cancel(app, finished_jobs):
    """The job picker kept RUNNING after a cancel: its shown label follows the job's state."""
    from dashboard import data

    job = long_train_job(finished_jobs)
    at = app("views/attention.py", job=job)
    before = _shown(at, "job_picker")
    assert before[1] == f"{job} · ram-cluttered60 · train · RUNNING"
    finished_jobs.client.cancel(job)
    wait_for(finished_jobs.client, job, ("CANCELLED",), timeout=60)
    data.list_jobs.clear()  # what the page's live panel does when it sees the state change
    data.get_job.clear()
    at.run()
    assert _shown(at, "job_picker", before)[1] == f"{job} · ram-cluttered60 · train · CANCELLED"


# ------------------------------------------------------------------------------------ cluster, token


def test_cluster_page_shows_nodes_resources_and_queue(app, finished_jobs):
    at = app("views/cluster.py")
    assert not _errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Nodes"] == "1" and metrics["CPUs in use"].endswith("/ 4")
    assert metrics["Queued jobs"] == "0"
    nodes = _table(at)[0]
    assert list(nodes["head"]) == [True] and list(nodes["CPUs"]) == [4.0]


def test_a_wrong_token_is_explained_on_the_page_not_raised(app, monkeypatch):
    monkeypatch.setenv("FOVEATE_TOKEN", "wrong")
    for page in ("views/jobs.py", "views/job.py", "views/cluster.py"):
        at = app(page)
        assert not at.exception
        assert any("[UNAUTHENTICATED]" in e and "token" in e for e in _errors(at)), (page, _errors(at))


# ------------------------------------------------------------------------------- a running tune job


def test_a_running_searchs_pages_count_its_planned_trials(app, finished_jobs, running_tune):
    at = app("views/job.py", job=running_tune)
    assert not _errors(at)
    assert "ram-cluttered60** · tune · 3 trials · " in _text(at)  # a grid of 3 with tune.num_trials 1
    bar = at.get("progress")[0].proto
    assert bar.value == 0 and bar.text.startswith("RUNNING · 0 of 3 trials finished · ")
    jobs = _table(app(), "jobs_table").set_index("job")
    assert jobs.loc[running_tune, "state"] == "RUNNING" and jobs.loc[running_tune, "progress"] == 0.0
    trials = app("views/trials.py", job=running_tune)
    assert "The search is still running: 1 trial of the 3 it plans reported so far" in _text(trials)


def test_the_trials_parameters_are_known_while_the_search_runs(app, running_tune):
    at = app("views/trials.py", job=running_tune)
    assert not _errors(at)
    table = _table(at)[0]
    assert set(table["param.model.num_glimpses"]) <= {1, 2, 3} and table["param.model.num_glimpses"].notna().all()
    assert "parameters are not known yet" not in _text(at) and "did not vary a glimpse count" not in _text(at)
    assert any(spec.get("title") == "val_accuracy vs glimpse budget" for spec, _ in _charts(at))
