"""Attention: where the model looked in the probe images, by job, trial and epoch.

RA-CNN: the region of each scale, the zoomed crops beside it and each scale's prediction. RAM/DRAM: the
numbered glimpse path (one sampled path, or the mean path on request) with its finest retina patch, the
other scales on request, and a step-by-step replay. MG-CNN: the region of each granularity. The ground-truth
box and the IoU wherever the dataset has boxes. Move the epoch slider to watch the boxes move onto the
object as training goes on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, drawing
from dashboard.widgets import job_links, job_picker_ui, labelled_choice, rerun_on_state_change, table

st.title("Attention")
conn = data.connection()
COLUMNS = 4


def trial_ui(job: dict) -> str | None:
    """The trial of a tune job to show (the `trial` query parameter, else the best one); "" for train jobs."""
    if job["kind"] != "tune":
        return ""
    try:
        trials = data.trial_ids(conn, job["id"])
    except data.ClientError as exc:
        data.show_error(exc, "listing trials")
        return None
    if not trials:
        st.info("No trial has reported yet.")
        return None
    wanted = st.query_params.get("trial") or job["best_trial"]
    key = f"trial_{job['id']}"
    trial = labelled_choice("Trial", trials, lambda t: f"{t} (best)" if t == job["best_trial"] else t, key=key,
                            default=trials[0], force=wanted if wanted != st.session_state.get(key) else None)
    if st.query_params.get("trial") != trial:
        st.query_params["trial"] = trial
    return trial


def epoch_ui(epochs: list[int], key: str) -> int:
    """The epoch to show (the latest by default)."""
    if len(epochs) == 1:
        st.caption(f"epoch {epochs[0]} (the only one recorded)")
        return epochs[0]
    return st.select_slider("Epoch", options=epochs, value=epochs[-1], key=key,
                            help="slide to watch the attention move over training")


MEAN, SAMPLED = "mean", "sampled"


def path_ui(records: list[drawing.Record], key: str) -> str:
    """Which glimpse path to draw where the records hold both (RAM/DRAM): one sampled path or the mean one."""
    if not any(r.mean_boxes is not None for r in records):
        return SAMPLED
    names = {SAMPLED: "one sampled path", MEAN: "the mean path"}
    return st.radio("Glimpse path", [SAMPLED, MEAN], format_func=names.get, key=key, horizontal=True,
                    help="sampled: one of the M paths evaluation averages over; mean: the path the policy means "
                         "take from the centre, which an exported model follows by default")


def path_note(job: dict, path: str = SAMPLED) -> str:
    """Which glimpse path the drawings show and how the prediction shown was made, in one line."""
    if path == MEAN:
        return ("Drawn: the mean glimpse path per image (first glimpse at the centre, then the location "
                "policy's means, no sampling). Prediction shown (x → y): that path's own prediction.")
    try:
        model = next((m for m in data.models(conn) if m["name"] == job["model"]), {"defaults": {}})
    except data.ClientError:
        model = {"defaults": {}}
    first = {**model["defaults"], **job["spec"].get("model", {}).get("overrides", {})}.get("first_location")
    start = {"random": ", its first glimpse at a random place",
             "learned": ", its first glimpse drawn from the learned policy"}.get(first, "")
    m = job["eval_samples"]
    made = "that path's own prediction" if m == 1 else \
        f"the class of the probabilities averaged over M = {m} sampled paths, the one drawn the first of them"
    return f"Drawn: one sampled glimpse path per image{start}. Prediction shown (x → y): {made}."


def overview(job: dict, records: list[drawing.Record], path: str) -> None:
    """Every probe image with its attention, in a grid."""
    ious = [drawing.attention_score(r) for r in records]
    right = np.mean([r.correct for r in records])
    valid = [v for v in ious if not np.isnan(v)]
    glimpse = records[0].kind == "glimpse"
    if glimpse:
        st.caption(path_note(job, path))
    st.caption(f"epoch {records[0].epoch} · {len(records)} probe images · {right:.0%} right"
               + (" · the finest retina patch of each glimpse" if glimpse else "")
               + (f" · mean IoU with the truth {np.mean(valid):.3f}" if valid else "") + " · "
               + drawing.legend(records[0])
               + (" · IoU: each glimpse's best retina scale against the truth, averaged over the glimpses"
                  if glimpse and valid else ""))
    for i in range(0, len(records), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, rec in zip(cols, records[i:i + COLUMNS]):
            col.image(drawing.draw_record(rec, min_side=192, patches=(0,)), caption=drawing.caption(rec),
                      width="stretch", output_format="PNG")


def scales_ui(rec: drawing.Record, key: str) -> tuple[int, ...]:
    """The retina scales to draw (0: the finest), the finest alone by default: 6 glimpses at 3 scales
    would be 18 nested squares."""
    k = rec.boxes.shape[1]
    if k == 1:
        return (0,)
    chosen = st.pills("Retina scales drawn", list(range(k)), selection_mode="multi", default=[0], key=key,
                      format_func=lambda p: f"{p + 1} (finest)" if p == 0 else str(p + 1),
                      help="each glimpse's patches, finest to coarsest; the finest alone keeps the path readable")
    return tuple(sorted(chosen)) or (0,)


def glimpse_detail(rec: drawing.Record, key: str, scales_key: str) -> None:
    """A glimpse path replayed: a step slider, the animated replay and each glimpse's patches; the
    scales drawn are chosen once per job and trial (`scales_key`), the step per record (`key`)."""
    patches = scales_ui(rec, key=scales_key)
    left, right = st.columns([3, 2])
    with left:
        step = rec.steps
        if rec.steps > 1:  # a slider needs two ends
            step = st.slider("Step", 1, rec.steps, rec.steps, key=f"step_{key}",
                             help="the glimpses up to this step; the current one is drawn thicker")
        st.image(drawing.draw_record(rec, upto=step, min_side=384, patches=patches),
                 caption=f"glimpses 1–{step} of {rec.steps}", width="stretch", output_format="PNG")
    with right:
        st.image(drawing.replay_gif(rec, min_side=256, patches=patches), caption="replay (loops)", width="stretch")
        st.markdown("**Retina patches of this step** (finest → coarsest)")
        k = rec.boxes.shape[1]
        crops = [drawing.crops(rec, side=96, patch=p)[step - 1] for p in range(k)]
        st.image(crops, caption=[f"scale {p + 1}" for p in range(k)], width=96, output_format="PNG")
    table(pd.DataFrame(drawing.step_table(rec, patches)))


def region_detail(rec: drawing.Record) -> None:
    """RA-CNN scales or MG-CNN granularities: the regions, and each one zoomed beside with its prediction."""
    name = "scale" if rec.kind == "scale" else "level"
    left, right = st.columns([2, 3])
    left.image(drawing.draw_record(rec, min_side=384), caption=drawing.caption(rec), width="stretch",
               output_format="PNG")
    with right:
        crops = drawing.crops(rec, side=160)
        cols = st.columns(len(crops))
        for t, (col, crop) in enumerate(zip(cols, crops)):
            text = f"{name} {t + 1}"
            if rec.step_predictions is not None:
                text += f" · predicts {int(rec.step_predictions[t])}"
            if rec.step_probs is not None:
                text += f" · p(true) {float(rec.step_probs[t]):.2f}"
            col.image(crop, caption=text, width="stretch", output_format="PNG")
        st.caption("what each " + name + " sees: its region cut out and zoomed"
                   + (" (the model's input at that scale)" if rec.kind == "scale" else ""))
    table(pd.DataFrame(drawing.step_table(rec)))


def attention_panel(job: dict, trial: str) -> None:
    if rerun_on_state_change(conn, job["id"], job["state"]) is None:
        return
    key = f"{job['id']}_{trial}"
    try:
        epochs, _, _ = data.attention(conn, job["id"], trial)
    except data.ClientError as exc:
        data.show_error(exc, "reading attention records")
        return
    if not epochs:
        st.info("No attention recorded yet: the first record is written after the first epoch."
                if data.is_unfinished(job["state"]) else "This job ended before it recorded any attention.")
        return
    epoch = epoch_ui(epochs, key=f"epoch_{key}")
    try:
        _, epoch, rows = data.attention(conn, job["id"], trial, epoch)
    except data.ClientError as exc:
        data.show_error(exc, f"epoch {epoch}")
        return
    records = [drawing.record_from_row(r) for r in rows]
    if not records:
        st.info(f"Epoch {epoch} has no probe images.")
        return
    path = path_ui(records, key=f"path_{key}")
    if path == MEAN:
        records = [drawing.mean_path(r) for r in records]
    overview(job, records, path)
    st.subheader("One probe image")
    ids = [r.sample_id for r in records]
    sample = labelled_choice("Probe image", ids, lambda i: drawing.caption(records[ids.index(i)]),
                             key=f"sample_{key}", default=ids[0])
    rec = records[ids.index(sample)]
    if rec.kind == "glimpse":
        glimpse_detail(rec, key=f"{key}_{epoch}_{sample}_{path}", scales_key=f"scales_{key}")
    else:
        region_detail(rec)


job = job_picker_ui(conn)
if job is not None:
    job_links(job, here="attention")
    trial = trial_ui(job)
    if trial is not None:
        st.fragment(run_every=10 if data.is_unfinished(job["state"]) else None)(attention_panel)(job, trial)
