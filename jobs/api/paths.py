"""The path policy: what a user's path or URI means, in one place for every caller.

A spec names its dataset (`data.path`) and its outputs (`storage_path`) as a local path or a URI
(`s3://bucket/x`, `gs://...`, `file:///...`). Local paths are resolved where the user wrote them (the
CLI, the client), with `~` expanded, before the spec travels to machines with other working directories.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_uri(path: str) -> bool:
    """Whether `path` names a scheme (`s3://...`) rather than a local file."""
    return "://" in path


def absolute(path: str, base: str | os.PathLike | None = None) -> str:
    """A local path made absolute against `base` (default: the current directory), `~` expanded and
    `..` resolved; a URI or an empty string unchanged."""
    if not path or is_uri(path):
        return path
    return str((Path(base or Path.cwd()) / Path(path).expanduser()).resolve())
