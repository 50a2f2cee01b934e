"""The path policy: what a user's path or URI means and whether a service may use it, in one place.

A spec names its dataset (`data.path`) and its outputs (`storage_path`) as a local path or a URI.
Every caller (the spec, the client, the CLIs, the job service, run storage, the dataset store) asks here:

    absolute("~/runs", field="storage_path")    -> "/home/ann/runs"   (`~` and `~user` expanded)
    absolute("data/x", base="/work")            -> "/work/data/x"     (relative: against `base` or the cwd)
    absolute("file:///srv/d")                   -> "/srv/d"           (a file URI is a local path)
    absolute("S3://b/runs//x/")                 -> "s3://b/runs/x"    (a URI normalised, not resolved)
    absolute("hdfs://nn/x", field="data.path")  -> SpecError "data.path: scheme 'hdfs://' is not served; ..."
    filesystem("s3://b/runs")                   -> (pyarrow S3FileSystem, "b/runs")
    under_roots("storage_path", "/etc", ["/srv/runs"])  -> SpecError "storage_path: must lie under one of ..."

Local paths are resolved where the user wrote them (the CLI, the client) before the spec travels to
machines with other working directories and home directories. They are resolved through symlinks, so a
spec carries the very path its roots check saw, and a link under a root cannot lead outside it.

Errors are `jobs.api.spec.SpecError` (a ValueError) whose message starts with the field, so the gRPC
server answers INVALID_ARGUMENT and the CLIs print one line. Pure Python: pyarrow is imported only by
`filesystem`, since jobs.api stays light for the dashboard and the client.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

# Where a run's outputs go when its spec leaves storage_path empty: the CLI's and `foveate serve`'s default.
DEFAULT_STORAGE_ROOT = "~/.foveate/runs"
# The URI schemes Foveate serves, through pyarrow.fs; anything else (hdfs:// would start a JVM in the
# caller's thread, http:// has no directories) is refused by name.
SCHEMES = ("file", "s3", "gs")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SERVED = "a local path, file://, s3:// or gs://"


def _error(field: str, rule: str) -> ValueError:
    from jobs.api.spec import SpecError  # spec.py imports this module; the error type lives there

    return SpecError(f"{field}: {rule}")


def scheme(path: str) -> str:
    """The URI scheme of `path`, lower-case (`"s3"`), or "" for a local path."""
    m = _SCHEME.match(path)
    return m.group(1).lower() if m else ""


def is_uri(path: str) -> bool:
    """Whether `path` names a scheme (`s3://...`) rather than a local file."""
    return bool(scheme(path))


def expand_user(path: str, field: str = "path") -> str:
    """`path` with a leading `~` or `~user` replaced by that home directory; SpecError naming `field`
    when the user does not exist here (os.path.expanduser would leave it as a relative `~x` directory)."""
    if not path.startswith("~"):
        return path
    expanded = os.path.expanduser(path)
    if expanded.startswith("~"):
        user = path[1:].split("/", 1)[0]
        raise _error(field, f"{path}: no user {user!r} on this machine" if user
                     else f"{path}: this process has no home directory to expand '~' to")
    return expanded


def absolute(path: str, base: str | os.PathLike | None = None, *, field: str = "path") -> str:
    """`path` as every machine will read it, or SpecError naming `field`.

    Local: `~` expanded, joined to `base` (default: the current directory), `..` and symlinks resolved.
    `file://` URIs become local paths; s3:// and gs:// URIs are normalised (lower-case scheme, no empty,
    `.` or trailing components; `..` refused, since object stores would take it literally); other
    schemes are refused. An empty string stays empty (the caller's default applies).
    """
    if not path:
        return path
    if "\0" in path:
        raise _error(field, "must not contain a NUL byte")
    sch = scheme(path)
    if not sch:
        try:
            return str((Path(base or Path.cwd()) / expand_user(path, field)).resolve())
        except (OSError, RuntimeError) as exc:  # a symlink loop; a name too long for the filesystem
            raise _error(field, f"{path}: cannot be resolved: {exc}") from None
    if sch not in SCHEMES:
        raise _error(field, f"scheme '{sch}://' is not served; use {_SERVED} (got {path})")
    parts = urlsplit(path)
    if sch == "file":
        if parts.netloc not in ("", "localhost"):
            raise _error(field, f"{path}: a file:// URI names a path on this machine: file:///abs/path")
        return absolute(unquote(parts.path) or "/", field=field)
    if not parts.netloc:
        raise _error(field, f"{path}: names no bucket ({sch}://bucket/prefix)")
    components = [c for c in parts.path.split("/") if c not in ("", ".")]
    if ".." in components:
        raise _error(field, f"{path}: '..' is not allowed in a URI")
    query = f"?{parts.query}" if parts.query else ""
    return f"{sch}://{parts.netloc}{posixpath.join('/', *components) if components else ''}{query}"


def filesystem(path_or_uri: str | os.PathLike, *, field: str = "path") -> tuple[Any, str]:
    """(pyarrow FileSystem, path inside it) for a local path or a served URI, as `absolute` reads it:
    the one meaning of `~`, relative paths and schemes for run storage and datasets alike."""
    import pyarrow.fs as pafs

    path = absolute(os.fspath(path_or_uri), field=field)
    if not path:
        raise _error(field, "must name a directory or URI")
    if not is_uri(path):
        return pafs.LocalFileSystem(), path
    return pafs.FileSystem.from_uri(path)


def roots(field: str, values: Iterable[str]) -> tuple[str, ...]:
    """Allowed roots (`foveate serve --storage-root/--data-root`) made absolute once, at start, against
    the current directory; SpecError naming `field` for an empty list or a root that `absolute` refuses."""
    out = []
    for value in values:
        if not value:
            raise _error(field, "an empty root; give a directory or URI")
        out.append(absolute(value, field=field))
    if not out:
        raise _error(field, "give at least one directory or URI")
    return tuple(dict.fromkeys(out))


def _key(path: str) -> tuple[str, str, tuple, tuple[str, ...]]:
    """(scheme, bucket, query options, path components) of an `absolute` path, for prefix comparison."""
    if not is_uri(path):
        return "", "", (), Path(os.path.realpath(path)).parts
    parts = urlsplit(path)
    return parts.scheme, parts.netloc, tuple(sorted(parse_qsl(parts.query))), tuple(
        c for c in parts.path.split("/") if c)


def is_under(path: str, root: str) -> bool:
    """Whether `path` is `root` or lies inside it; both `absolute` already. Local paths are compared
    after realpath, URIs by scheme, bucket, options and prefix; always on whole components, so
    /data2 is not under /data and s3://b/runs-old is not under s3://b/runs."""
    p, r = _key(path), _key(root)
    return p[:3] == r[:3] and p[3][:len(r[3])] == r[3]


def under_roots(field: str, path: str, allowed: Iterable[str], *, base: str | os.PathLike | None = None) -> str:
    """`path` made absolute (see `absolute`) when it lies under one of `allowed`; otherwise SpecError
    naming `field` and the allowed roots. An empty `path` is refused: fill in the default before."""
    allowed = tuple(allowed)
    resolved = absolute(path, base, field=field)
    if not resolved:
        raise _error(field, "must name a directory or URI")
    if not any(is_under(resolved, absolute(root, field=field)) for root in allowed):
        raise _error(field, f"must lie under one of {', '.join(allowed) or '(no roots)'}; {path} does not"
                     + (f" (it resolves to {resolved})" if resolved != path else ""))
    return resolved


def absolute_spec_paths(d: dict[str, Any], base: str | os.PathLike | None = None) -> dict[str, Any]:
    """A plain spec dict (before validation) with `data.path` and `storage_path` made `absolute` against
    `base`, each error naming its field; values that are not strings go as they are (the spec refuses
    them by field), and a field left out stays out (the runner's default applies)."""
    def fix(value: Any, field: str) -> Any:
        return absolute(value, base, field=field) if isinstance(value, str) else value

    d = dict(d)
    if isinstance(d.get("data"), dict) and "path" in d["data"]:
        d["data"] = {**d["data"], "path": fix(d["data"]["path"], "data.path")}
    if "storage_path" in d:
        d["storage_path"] = fix(d["storage_path"], "storage_path")
    return d


def check_creatable_dir(field: str, path: str) -> None:
    """SpecError naming `field` when local `path` can never be a directory: its nearest existing part is
    a file (`/etc/passwd/x`); for a URI, when its store does not answer (endpoint, credentials) or its
    bucket does not exist, in one line, before a job is queued rather than in every worker's traceback."""
    if is_uri(path):
        check_bucket(field, path)
        return
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise _error(field, f"{p} is a file, not a directory; name a directory ({path} cannot be created)")


def check_bucket(field: str, uri: str) -> None:
    """SpecError naming `field` and `uri` when the object store cannot be reached or has no such bucket.
    Endpoint and credentials come as pyarrow (and Ray) take them: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION for s3:// (GOOGLE_APPLICATION_CREDENTIALS for gs://)."""
    import pyarrow.fs as pafs

    try:
        fs, inside = filesystem(uri, field=field)
        bucket = inside.split("/", 1)[0]
        found = fs.get_file_info(bucket).type != pafs.FileType.NotFound
    except OSError as exc:  # the endpoint refused, a name that does not resolve, bad credentials
        raise _error(field, f"cannot reach {uri}: {str(exc).splitlines()[0]}") from None
    if not found:
        raise _error(field, f"{uri}: no bucket '{bucket}' at this endpoint (create it first, or check "
                            "AWS_ENDPOINT_URL / the credentials)")
