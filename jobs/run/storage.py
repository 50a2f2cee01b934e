"""Run outputs on local disk or any pyarrow filesystem URI (s3://, gs://, file://), one API for both."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs.api import paths


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or URI, as the path policy reads it
    (jobs.api.paths.filesystem: `~` expanded, unserved schemes refused)."""
    return paths.filesystem(uri)


def uri_in(like: str, path: str) -> str:
    """`path` inside the filesystem of `like` (as Ray and pyarrow give it, scheme dropped: 'bucket/runs/x')
    as a URI of `like`'s scheme ('s3://bucket/runs/x'); unchanged for local storage or a full URI."""
    scheme = like.split("://", 1)[0] if "://" in like else ""
    if not scheme or scheme == "file" or "://" in path:
        return path
    return f"{scheme}://{path.lstrip('/')}"


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def write_json(uri: str, obj: Any) -> None:
    """Write `obj` as JSON, replacing the file whole (object stores have no append)."""
    fs, path = resolve(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(json.dumps(obj, default=float).encode())
    fs.move(tmp, path)


def read_json(uri: str, default: Any = None) -> Any:
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return default
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def write_table(uri: str, table: pa.Table) -> None:
    fs, path = resolve(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    tmp = path + ".tmp"
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, path)


def read_table(uri: str) -> pa.Table:
    fs, path = resolve(uri)
    return pq.read_table(path, filesystem=fs)


def list_files(uri: str, suffix: str = "") -> list[str]:
    """Full URIs/paths of the files directly under `uri` ending in `suffix`, sorted; [] if it is absent."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(suffix))
    return [join(uri, n) for n in names]


def exists(uri: str) -> bool:
    """Whether `uri` names a file."""
    fs, path = resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.File


def copy_file(src: str, dst: str) -> None:
    """Copy one file between any two places (local path or URI), replacing `dst` whole."""
    src_fs, src_path = resolve(src)
    dst_fs, dst_path = resolve(dst)
    dst_fs.create_dir(dst_path.rsplit("/", 1)[0], recursive=True)
    tmp = dst_path + ".tmp"
    pafs.copy_files(src_path, tmp, source_filesystem=src_fs, destination_filesystem=dst_fs)
    dst_fs.move(tmp, dst_path)
