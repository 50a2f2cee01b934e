"""The Trials and Attention pages with Streamlit's AppTest, against the real job service of
tests/dashboard_harness.py: a tune job's trials, attention drawings per family, pickers whose labels follow
the epoch and a cancel; then a running tune job's pages (it runs from the first of those tests to the end
of the session, so they come last)."""

from __future__ import annotations

import dashboard_pages as pages
import numpy as np
import pytest
from dashboard_harness import long_train_job
from service_harness import wait_for

pytest_plugins = ["dashboard_harness"]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


# -------------------------------------------------------------------------------------------- trials


def test_trials_page_highlights_the_best_trial_and_links_its_attention(app, finished_jobs):
    at = app("views/trials.py", job=finished_jobs.tune)
    assert not pages.errors(at)
    picker = pages.picker(at, "job_picker")
    assert picker.value == finished_jobs.tune and all(" · tune · " in o for o in picker.options)  # only tune jobs
    table = pages.table(at)[0]
    best = finished_jobs.client.get(finished_jobs.tune).result.best_trial
    assert len(table) == 2 and set(table["param.model.num_glimpses"]) == {1, 2}
    assert str(table["epoch"].dtype) == "Int64" and list(table["epoch"]) == [0, 0]  # epochs as integers
    assert table["trial"].iloc[0] == best  # best first
    assert f"Best trial: `{best}`" in pages.text(at) and "2 trials reported of the 2 it plans." in pages.text(at)
    links = [(link.proto.page, link.proto.query_string) for link in at.get("page_link")]
    assert ("attention", f"job={finished_jobs.tune}&trial={best}") in links
    titles = [spec.get("title") for spec, _ in pages.charts(at)]
    assert "model.num_glimpses vs val_accuracy" in titles and "val_accuracy vs glimpse budget" in titles
    assert "did not vary a glimpse count" not in pages.text(at)


def test_trials_page_says_a_train_job_has_no_trials(app, finished_jobs):
    """A train job in ?job= is not swapped for a tune job: the page says why there is nothing to show."""
    at = app("views/trials.py", job=finished_jobs.ram)
    assert not pages.errors(at)
    assert f"**{finished_jobs.ram}** is a train job: it has no trials" in pages.text(at)
    assert pages.picker(at, "job_picker").value is None and not at.dataframe and not at.get("vega_lite_chart")
    assert at.query_params["job"] == finished_jobs.ram  # left as the link had it
    pages.picker(at, "job_picker").set_value(finished_jobs.tune).run()  # the user may still pick a tune job
    assert len(pages.table(at)[0]) == 2 and at.query_params["job"] == finished_jobs.tune


# ----------------------------------------------------------------------------------------- attention


def test_attention_of_ram_draws_glimpse_paths_with_a_replay(app, finished_jobs):
    at = app("views/attention.py", job=finished_jobs.ram)
    assert not pages.errors(at)
    captions = pages.captions(at)
    # 4 probes in the grid, the detail, the replay, and the 3 retina patches of the step shown.
    assert len(captions) == 4 + 2 + 3
    assert all(" · IoU " in c for c in captions[:4]) and "glimpses 1–6 of 6" in captions
    assert "replay (loops)" in captions and at.get("image")[5].value[0].endswith(".gif")
    # Which path is drawn, and how the prediction shown was made (eval_samples is 1 in the harness).
    assert ("Drawn: one sampled glimpse path per image, its first glimpse at a random place. "
            "Prediction shown (x → y): that path's own prediction.") in pages.text(at)
    slider = at.select_slider(key=f"epoch_{finished_jobs.ram}_")
    assert slider.value == 1 and slider.options == ["0", "1"]
    slider.set_value(0).run()
    assert not at.exception and not pages.errors(at)
    step = next(s for s in at.slider if s.key.startswith("step_"))
    assert step.value == 6
    step.set_value(1).run()
    assert not at.exception and "glimpses 1–1 of 6" in pages.captions(at)


def test_attention_of_ram_offers_the_mean_path(app, finished_jobs):
    """The record keeps RAM's mean path beside the sampled one: choosing it redraws the grid with the mean
    path's boxes and predictions, and the note says which path is drawn."""
    from dashboard import drawing

    job = finished_jobs.ram
    rows = finished_jobs.client.attention(job).to_pylist()
    recs = [drawing.record_from_row(r) for r in rows]
    assert all(r.mean_boxes is not None and r.mean_boxes.shape == r.boxes.shape for r in recs)
    # The mean path starts at the centre: its first glimpse is the same for every image.
    firsts = np.stack([r.mean_boxes[0] for r in recs])
    assert np.allclose(firsts, firsts[0], atol=1e-4)
    at = app("views/attention.py", job=job)
    radio = at.radio(key=f"path_{job}_")
    assert radio.value == "sampled"
    radio.set_value("mean").run()
    assert not at.exception and not pages.errors(at)
    assert "Drawn: the mean glimpse path per image" in pages.text(at)
    assert pages.captions(at)[:4] == [drawing.caption(drawing.mean_path(r)) for r in recs]


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
    pages.picker(at, key).set_value(sample).run()
    before = pages.picked(at, key)
    assert before[1] == captions[1][sample]
    at.select_slider(key=f"epoch_{job}_").set_value(0).run()
    assert pages.picker(at, key).value == sample  # the same probe stays chosen
    assert pages.shown(at, key, before)[1] == captions[0][sample]
    assert "epoch 0 · 4 probe images" in pages.text(at)


