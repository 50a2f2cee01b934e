"""Metric groups and Altair charts of a job's epochs and a tune job's trials (pure: no Streamlit calls)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import altair as alt
import pandas as pd

from jobs.api.tables import PARAM_PREFIX

_PER_PART = re.compile(r"^(train|val)_accuracy_(scale|level)\d+$")
_PART_IOU = re.compile(r"^(train|val)_iou_(scale|level)\d+$")
KEYS = ("trial", "epoch", "step")  # what identifies a row of the epochs, not a metric
# Metrics of one unbounded unit share an axis only while their magnitudes are within this factor: a
# train_reinforce of ~0.05 beside a train_loss of ~2.4 would be a flat line at 0.
SCALE_FACTOR = 10.0


@dataclass(frozen=True)
class Unit:
    """What a metric measures and in what unit, as a chart's y-axis says it; `bounded`: always in [0, 1],
    so every metric of the unit reads well on one axis."""

    quantity: str
    unit: str
    bounded: bool

    @property
    def axis(self) -> str:
        return f"{self.quantity} ({self.unit})"

    def of(self, metric: str) -> str:
        """The axis title of one metric of this unit: 'val_accuracy (fraction right)'."""
        return f"{metric} ({self.unit})"


ACCURACY = Unit("accuracy", "fraction right", True)
IOU = Unit("IoU with the truth", "0–1", True)
ERROR = Unit("baseline error", "|b − reward|, 0–1", True)
LOSS = Unit("loss", "mean per image", False)
THROUGHPUT = Unit("throughput", "images/s", False)
SCHEDULED = {  # what the loop's schedules set each epoch, and its clock (jobs/run/schedules.py)
    "lr": Unit("learning rate", "base, before group scales", False),
    "location_std": Unit("location-policy std", "normalised units", False),
    "elapsed_s": Unit("training time", "s, across resumes", False),
    "sync_fraction": Unit("waiting for the other workers", "share of the epoch, 0–1", False),
}


def unit(metric: str) -> Unit:
    """The unit of an epoch metric by its name (jobs/run/loop.py's keys); a metric of no known unit is
    its own (axis titled with its name)."""
    if "accuracy" in metric:
        return ACCURACY
    if metric == "attention_iou" or _PART_IOU.match(metric):
        return IOU
    if metric.endswith("_error"):
        return ERROR
    if metric == "images_per_s":
        return THROUGHPUT
    if metric in SCHEDULED:
        return SCHEDULED[metric]
    if metric.startswith(("train_", "val_")):
        return LOSS
    return Unit(metric, "as reported", False)


def metric_groups(columns: list[str]) -> dict[str, list[str]]:
    """The epoch metrics sorted into the panels of the Job page (empty groups left out), each of one unit.

    Accuracy: train and val accuracy side by side (val_accuracy, train_accuracy, the family's other
    accuracies); Per-scale accuracy: RA-CNN's val_accuracy_scale{s} and MG-CNN's val_accuracy_level{v};
    Attention score: attention_iou and the per-scale/level box IoUs; Training / Validation loss terms:
    train_* and val_* losses (train_loss, val_cls_scale1, ...); then one panel per other unit
    (throughput, the baseline's error) and one per metric of no known unit.
    """
    cols = [c for c in columns if c not in KEYS]
    per_part = [c for c in cols if _PER_PART.match(c)]
    accuracy = sorted((c for c in cols if unit(c) is ACCURACY and c not in per_part),
                      key=lambda c: (c.removeprefix("train_").removeprefix("val_"), not c.startswith("val_")))
    attention = [c for c in cols if unit(c) is IOU]
    losses = [c for c in cols if unit(c) is LOSS]
    groups = {"Accuracy": accuracy, "Per-scale accuracy": per_part, "Attention score": attention,
              "Training loss terms": [c for c in losses if c.startswith("train_")],
              "Validation loss terms": [c for c in losses if c.startswith("val_")],
              "Throughput": [c for c in cols if unit(c) is THROUGHPUT],
              "Baseline error": [c for c in cols if unit(c) is ERROR]}
    placed = {c for g in groups.values() for c in g}
    groups |= {c: [c] for c in cols if c not in placed}
    return {k: v for k, v in groups.items() if v}


@dataclass(frozen=True)
class Panel:
    """One chart of the Job page: its title, its metrics and the unit they share."""

    title: str
    metrics: list[str]
    unit: Unit


def panels(epochs: pd.DataFrame) -> list[Panel]:
    """metric_groups as charts: a group of an unbounded unit is split where its metrics' magnitudes (their
    largest |value|) differ by more than SCALE_FACTOR, so no metric is drawn flat beside a bigger one."""
    out = []
    for title, metrics in metric_groups(list(epochs.columns)).items():
        u = unit(metrics[0])
        if u.bounded or len(metrics) == 1:
            out.append(Panel(title, metrics, u))
            continue
        size = {m: float(epochs[m].abs().max()) if epochs[m].notna().any() else 0.0 for m in metrics}
        ordered = sorted(metrics, key=lambda m: -size[m])
        parts: list[list[str]] = []
        for m in ordered:
            if parts and size[m] * SCALE_FACTOR >= size[parts[-1][0]]:
                parts[-1].append(m)
            else:
                parts.append([m])
        for i, part in enumerate(parts):
            keep = [m for m in metrics if m in part]  # the group's own order within a chart
            out.append(Panel(title if len(parts) == 1 else f"{title} ({i + 1} of {len(parts)}, by scale)", keep, u))
    return out


def column_order(columns: list[str]) -> list[str]:
    """The epoch table's columns: trial, epoch, step, then the metrics in the order of the panels."""
    metrics = [m for g in metric_groups(columns).values() for m in g]
    return [c for c in KEYS if c in columns] + metrics


# Colours for series told apart by colour (metrics, trials): the theme's blues would give neighbours
# nearly the same shade.
SCHEME = "tableau10"


def y_axis(title: str) -> alt.Axis:
    """A y-axis titled horizontally above it: a vertical title longer than the plot ("val_accuracy
    (fraction right)" on a 240 px chart) would push the chart's own title out of view."""
    return alt.Axis(title=title, titleAngle=0, titleAlign="left", titleAnchor="end", titleBaseline="bottom",
                    titleX=0, titleY=-6, format=",.3~r")  # 2,500 and 0.156, never 2.5e+3


def long_form(epochs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """(trial, epoch, metric, value) rows of the given metrics, NaNs dropped."""
    keep = [m for m in metrics if m in epochs]
    if epochs.empty or not keep:
        return pd.DataFrame(columns=["trial", "epoch", "metric", "value"])
    df = epochs[["trial", "epoch", *keep]].melt(id_vars=["trial", "epoch"], var_name="metric", value_name="value")
    return df.dropna(subset=["value"])


# Marks told apart without colour (a tune job's colours are its trials): filled shapes and dashes.
SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down", "wedge", "stroke"]
DASHES = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3], [10, 5], [1, 3], [4, 4], [12, 2]]


