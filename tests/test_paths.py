"""The path policy (jobs/api/paths.py): what a user's path or URI means, which schemes are served, and
whether a path lies under a service's roots. Pure Python on the real filesystem; no Ray."""

from __future__ import annotations

import os
import pwd

import pytest

from jobs.api import paths
from jobs.api.client import absolute_paths
from jobs.api.spec import SpecError

HOME = os.path.realpath(os.path.expanduser("~"))
ME = pwd.getpwuid(os.getuid()).pw_name

pytest_plugins = ["s3_harness"]


# ------------------------------------------------------------------------------------------ meaning


def test_home_and_user_homes_are_expanded():
    assert paths.absolute("~/runs") == os.path.join(HOME, "runs")
    assert paths.absolute(f"~{ME}/runs") == os.path.join(os.path.realpath(pwd.getpwnam(ME).pw_dir), "runs")


def test_a_missing_user_names_the_field():
    with pytest.raises(SpecError, match=r"^storage_path: ~nosuchuser/x: no user 'nosuchuser'"):
        paths.absolute("~nosuchuser/x", field="storage_path")


def test_relative_paths_resolve_against_the_base_and_through_symlinks(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert paths.absolute("a/../b", base=tmp_path) == str(tmp_path / "b")
    assert paths.absolute("link/x", base=tmp_path) == str(tmp_path / "real" / "x")
    assert paths.absolute("") == ""  # empty: the caller's default applies


def test_uris_are_normalised_and_file_uris_are_local_paths(tmp_path):
    assert paths.absolute("S3://bucket//runs/./x/") == "s3://bucket/runs/x"
    assert paths.absolute("gs://bucket") == "gs://bucket"
    assert paths.absolute("s3://b/x?region=eu-west-1") == "s3://b/x?region=eu-west-1"
    assert paths.absolute(f"file://{tmp_path}/a%20b") == str(tmp_path / "a b")


@pytest.mark.parametrize("uri, rule", [
    ("hdfs://namenode/data", "scheme 'hdfs://' is not served; use a local path, file://, s3:// or gs://"),
    ("nonsense://x", "scheme 'nonsense://' is not served"),
    ("http://example.com/data", "scheme 'http://' is not served"),
    ("s3://bucket/runs/../secrets", "'..' is not allowed in a URI"),
    ("s3:///runs", "names no bucket"),
    ("file://otherhost/data", "a file:// URI names a path on this machine"),
    ("/data/\0x", "must not contain a NUL byte"),
])
def test_unserved_or_ambiguous_uris_are_refused_by_field(uri, rule):
    with pytest.raises(SpecError, match=r"^data\.path: ") as err:
        paths.absolute(uri, field="data.path")
    assert rule in str(err.value)


def test_run_storage_and_the_dataset_store_read_paths_alike(tmp_path, monkeypatch):
    """Both `resolve()`s are the policy's `filesystem`: `~` means the same home to both."""
    import pyarrow.fs as pafs

    from jobs.data import store
    from jobs.run import storage

    monkeypatch.chdir(tmp_path)
    for path in ("~/fv-x", "rel/x", f"file://{tmp_path}/x"):
        fs_run, p_run = storage.resolve(path)
        fs_data, p_data = store.resolve(path)
        assert isinstance(fs_run, pafs.LocalFileSystem) and isinstance(fs_data, pafs.LocalFileSystem)
        assert p_run == p_data == paths.absolute(path)
    assert storage.resolve("~/fv-x")[1] == os.path.join(HOME, "fv-x")
    # Refused by name before pyarrow would look for a JVM for HDFS.
    with pytest.raises(SpecError, match="scheme 'hdfs://' is not served"):
        store.resolve("hdfs://namenode/data")
    with pytest.raises(SpecError, match="scheme 'hdfs://' is not served"):
        storage.resolve("hdfs://namenode/runs")


# -------------------------------------------------------------------------------------------- roots


@pytest.mark.parametrize("path, root, inside", [
    ("/data/x", "/data", True),
    ("/data", "/data", True),
    ("/data2/x", "/data", False),  # component boundaries, not string prefixes
    ("/", "/data", False),
    ("s3://b/runs/x", "s3://b/runs", True),
    ("s3://b/runs-old/x", "s3://b/runs", False),
    ("s3://other/runs/x", "s3://b/runs", False),
    ("gs://b/runs/x", "s3://b/runs", False),
    ("s3://b/runs/x?endpoint_override=evil:9000", "s3://b/runs", False),  # another server entirely
    ("/b/runs/x", "s3://b/runs", False),
])
def test_is_under_compares_whole_components(path, root, inside):
    assert paths.is_under(paths.absolute(path), paths.absolute(root)) is inside


@pytest.mark.parametrize("path", ["/etc", "/", "/proc/self", "~", "../../..", "/etc/passwd", "/tmp/../etc"])
def test_paths_outside_the_roots_are_refused_naming_field_and_roots(tmp_path, path):
    root = str(tmp_path / "runs")
    with pytest.raises(SpecError) as err:
        paths.under_roots("storage_path", path, [root, "s3://bucket/runs"], base=tmp_path)
    assert str(err.value).startswith(f"storage_path: must lie under one of {root}, s3://bucket/runs; {path} does not")


def test_a_symlink_under_a_root_cannot_lead_outside_it(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "escape").symlink_to("/etc")
    with pytest.raises(SpecError, match="it resolves to /etc"):
        paths.under_roots("storage_path", str(root / "escape" / "job"), [str(root)])
    # A root that is itself a link admits paths through the link and through its target.
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    for path in (tmp_path / "alias" / "x", tmp_path / "real" / "x"):
        assert paths.under_roots("data.path", str(path), [str(tmp_path / "alias")]) == str(tmp_path / "real" / "x")


def test_roots_are_made_absolute_once_and_must_be_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.roots("--data-root", [".", "~/d", "S3://b/r/", "."]) == (
        str(tmp_path), os.path.join(HOME, "d"), "s3://b/r")
    with pytest.raises(SpecError, match="^--storage-root: give at least one"):
        paths.roots("--storage-root", [])
    with pytest.raises(SpecError, match="^--storage-root: scheme 'hdfs://' is not served"):
        paths.roots("--storage-root", ["hdfs://nn/runs"])


def test_a_file_in_the_way_of_a_directory_is_named(tmp_path, s3, monkeypatch):
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "f").write_text("x")
    paths.check_creatable_dir("storage_path", str(tmp_path / "new" / "deeper"))
    s3.bucket("bucket")
    paths.check_creatable_dir("storage_path", "s3://bucket/runs")  # an object store: its bucket answers
    with pytest.raises(SpecError, match=r"^storage_path: s3://nobucket/runs: no bucket 'nobucket'"):
        paths.check_creatable_dir("storage_path", "s3://nobucket/runs")
    with pytest.raises(SpecError, match=rf"^storage_path: {tmp_path / 'f'} is a file, not a directory"):
        paths.check_creatable_dir("storage_path", str(tmp_path / "f" / "job"))