def test_the_detail_draws_the_finest_scale_and_the_others_on_request(app, finished_jobs):
    from dashboard import drawing

    job = finished_jobs.ram
    at = app("views/attention.py", job=job)
    scales = at.button_group(key=f"scales_{job}_")
    assert scales.value == [0] and scales.options and len(scales.options) == 3  # the job's 3 retina scales
    steps = pages.table(at)[-1]
    assert list(steps.columns) == ["glimpse", "box", "IoU of this box"]
    rec = drawing.record_from_row(finished_jobs.client.attention(job).to_pylist()[0])
    want = [round(float(v), 3) for v in drawing.patch_iou(rec, 0)]  # the IoU of the (finest) box shown
    assert list(steps["IoU of this box"]) == want
    scales.set_value([0, 2]).run()
    steps = pages.table(at)[-1]
    assert list(steps.columns) == ["glimpse", "box (scale 1)", "IoU of this box (scale 1)", "box (scale 3)",
                                   "IoU of this box (scale 3)"]
    assert list(steps["IoU of this box (scale 3)"]) == [round(float(v), 3) for v in drawing.patch_iou(rec, 2)]


def test_attention_of_racnn_shows_each_scales_crop_and_prediction(app, finished_jobs):
    at = app("views/attention.py", job=finished_jobs.racnn)
    assert not pages.errors(at)
    crops = [c for c in pages.captions(at) if c.startswith("scale ")]
    assert [c.split(" · ")[0] for c in crops] == ["scale 1", "scale 2"]
    assert all(" · predicts " in c and " · p(true) " in c for c in crops)
    steps = pages.table(at)[-1]
    assert list(steps["scale"]) == [1, 2] and "IoU of this box" in steps
    assert "sampled glimpse path" not in pages.text(at)  # RA-CNN's crops are deterministic
    assert not at.radio  # and it has no other path to offer


def test_attention_of_a_tune_job_picks_a_trial(app, finished_jobs):
    best = finished_jobs.client.get(finished_jobs.tune).result.best_trial
    at = app("views/attention.py", job=finished_jobs.tune, trial=best)
    assert not pages.errors(at)
    key = f"trial_{finished_jobs.tune}"
    trial = pages.picker(at, key)
    assert trial.value == best and len(trial.options) == 2 and f"{best} (best)" in trial.options
    other = next(o for o in trial.options if best not in o)
    trial.set_value(other).run()
    assert not at.exception and not pages.errors(at) and len(pages.captions(at)) == 2 + 2 + 3  # 2 probes
    assert pages.picker(at, key).value == other and at.query_params["trial"] == other


def test_the_job_picker_follows_a_cancel(app, finished_jobs):
    """The job picker kept RUNNING after a cancel: its shown label follows the job's state."""
    from dashboard import data

    job = long_train_job(finished_jobs)
    at = app("views/attention.py", job=job)
    before = pages.shown(at, "job_picker")
    assert before[1] == f"{job} · ram-cluttered60 · train · RUNNING"
    finished_jobs.client.cancel(job)
    wait_for(finished_jobs.client, job, ("CANCELLED",), timeout=60)
    data.list_jobs.clear()  # what the page's live panel does when it sees the state change
    data.get_job.clear()
    at.run()
    assert pages.shown(at, "job_picker", before)[1] == f"{job} · ram-cluttered60 · train · CANCELLED"


# ------------------------------------------------------------------------------- a running tune job


def test_a_running_searchs_pages_count_its_planned_trials(app, finished_jobs, running_tune):
    at = app("views/job.py", job=running_tune)
    assert not pages.errors(at)
    assert "ram-cluttered60** · tune · 3 trials · " in pages.text(at)  # a grid of 3 with tune.num_trials 1
    bar = at.get("progress")[0].proto
    assert bar.value == 0 and bar.text.startswith("RUNNING · 0 of 3 trials finished · ")
    jobs = pages.table(app(), "jobs_table").set_index("job")
    assert jobs.loc[running_tune, "state"] == "RUNNING" and jobs.loc[running_tune, "progress"] == 0.0
    trials = app("views/trials.py", job=running_tune)
    assert "The search is still running: 1 trial of the 3 it plans reported so far" in pages.text(trials)


def test_the_trials_parameters_are_known_while_the_search_runs(app, running_tune):
    at = app("views/trials.py", job=running_tune)
    assert not pages.errors(at)
    table = pages.table(at)[0]
    assert set(table["param.model.num_glimpses"]) <= {1, 2, 3} and table["param.model.num_glimpses"].notna().all()
    assert "parameters are not known yet" not in pages.text(at) and "did not vary a glimpse count" not in pages.text(at)
    assert any(spec.get("title") == "val_accuracy vs glimpse budget" for spec, _ in pages.charts(at))