def curves(epochs: pd.DataFrame, metrics: list[str], title: str, axis: str | None = None) -> alt.Chart:
    """Metric vs epoch, the y-axis titled `axis`, by default the metrics' unit, or the metric and its unit
    when there is one (a tune job's legend shows trials, not metrics). A train job: one colour per metric.
    A tune job: one colour per trial and, with several metrics, each metric its own point shape and dash,
    both in the legend (its symbols would otherwise all be the same black dot)."""
    df = long_form(epochs, metrics)
    tuned = df["trial"].astype(str).str.len().gt(0).any() if not df.empty else False
    shown = [m for m in metrics if m in set(df["metric"])] or metrics
    base = alt.Chart(df, title=title).mark_line(point=alt.OverlayMarkDef(filled=True, size=50)).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d"), title="epoch"),
        y=alt.Y("value:Q", axis=y_axis(axis or (unit(shown[0]).of(shown[0]) if len(shown) == 1 else unit(shown[0]).axis)),
                scale=alt.Scale(zero=False)),
        tooltip=["trial", "epoch", "metric", alt.Tooltip("value:Q", format=".4f")])
    if not tuned:
        return base.encode(color=alt.Color("metric:N", sort=shown, title="metric",
                                           scale=alt.Scale(scheme=SCHEME))).properties(height=280)
    chart = base.encode(color=alt.Color("trial:N", title="trial", scale=alt.Scale(scheme=SCHEME)))
    if len(shown) > 1:
        legend = alt.Legend(title="metric", symbolType="stroke", symbolStrokeWidth=2, symbolSize=400)
        chart = chart.encode(
            shape=alt.Shape("metric:N", sort=shown, scale=alt.Scale(domain=shown, range=SHAPES[:len(shown)]),
                            legend=alt.Legend(title="metric")),
            strokeDash=alt.StrokeDash("metric:N", sort=shown, legend=legend,
                                      scale=alt.Scale(domain=shown, range=DASHES[:len(shown)])))
    return chart.properties(height=280)


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
        x=x, y=alt.Y("y:Q", axis=y_axis(unit(metric).of(metric)), scale=alt.Scale(zero=False)),
        size=alt.condition("datum.best", alt.value(220), alt.value(70)),
        color=alt.condition("datum.best", alt.value("#d55e00"), alt.value("#0072b2")),
        tooltip=["trial", alt.Tooltip("x", title="value"), alt.Tooltip("y:Q", title=metric, format=".4f")])


