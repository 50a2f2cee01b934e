"""The submit form: widget groups that return the user's choices, and the pure spec they build.

The spec's own fields (data, optim, scaling, storage, the search) are drawn from the spec's JSON schema
(`jobs.api.spec.spec_schema`): each widget's kind, label, default, bounds, choices and help come from its
field, so the form cannot drift from the spec; this file only says which fields to show, in which row.
Which model fields the form offers follows the model's family (glimpse settings for RAM/DRAM, scales and
margin for RA-CNN, the hierarchy for MG-CNN). A field left empty keeps the model's default (or the value
the dataset implies, such as image size and classes): the service fills those in and validates, and
its message (naming the field) is shown beside the form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from jobs.api.paths import absolute
from jobs.api.spec import SpecError, spec_schema

SCHEMA = spec_schema()
_JS_SAFE = 2**53 - 1  # the browser's number widgets hold no larger integer


def spec_field(path: str) -> dict[str, Any]:
    """The JSON schema of one spec field by dotted path ("optim.lr"): type, default, bounds, enum,
    title, description; sections' `$ref`s and `anyOf [..., null]` resolved."""
    node: dict[str, Any] = SCHEMA
    for part in path.split("."):
        node = _resolve(_resolve(node)["properties"][part])
    return node


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in node:
        node = next(n for n in node["anyOf"] if n.get("type") != "null")
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


@dataclass(frozen=True)
class Field:
    name: str  # model config field, or "optim.<field>" for a family's training knob
    label: str
    type: str  # "int" | "float" | "choice" | "ints" (a comma-separated list of integers)
    help: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None  # shown as the placeholder when the model's defaults do not name the field


def _spec_knob(path: str) -> Field:
    """A family's training knob (a spec field such as optim.alternate_every) described by the schema."""
    f = spec_field(path)
    return Field(path, f["title"], {"integer": "int", "number": "float"}[f["type"]], f.get("description", ""),
                 default=f.get("default"))


