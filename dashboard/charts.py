"""Metric groups and Altair charts of a job's epochs and a tune job's trials (pure: no Streamlit calls)."""

from __future__ import annotations

import re

import altair as alt
import pandas as pd

_PER_PART = re.compile(r"^val_accuracy_(scale|level)\d+$")
_PART_IOU = re.compile(r"^val_iou_(scale|level)\d+$")


def metric_groups(columns: list[str]) -> dict[str, list[str]]:
    """The epoch metrics sorted into the panels of the Job page (empty groups left out).

    Training / Validation loss terms: train_* and val_* losses (train_loss, val_cls_scale1, ...);
    Accuracy: val_accuracy and the family's other accuracies; Per-scale accuracy: RA-CNN's
    val_accuracy_scale{s} and MG-CNN's val_accuracy_level{v}; Attention score: attention_iou and the
    per-scale/level box IoUs; Other: the rest (throughput, the baseline's error).
    """
    cols = [c for c in columns if c not in ("trial", "epoch", "step")]
    per_part = [c for c in cols if _PER_PART.match(c)]
    attention = [c for c in cols if c == "attention_iou" or _PART_IOU.match(c)]
    accuracy = [c for c in cols if "accuracy" in c and c not in per_part]
    losses = [c for c in cols if c.startswith(("train_", "val_")) and c not in per_part + attention + accuracy
              and not c.endswith("_error")]
    other = [c for c in cols if c not in per_part + attention + accuracy + losses]
    groups = {"Training loss terms": [c for c in losses if c.startswith("train_")],
              "Validation loss terms": [c for c in losses if c.startswith("val_")],
              "Accuracy": accuracy, "Per-scale accuracy": per_part, "Attention score": attention, "Other": other}
    return {k: v for k, v in groups.items() if v}


def long_form(epochs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """(trial, epoch, metric, value) rows of the given metrics, NaNs dropped."""
    keep = [m for m in metrics if m in epochs]
    if epochs.empty or not keep:
        return pd.DataFrame(columns=["trial", "epoch", "metric", "value"])
    df = epochs[["trial", "epoch", *keep]].melt(id_vars=["trial", "epoch"], var_name="metric", value_name="value")
    return df.dropna(subset=["value"])


def curves(epochs: pd.DataFrame, metrics: list[str], title: str) -> alt.Chart:
    """Metric vs epoch: one line per metric, and per trial for a tune job (trials by colour, metrics by dash)."""
    df = long_form(epochs, metrics)
    tuned = df["trial"].astype(str).str.len().gt(0).any() if not df.empty else False
    base = alt.Chart(df, title=title).mark_line(point=True).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1), title="epoch"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=["trial", "epoch", "metric", alt.Tooltip("value:Q", format=".4f")])
    if tuned:
        return base.encode(color=alt.Color("trial:N"), strokeDash=alt.StrokeDash("metric:N")).properties(height=260)
    return base.encode(color=alt.Color("metric:N")).properties(height=260)


def final_rows(table: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """One row per trial: its best epoch by `metric` (the last epoch when the metric is missing)."""
    if table.empty or "trial" not in table:
        return table
    if metric not in table:
        return table.sort_values("epoch").groupby("trial", as_index=False).tail(1).reset_index(drop=True)
    t = table.dropna(subset=[metric])
    idx = t.groupby("trial")[metric].idxmax() if mode == "max" else t.groupby("trial")[metric].idxmin()
    return t.loc[idx.values].sort_values(metric, ascending=mode != "max").reset_index(drop=True)


def _xy(rows: pd.DataFrame, param: str, metric: str, best: str) -> pd.DataFrame:
    """(trial, x, y, best) rows: Vega-Lite reads a dot in a field name as a nested field, and every
    searched key has one (param.model.num_glimpses), so the chart data gets plain names."""
    df = rows[["trial", param, metric]].dropna().rename(columns={param: "x", metric: "y"})
    df["best"] = df["trial"] == best
    return df


def _points(df: pd.DataFrame, x: alt.X, metric: str) -> alt.Chart:
    return alt.Chart(df).mark_point(filled=True).encode(
        x=x, y=alt.Y("y:Q", title=metric, scale=alt.Scale(zero=False)),
        size=alt.condition("datum.best", alt.value(220), alt.value(70)),
        color=alt.condition("datum.best", alt.value("#d55e00"), alt.value("#0072b2")),
        tooltip=["trial", alt.Tooltip("x", title="value"), alt.Tooltip("y:Q", title=metric, format=".4f")])


def param_scatter(rows: pd.DataFrame, param: str, metric: str, best: str) -> alt.Chart:
    """A searched hyperparameter against the metric, one point per trial, the best trial larger and orange."""
    df = _xy(rows, param, metric, best)
    name = param.removeprefix("param.")
    numeric = pd.api.types.is_numeric_dtype(df["x"])
    log = numeric and name.endswith(("lr", "weight_decay")) and bool((df["x"] > 0).all())
    integer = pd.api.types.is_integer_dtype(df["x"])
    x = alt.X(f"x:{'Q' if numeric else 'N'}", title=name, axis=alt.Axis(tickMinStep=1) if integer else alt.Axis(),
              scale=alt.Scale(type="log", padding=16) if log else alt.Scale(zero=False, padding=16))
    return _points(df, x, metric).properties(title=f"{name} vs {metric}", height=240)


GLIMPSE_KEYS = ("param.model.num_glimpses", "param.model.glimpses_per_label")


def budget_chart(rows: pd.DataFrame, metric: str, best: str) -> alt.Chart | None:
    """Accuracy against the glimpse budget (RAM: glimpses per image; DRAM: glimpses per digit): each
    trial, and the mean per budget as a line. None when the search did not vary a glimpse count."""
    key = next((k for k in GLIMPSE_KEYS if k in rows and rows[k].notna().any()), None)
    if key is None or metric not in rows:
        return None
    df = _xy(rows, key, metric, best)
    x = alt.X("x:Q", title="glimpses per image" if key.endswith("num_glimpses") else "glimpses per digit",
              axis=alt.Axis(tickMinStep=1), scale=alt.Scale(zero=False, padding=16))
    mean = alt.Chart(df).mark_line(color="#999999").encode(x=x, y=alt.Y("mean(y):Q", title=metric))
    return alt.layer(mean, _points(df, x, metric)).properties(title=f"{metric} vs glimpse budget", height=240)