def param_scatter(rows: pd.DataFrame, param: str, metric: str, best: str) -> alt.Chart:
    """A searched hyperparameter against the metric, one point per trial, the best trial larger and orange."""
    df = _xy(rows, param, metric, best)
    name = param.removeprefix(PARAM_PREFIX)
    numeric = pd.api.types.is_numeric_dtype(df["x"])
    log = numeric and name.endswith(("lr", "weight_decay")) and bool((df["x"] > 0).all())
    integer = pd.api.types.is_integer_dtype(df["x"])
    x = alt.X(f"x:{'Q' if numeric else 'N'}", title=name,
              axis=alt.Axis(tickMinStep=1, format="d") if integer else alt.Axis(format=",.3~r") if numeric else alt.Axis(),
              scale=alt.Scale(type="log", padding=16) if log else alt.Scale(zero=False, padding=16))
    return _points(df, x, metric).properties(title=f"{name} vs {metric}", height=280)


GLIMPSE_KEYS = (f"{PARAM_PREFIX}model.num_glimpses", f"{PARAM_PREFIX}model.glimpses_per_label")


def budget_chart(rows: pd.DataFrame, metric: str, best: str) -> alt.Chart | None:
    """Accuracy against the glimpse budget (RAM: glimpses per image; DRAM: glimpses per digit): each
    trial, and the mean per budget as a line. None when the search did not vary a glimpse count."""
    key = next((k for k in GLIMPSE_KEYS if k in rows and rows[k].notna().any()), None)
    if key is None or metric not in rows:
        return None
    df = _xy(rows, key, metric, best)
    x = alt.X("x:Q", title="glimpses per image" if key.endswith("num_glimpses") else "glimpses per digit",
              axis=alt.Axis(tickMinStep=1, format="d"), scale=alt.Scale(zero=False, padding=16))
    mean = alt.Chart(df).mark_line(color="#999999").encode(x=x, y=alt.Y("mean(y):Q", axis=y_axis(unit(metric).of(metric))))
    return alt.layer(mean, _points(df, x, metric)).properties(title=f"{metric} vs glimpse budget", height=280)