# ------------------------------------------------------------------------------------- spec dicts


def test_the_client_resolves_spec_paths_where_the_user_wrote_them(tmp_path):
    d = absolute_paths({"data": {"path": "d"}, "storage_path": "~/out", "optim": {"epochs": 1}}, base=tmp_path)
    assert d == {"data": {"path": str(tmp_path / "d")}, "storage_path": os.path.join(HOME, "out"),
                 "optim": {"epochs": 1}}
    assert "storage_path" not in absolute_paths({"data": {"path": "/d"}})  # the server's default applies
    assert absolute_paths({"storage_path": 3})["storage_path"] == 3  # the spec refuses it by field
    with pytest.raises(SpecError, match=r"^data\.path: scheme 'hdfs://' is not served"):
        absolute_paths({"data": {"path": "hdfs://nn/d"}})
    with pytest.raises(SpecError, match="^storage_path: ~nosuchuser/x: no user"):
        absolute_paths({"storage_path": "~nosuchuser/x"})


def test_jobs_api_paths_stays_light():
    """The dashboard and the client import jobs.api: the policy must not pull in pyarrow or the spec."""
    import subprocess
    import sys

    code = ("import sys; import jobs.api.paths as p; p.absolute('~/x'); p.under_roots('f', '/a/b', ['/a']); "
            "print(sorted(m for m in ('pyarrow', 'jobs.api.spec') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