_GLIMPSE = [
    Field("patch_size", "Retina patch size (px)", "int", "side of the finest retina patch"),
    Field("num_scales", "Retina scales", "int", "patches per glimpse, each scale_factor times the last"),
    Field("scale_factor", "Scale factor", "float", "size ratio between successive retina patches"),
    Field("location_std", "Location std", "float", "std of the Gaussian location policy (in [-1, 1] units)"),
]
# What only a family that samples glimpse paths takes (jobs/run/checks.py refuses it for the others).
_SAMPLING = [_spec_knob("optim.train_samples"), _spec_knob("optim.location_std_end")]
FAMILY_FIELDS: dict[str, list[Field]] = {
    "ram": [Field("num_glimpses", "Glimpses", "int", "glimpses per image (the glimpse budget)"), *_GLIMPSE,
            Field("core", "Core network", "choice", "recurrent core", ("rnn", "lstm")), *_SAMPLING],
    "dram": [Field("glimpses_per_label", "Glimpses per digit", "int", "glimpses spent on each output label"),
             *_GLIMPSE, Field("max_digits", "Max digits", "int", "longest label sequence"), *_SAMPLING],
    "racnn": [Field("num_scales", "Scales", "int", "scales (the first sees the whole image)"),
              Field("scale_sizes", "Scale input sizes (px)", "ints", "one input side per scale, e.g. 32, 32"),
              Field("margin", "Ranking margin", "float", "pairwise ranking loss margin between scales"),
              Field("mask_steepness", "Mask steepness", "float", "sharpness of the differentiable crop"),
              Field("init_half_side", "Initial half side", "float", "APN box half side at initialisation (fraction)"),
              _spec_knob("optim.alternate_every"), _spec_knob("optim.attention_init_steps")],
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
# The spec fields the form shows, row by row (data.path and storage_path head the section); three a row
# leave each label its whole width in the form's column ("GPU per worker", not "GPU per wo…").
TRAINING_ROWS = [
    ["optim.epochs", "optim.batch_size", "optim.lr"],
    ["data.probe_count", "data.max_train_samples", "scaling.num_workers"],
    ["scaling.cpus_per_worker", "scaling.use_gpu", "data.hflip"],
    ["data.max_shift", "data.min_crop", "scaling.placement_strategy"],
    ["optim.schedule", "optim.lr_decay", "optim.min_lr"],
    ["optim.warmup_epochs", "optim.grad_clip", "optim.eval_samples"],
]
ROW_WIDTH = 3
TUNE_ROW = ["tune.num_trials", "tune.metric", "tune.mode", "tune.scheduler", "tune.search"]


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
        hint = _placeholder(f, defaults.get(f.name, f.default))
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


def spec_input(col: Any, path: str, key: str = "submit", value: Any = None, placeholder: str = "") -> Any:
    """One spec field's widget, built from its schema (enum: a select box; a string with known values:
    a select box that takes new ones; bool, int, number, string), starting at `value` or the field's
    default. Returns the user's value, typed as the spec wants it."""
    f = spec_field(path)
    label, help_, k = f["title"], f.get("description"), f"{key}_{path.replace('.', '_')}"
    value = f.get("default") if value is None else value
    if "enum" in f:
        return col.selectbox(label, f["enum"], index=f["enum"].index(value), key=k, help=help_)
    if "examples" in f:
        options = list(dict.fromkeys([value, *f["examples"]]))
        return col.selectbox(label, options, key=k, help=help_, accept_new_options=True)
    kind = f.get("type")
    if kind == "boolean":
        return col.checkbox(label, value=bool(value), key=k, help=help_)
    if kind == "integer":
        low = f["minimum"] if "minimum" in f else f["exclusiveMinimum"] + 1 if "exclusiveMinimum" in f else -_JS_SAFE
        high = min(f.get("maximum", _JS_SAFE), _JS_SAFE)
        return int(col.number_input(label, min_value=max(low, -_JS_SAFE), max_value=high, value=int(value), step=1,
                                    key=k, help=help_))
    if kind == "number":
        # An exclusive bound (lr > 0) is offered as inclusive: the service names the field if 0 is sent.
        low, high = f.get("minimum", f.get("exclusiveMinimum")), f.get("maximum")
        step = 10 ** math.floor(math.log10(abs(value))) / 10 if value else 0.01  # a tenth of its magnitude
        return float(col.number_input(label, min_value=None if low is None else float(low),
                                      max_value=None if high is None else float(high), value=float(value),
                                      step=step, format="%g", key=k, help=help_))
    return col.text_input(label, value=value or "", placeholder=placeholder, key=k, help=help_).strip()


def changed(values: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """{dotted path: value} as spec sections, leaving out the values equal to the schema's default (the
    service fills those in) except those in `keep`; top-level fields go under ""."""
    out: dict[str, dict[str, Any]] = {}
    for path, v in values.items():
        if path in keep or v != spec_field(path).get("default"):
            section, _, name = path.rpartition(".")
            out.setdefault(section, {})[name] = v
    return out


def training_ui(key: str = "submit", data_paths: list[str] = ()) -> tuple[dict, dict, dict, str]:
    """(data, optim, scaling, storage_path) sections: the dataset (the latest job's, when given), where
    outputs go, and TRAINING_ROWS."""
    st.markdown("**Data and training**")
    c1, c2 = st.columns([3, 2])
    values = {"data.path": spec_input(c1, "data.path", key, value=data_paths[0] if data_paths else None),
              "storage_path": spec_input(c2, "storage_path", key, placeholder="the service's default")}
    resolved_caption(values["data.path"], "data.path")
    resolved_caption(values["storage_path"], "storage_path")
    for row in TRAINING_ROWS:
        cols = st.columns(ROW_WIDTH)
        values |= {path: spec_input(col, path, key) for col, path in zip(cols, row)}
    sections = changed(values, keep=("data.path",))
    return sections["data"], sections.get("optim", {}), sections.get("scaling", {}), \
        sections.get("", {}).get("storage_path", "")


def resolved_caption(path: str, field: str) -> None:
    """Where a relative (or `~`) path of the form is resolved: here, where the dashboard runs, before the
    spec is sent (the client's rule, jobs.api.paths)."""
    try:
        there = absolute(path, field=field) if path else ""
    except SpecError as exc:
        st.caption(f":red[{exc}]")
        return
    if there and there != path:
        st.caption(f"`{field}` resolves here to `{there}`")


def tune_ui(family: str, key: str = "submit") -> dict[str, Any]:
    """The search: TUNE_ROW (trials, metric, mode, scheduler, search), the space to start from and the
    search space rows."""
    st.markdown("**Search**")
    c = st.columns([2, 3, 2, 2, 2])
    values: dict[str, Any] = {}
    for col, path in zip(c, TUNE_ROW):
        start = None
        if path == "tune.mode":  # a loss is minimised
            start = "min" if str(values.get("tune.metric", "")).endswith("loss") else None
        values[path] = spec_input(col, path, key, value=start)
    space = st.radio("Start from", ["default", "none"], horizontal=True, key=f"{key}_tune_space",
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
    return {**{p.split(".", 1)[1]: v for p, v in values.items()}, "space": space, "rows": rows.to_dict("records")}
