"""A real S3 API for the tests: moto's server on 127.0.0.1, one per test session, started on first use.

Endpoint and credentials are given the way pyarrow, Ray and boto3 all read them, as environment variables
(`S3.env`); a test sets them with monkeypatch, a subprocess (a Ray node, the job service) gets them in its
environment. Buckets are made with boto3, as a user would with `aws s3 mb`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from cluster.connect import free_port


@dataclass
class S3:
    endpoint: str
    env: dict[str, str] = field(default_factory=dict)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                            region_name=self.env["AWS_DEFAULT_REGION"])

    def bucket(self, name: str) -> str:
        """Create bucket `name` (if absent); returns its URI."""
        c = self.client()
        if name not in {b["Name"] for b in c.list_buckets().get("Buckets", [])}:
            c.create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if server is None:
        pytest.fail("moto_server not installed: `pip install -e '.[test]'` (moto[server] is a test dependency)")
    port = free_port()
    with open(tmp_path_factory.mktemp("moto") / "moto.log", "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "foveate-test", "AWS_SECRET_ACCESS_KEY": "foveate-test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    store = S3(endpoint, env)
    deadline = time.monotonic() + 30
    while True:
        try:
            store.client().list_buckets()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on {endpoint}")
            time.sleep(0.2)
    yield store
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
