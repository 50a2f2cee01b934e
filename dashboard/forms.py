"""The submit form: widget groups that return the user's choices, and the pure spec they build.

Which model fields the form offers follows the model's family (glimpse settings for RAM/DRAM, scales and
margin for RA-CNN, the hierarchy for MG-CNN). A field left empty keeps the model's default (or the value
the dataset implies, such as image size and classes): the service fills those in and validates, and
its message (naming the field) is shown beside the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
import yaml


@dataclass(frozen=True)
class Field:
    name: str  # model config field, or "optim.<field>" for a family's training knob
    label: str
    type: str  # "int" | "float" | "choice" | "ints" (a comma-separated list of integers)
    help: str = ""
    choices: tuple[str, ...] = ()


_GLIMPSE = [
    Field("patch_size", "Retina patch size (px)", "int", "side of the finest retina patch"),
    Field("num_scales", "Retina scales", "int", "patches per glimpse, each scale_factor times the last"),
    Field("scale_factor", "Scale factor", "float", "size ratio between successive retina patches"),
    Field("location_std", "Location std", "float", "std of the Gaussian location policy (in [-1, 1] units)"),
]
FAMILY_FIELDS: dict[str, list[Field]] = {
    "ram": [Field("num_glimpses", "Glimpses", "int", "glimpses per image (the glimpse budget)"), *_GLIMPSE,
            Field("core", "Core network", "choice", "recurrent core", ("rnn", "lstm"))],
    "dram": [Field("glimpses_per_label", "Glimpses per digit", "int", "glimpses spent on each output label"),
             *_GLIMPSE, Field("max_digits", "Max digits", "int", "longest label sequence")],
    "racnn": [Field("num_scales", "Scales", "int", "scales (the first sees the whole image)"),
              Field("scale_sizes", "Scale input sizes (px)", "ints", "one input side per scale, e.g. 32, 32"),
              Field("margin", "Ranking margin", "float", "pairwise ranking loss margin between scales"),
              Field("mask_steepness", "Mask steepness", "float", "sharpness of the differentiable crop"),
              Field("init_half_side", "Initial half side", "float", "APN box half side at initialisation (fraction)"),
              Field("optim.alternate_every", "Alternate every (steps)", "int", "steps between classifier/APN phases"),
              Field("optim.attention_init_steps", "APN init steps", "int", "APN warm-up steps before alternating")],
    "mgcnn": [Field("level_classes", "Hierarchy: classes per level", "ints",
                    "coarse → fine, e.g. 3, 10; empty = the dataset's hierarchy"),
              Field("energy_threshold", "Energy threshold", "float", "fraction of mean activation kept as region"),
              Field("min_region", "Min region", "float", "smallest region side (fraction of the image)"),
              Field("region_size", "Region input size (px)", "int", "side each region is zoomed to")],
}
# Keys a tune search may vary, per family (model.* are model fields, the rest optim fields).
TUNE_KEYS: dict[str, list[str]] = {
    family: [f"model.{f.name}" if "." not in f.name else f.name for f in fields if f.type != "ints"]
    + ["lr", "optim.weight_decay", "optim.batch_size"]
    for family, fields in FAMILY_FIELDS.items()
}
SAMPLERS = ["choice", "grid", "uniform", "loguniform", "randint"]
FAMILIES = list(FAMILY_FIELDS)


def parse_ints(text: str, where: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ValueError(f"{where}: must be integers separated by commas, got {text!r}") from None


def _scalar(text: str) -> Any:
    """'4' -> 4, '1e-3' -> 0.001, 'true' -> True, anything else stays a string (YAML 1.1 would keep
    '1e-3' a string)."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_args(text: str, where: str) -> list[Any]:
    """'4, 6, 8' or '1e-4, 1e-2' or 'rnn, lstm' as a list of numbers, booleans or strings."""
    values = [_scalar(v.strip().strip("'\"")) for v in text.strip().strip("[]").split(",") if v.strip()]
    if not values:
        raise ValueError(f"{where}: give at least one value")
    return values


