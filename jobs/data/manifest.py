"""A dataset's manifest.json, read without torch: what the job service and the spec checks need to know
of a dataset (its splits, image size, classes) before anything is trained. See store.py for the layout."""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow.fs as pafs

from jobs.api import paths

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
_MANIFEST_KEYS = ("schema_version", "image_size", "class_names", "max_boxes", "counts", "shards")


def resolve(path_or_uri: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or a URI such as file://, s3:// or gs://, as the
    path policy reads it (jobs.api.paths.filesystem: the same `~` and schemes as run storage)."""
    return paths.filesystem(path_or_uri)


def read_manifest(path_or_uri: str | os.PathLike) -> dict[str, Any]:
    """The dataset's manifest.json, checked for the keys readers need."""
    fs, root = resolve(path_or_uri)
    where = f"{root}/{MANIFEST}"
    if not fs.get_file_info(where).is_file:
        raise FileNotFoundError(f"{where}: not found (not a Foveate dataset, or its build did not finish)")
    with fs.open_input_stream(where) as f:
        try:
            manifest = json.loads(f.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{where}: not valid JSON ({exc})") from None
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"{where}: schema_version {manifest['schema_version']}, this reader knows {SCHEMA_VERSION}"
        )
    return manifest
