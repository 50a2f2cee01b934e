"""Every dashboard page with Streamlit's AppTest, against a real job service with real finished jobs
(tests/dashboard_harness.py): the jobs table and its filters, the submit form's error and success paths,
a job's curves, history, log tail, cancel and model export, a tune job's trials, attention drawings per
family, the cluster, and a missing token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
        at = AppTest.from_file(APP, default_timeout=60)
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
    normalised = at.code[0].value
    assert "lr: 0.002" in normalised and "num_workers: 0" in normalised and "batch_size: 64" in normalised


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
    job = finished_jobs.client.get(job_id)
    assert job.spec.model.overrides["num_glimpses"].int_value == 2 and job.spec.optim.epochs == 500
    assert job.spec.data.hflip and job.spec.data.max_shift == 4 and job.spec.data.min_crop == pytest.approx(0.7)
    assert job.owner  # the dashboard's user

    page = app("views/job.py", job=job_id)
    assert page.selectbox(key="job_picker").value == job_id
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
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    for group in ("Training loss terms", "Validation loss terms", "Accuracy", "Per-scale accuracy",
                  "Attention score"):  # RA-CNN has them all
        assert sum(f'"title": "{group}"' in s for s in specs) == 1, group
    history = _table(at)[1]
    assert [s.split()[-1] for s in history["state"]] == ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"]
    assert "Running entrypoint" in at.code[0].value
    assert at.get("progress")[0].proto.value == 100
    assert "cancel_" + finished_jobs.racnn not in [b.key for b in at.button]  # finished: no cancel


def test_job_page_of_a_tune_job_shows_every_trials_curves(app, finished_jobs):
    at = app("views/job.py", job=finished_jobs.tune)
    assert not _errors(at)
    epochs = _table(at)[0]
    assert len(set(epochs["trial"])) == 2 and list(epochs["epoch"]) == [0, 0]
    assert "Best trial:" in _text(at)


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
    at = app("views/trials.py")
    assert not _errors(at)
    assert at.selectbox(key="job_picker").value == finished_jobs.tune  # only tune jobs are offered
    table = _table(at)[0]
    best = finished_jobs.client.get(finished_jobs.tune).result.best_trial
    assert len(table) == 2 and set(table["param.model.num_glimpses"]) == {1, 2}
    assert table["trial"].iloc[0] == best  # best first
    assert f"Best trial: `{best}`" in _text(at)
    links = [(link.proto.page, link.proto.query_string) for link in at.get("page_link")]
    assert ("attention", f"job={finished_jobs.tune}&trial={best}") in links
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("num_glimpses vs val_accuracy" in s for s in specs)
    assert any("glimpse budget" in s for s in specs)


# ----------------------------------------------------------------------------------------- attention


def test_attention_of_ram_draws_glimpse_paths_with_a_replay(app, finished_jobs):
    at = app("views/attention.py", job=finished_jobs.ram)
    assert not _errors(at)
    captions = _captions(at)
    # 4 probes in the grid, the detail, the replay, and the 3 retina patches of the step shown.
    assert len(captions) == 4 + 2 + 3
    assert all(" · IoU " in c for c in captions[:4]) and "glimpses 1–3 of 3" in captions
    assert "replay (loops)" in captions and at.get("image")[5].value[0].endswith(".gif")
    slider = at.select_slider(key=f"epoch_{finished_jobs.ram}_")
    assert slider.value == 1 and slider.options == ["0", "1"]
    slider.set_value(0).run()
    assert not at.exception and not _errors(at)
    step = next(s for s in at.slider if s.key.startswith("step_"))
    assert step.value == 3
    step.set_value(1).run()
    assert not at.exception and "glimpses 1–1 of 3" in _captions(at)


def test_attention_of_racnn_shows_each_scales_crop_and_prediction(app, finished_jobs):
    at = app("views/attention.py", job=finished_jobs.racnn)
    assert not _errors(at)
    crops = [c for c in _captions(at) if c.startswith("scale ")]
    assert [c.split(" · ")[0] for c in crops] == ["scale 1", "scale 2"]
    assert all(" · predicts " in c and " · p(true) " in c for c in crops)
    steps = _table(at)[-1]
    assert list(steps["scale"]) == [1, 2] and "IoU with truth" in steps


def test_attention_of_a_tune_job_picks_a_trial(app, finished_jobs):
    best = finished_jobs.client.get(finished_jobs.tune).result.best_trial
    at = app("views/attention.py", job=finished_jobs.tune, trial=best)
    assert not _errors(at)
    trial = at.selectbox(key=f"trial_{finished_jobs.tune}")
    assert trial.value == best and len(trial.options) == 2
    other = next(o for o in trial.options if best not in o)
    trial.set_value(other.split()[0]).run()
    assert not at.exception and not _errors(at) and len(_captions(at)) == 2 + 2 + 3  # 2 probes


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