def search_params(rows: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    """The search-space rows of the form ({key, sampler, values}) as tune.params."""
    out = {}
    for i, r in enumerate(rows):
        key = (r.get("key") or "").strip()
        if not key:
            continue
        sampler = r.get("sampler") or "choice"
        out[key] = {sampler: parse_args(str(r.get("values") or ""), f"tune.params.{key} (row {i + 1})")}
    return out


def build_spec(*, kind: str, model: str, overrides: dict[str, Any], data: dict[str, Any], optim: dict[str, Any],
               scaling: dict[str, Any], tune: dict[str, Any] | None = None, storage_path: str = "") -> dict[str, Any]:
    """The spec dict the form describes: overrides as parse_overrides returns them (fields named `optim.X`
    go to optim), tune with the search rows ({key, sampler, values}) as its params. ValueError names the
    field the form cannot parse."""
    model_over = {k: v for k, v in overrides.items() if "." not in k and v is not None}
    optim = {**optim, **{k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("optim.") and v is not None}}
    spec: dict[str, Any] = {"kind": kind, "model": {"name": model, "overrides": model_over}, "data": data,
                            "optim": optim, "scaling": scaling}
    if storage_path:
        spec["storage_path"] = storage_path
    if kind == "tune":
        tune = dict(tune or {})
        tune["params"] = search_params(tune.pop("rows", None) or []) | tune.get("params", {})
        spec["tune"] = tune
    return spec


# ----------------------------------------------------------------------------------- widget groups


def model_ui(models: list[dict[str, Any]], recent: list[str] = (), key: str = "submit") -> tuple[str, dict[str, Any]]:
    """(kind, model) chosen above the form, so that the form's fields follow the model's family.
    `models` as the service lists them; the `recent` jobs' models come first."""
    c1, c2 = st.columns([1, 3])
    kind = c1.radio("Kind", ["train", "tune"], horizontal=True, key=f"{key}_kind")
    by_name = {m["name"]: m for m in models}
    names = [n for n in dict.fromkeys(recent) if n in by_name] + sorted(set(by_name) - set(recent))
    name = c2.selectbox("Model", names, key=f"{key}_model", format_func=lambda n: f"{n} ({by_name[n]['family']})",
                        help="a registered variant, as the job service lists them")
    return kind, by_name[name]


def _placeholder(f: Field, default: Any) -> str:
    if f.name == "level_classes":
        return "the dataset's hierarchy"
    if isinstance(default, list | tuple):
        return ", ".join(map(str, default))
    return "default" if default is None else f"{default:g}" if isinstance(default, float) else str(default)


def family_ui(family: str, defaults: dict[str, Any], key: str = "submit") -> dict[str, Any]:
    """The family's fields that the variant has, its defaults as placeholders; empty ones are left out
    (the default applies)."""
    fields = [f for f in FAMILY_FIELDS.get(family, []) if f.name in defaults or f.name.startswith("optim.")]
    if not fields:
        st.caption("No family-specific fields for this model: its defaults apply (or use the YAML tab).")
        return {}
    st.markdown(f"**{family.upper()} settings** · empty = the model's default (shown in grey)")
    out: dict[str, Any] = {}
    cols = st.columns(3)
    for i, f in enumerate(fields):
        col = cols[i % 3]
        k = f"{key}_{family}_{f.name}"
        hint = _placeholder(f, defaults.get(f.name))
        if f.type == "int":
            out[f.name] = col.number_input(f.label, min_value=0, step=1, value=None, help=f.help, key=k,
                                           placeholder=hint)
        elif f.type == "float":
            out[f.name] = col.number_input(f.label, min_value=0.0, value=None, format="%g", help=f.help, key=k,
                                           placeholder=hint)
        elif f.type == "choice":
            v = col.selectbox(f.label, [f"default ({hint})", *f.choices], help=f.help, key=k)
            out[f.name] = None if v.startswith("default") else v
        else:
            text = col.text_input(f.label, help=f.help, key=k, placeholder=hint)
            out[f.name] = text.strip() or None
    return {k: v for k, v in out.items() if v is not None}


def parse_overrides(family: str, raw: dict[str, Any]) -> dict[str, Any]:
    """family_ui's answers as typed overrides (lists of integers parsed; ValueError names the field)."""
    types = {f.name: f.type for f in FAMILY_FIELDS.get(family, [])}
    out = {}
    for name, v in raw.items():
        if types.get(name) == "ints":
            v = parse_ints(v, f"model.{name}")
        elif types.get(name) == "int":
            v = int(v)
        out[name] = v
    return out


def training_ui(key: str = "submit", data_paths: list[str] = ()) -> tuple[dict, dict, dict, str]:
    """(data, optim, scaling, storage_path) sections."""
    st.markdown("**Data and training**")
    c1, c2 = st.columns([3, 2])
    path = c1.text_input("Dataset path", value=data_paths[0] if data_paths else "", key=f"{key}_data_path",
                         help="a directory written by `foveate data build` (on the cluster's shared storage), or s3://…")
    storage = c2.text_input("Storage path", key=f"{key}_storage", placeholder="the service's default",
                            help="where run outputs go; empty = the service's default")
    c = st.columns(4)
    epochs = c[0].number_input("Epochs", min_value=1, value=5, step=1, key=f"{key}_epochs")
    batch = c[1].number_input("Batch size", min_value=1, value=64, step=1, key=f"{key}_batch")
    lr = c[2].number_input("Learning rate", min_value=0.0, value=1e-3, format="%g", key=f"{key}_lr")
    probes = c[3].number_input("Probe images", min_value=0, value=16, step=1, key=f"{key}_probes",
                               help="validation images whose attention is recorded every epoch")
    c = st.columns(4)
    max_train = c[0].number_input("Max train samples", min_value=0, value=0, step=100, key=f"{key}_max_train",
                                  help="0 = all")
    workers = c[1].number_input("Workers", min_value=0, value=2, step=1, key=f"{key}_workers",
                                help="Ray Train workers (0 = train in the job's driver)")
    cpus = c[2].number_input("CPUs per worker", min_value=0.1, value=1.0, step=0.5, key=f"{key}_cpus")
    gpu = c[3].checkbox("GPU per worker", key=f"{key}_gpu")
    c = st.columns(4)
    hflip = c[0].checkbox("Mirror images", key=f"{key}_hflip",
                          help="augmentation: mirror training images at random (refused for digit sequences)")
    shift = c[1].number_input("Max shift (px)", min_value=0, value=0, step=1, key=f"{key}_shift",
                              help="augmentation: shift training images by up to this many pixels")
    crop = c[2].number_input("Min crop", min_value=0.1, max_value=1.0, value=1.0, step=0.05, key=f"{key}_crop",
                             help="augmentation: zoom onto a random window of at least this fraction of the side (1 = off)")
    data = {"path": path.strip(), "probe_count": int(probes)}
    if max_train:
        data["max_train_samples"] = int(max_train)
    if hflip:
        data["hflip"] = True
    if shift:
        data["max_shift"] = int(shift)
    if crop < 1:
        data["min_crop"] = float(crop)
    optim = {"epochs": int(epochs), "batch_size": int(batch), "lr": float(lr)}
    scaling = {"num_workers": int(workers), "cpus_per_worker": float(cpus), "use_gpu": bool(gpu)}
    return data, optim, scaling, storage.strip()


def tune_ui(family: str, key: str = "submit") -> dict[str, Any]:
    """The search: trials, metric, scheduler and the search space rows."""
    st.markdown("**Search**")
    c = st.columns([2, 3, 2, 2, 2])
    trials = c[0].number_input("Trials", min_value=1, value=4, step=1, key=f"{key}_trials",
                               help="samples of the space (with grid search: repeats of the grid)")
    metric = c[1].selectbox("Metric", ["val_accuracy", "attention_iou", "val_loss"], key=f"{key}_metric")
    mode = c[2].selectbox("Mode", ["max", "min"], index=1 if metric.endswith("loss") else 0, key=f"{key}_mode")
    scheduler = c[3].selectbox("Scheduler", ["asha", "fifo"], key=f"{key}_scheduler")
    search = c[4].selectbox("Search", ["random", "grid", "optuna"], key=f"{key}_search")
    space = st.radio("Start from", ["default", "none"], horizontal=True, key=f"{key}_space",
                     format_func=lambda s: {"default": f"the {family or 'family'}'s default space",
                                            "none": "an empty space"}[s],
                     help="rows below add to or replace keys of that space")
    keys = TUNE_KEYS.get(family, ["lr"])
    rows = st.data_editor(
        pd.DataFrame({"key": pd.Series(dtype=str), "sampler": pd.Series(dtype=str), "values": pd.Series(dtype=str)}),
        num_rows="dynamic", key=f"{key}_space_rows_{family}", width="stretch",
        column_config={
            "key": st.column_config.SelectboxColumn("Parameter", options=keys, required=True,
                                                    help="model.FIELD or an optim field"),
            "sampler": st.column_config.SelectboxColumn("Sampler", options=SAMPLERS, default="choice"),
            "values": st.column_config.TextColumn("Values", help="choices '4, 6, 8' or bounds '1e-4, 1e-2'"),
        })
    return {"num_trials": int(trials), "metric": metric, "mode": mode, "scheduler": scheduler, "search": search,
            "space": space, "rows": rows.to_dict("records")}


def spec_yaml(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)
