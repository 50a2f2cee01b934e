"""`foveate serve`: the job service (gRPC server, catalog and dispatcher) on a local Ray head or a cluster.

Its command-line clients (`foveate submit | status | ...`) are in jobs/api/cli.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.api import paths
from jobs.api.errors import UserError

if TYPE_CHECKING:
    from jobs.service.job_service import ServiceConfig


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the job service (starts a local Ray head when no --address)")
    p.add_argument("--address", default=os.environ.get("FOVEATE_RAY_ADDRESS"),
                   help="Ray dashboard URL of an existing cluster, e.g. http://head:8265 (env FOVEATE_RAY_ADDRESS); "
                        "default: a local head of this machine (foveate cluster up)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (non-loopback needs --token)")
    p.add_argument("--port", type=int, default=50051, help="port to listen on (0 = a free one)")
    p.add_argument("--db", default=os.environ.get("FOVEATE_DB", "~/.foveate/catalog.db"),
                   help="SQLite catalog file (env FOVEATE_DB)")
    p.add_argument("--token", default=os.environ.get("FOVEATE_TOKEN"),
                   help="require 'authorization: Bearer TOKEN' on every call (env FOVEATE_TOKEN)")
    p.add_argument("--tls-cert", help="PEM certificate: serve TLS (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--storage-root", action="append", metavar="URI",
                   help="a directory or s3:// / gs:// prefix jobs may write under (repeatable); a spec with an "
                        f"empty storage_path gets the first (default: {paths.DEFAULT_STORAGE_ROOT})")
    p.add_argument("--data-root", action="append", metavar="URI",
                   help="a directory or URI jobs may read datasets under (repeatable; default: the current "
                        "directory and the storage roots)")
    p.add_argument("--max-running", type=int, default=2, help="jobs run at once; more wait as QUEUED")
    p.add_argument("--poll-interval", type=float, default=2.0, help="seconds between reconciles with Ray")
    p.add_argument("--export-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="stop a model export (ExportModel, foveate download) running longer than this")
    p.add_argument("--ray-token-file", help="Ray's auth token file (default: the local head's, then Ray's own)")
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs of the local head it starts")
    p.add_argument("--port-file", help="write the bound port here once serving (for scripts using --port 0)")
    p.set_defaults(func=_serve)


# ------------------------------------------------------------------------------------------ serve


def _prepare(args: argparse.Namespace) -> tuple[ServiceConfig, bytes | None, bytes | None]:
    """(ServiceConfig, TLS cert, TLS key) from the arguments, or UserError / SpecError naming the flag:
    everything `serve` can refuse is checked here, before it starts a Ray head that would outlive it."""
    from jobs.service.catalog import Catalog
    from jobs.service.job_service import ServiceConfig
    from jobs.service.server import check_listen

    try:
        check_listen(f"{args.host}:{args.port}", args.token, bool(args.tls_cert), bool(args.tls_key))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    pem = {}
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        try:
            pem[flag] = Path(paths.absolute(path, field=flag)).read_bytes() if path else None
        except OSError as exc:
            raise UserError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    storage = paths.roots("--storage-root", args.storage_root or [paths.DEFAULT_STORAGE_ROOT])
    data = paths.roots("--data-root", args.data_root) if args.data_root else None
    config = ServiceConfig(db_path=paths.absolute(args.db, field="--db"), storage_roots=storage, data_roots=data,
                           max_running=args.max_running, poll_interval=args.poll_interval,
                           export_timeout_s=args.export_timeout)
    try:
        Catalog(config.db_path).close()  # creates it on first use; a directory or a foreign file fails here
    except (OSError, sqlite3.Error) as exc:
        raise UserError(f"--db: cannot open {args.db} as the catalog: {exc}") from None
    return config, pem["--tls-cert"], pem["--tls-key"]


def _serve(args: argparse.Namespace) -> int:
    import logging

    from cluster import local
    from cluster.jobs_api import RayJobsAPI, ray_token
    from jobs.service.job_service import JobService
    from jobs.service.server import create_server

    config, cert, key = _prepare(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.address:
        address, token = args.address, ray_token(token_path=args.ray_token_file)
    else:
        head = local.up(num_cpus=args.num_cpus)
        address, token = head.dashboard_url, ray_token(token_path=args.ray_token_file or head.token_path)
        print(f"foveate serve: local Ray head at {address} (stop it with `foveate cluster down`)", flush=True)
    service = JobService(config, RayJobsAPI(address, token)).start()
    server, port = create_server(f"{args.host}:{args.port}", service, token=args.token, tls_cert=cert, tls_key=key)
    server.start()

    def shutdown(signum: int, frame: Any) -> None:
        server.stop(grace=5)  # health checks say NOT_SERVING while it drains

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"foveate serve: listening on {args.host}:{port} ({'TLS' if cert else 'plaintext'}"
          f"{', token required' if args.token else ''}); catalog {config.db_path}", flush=True)
    print(f"foveate serve: jobs write under {', '.join(config.storage_roots)}; "
          f"read data under {', '.join(config.data_roots)}", flush=True)
    server.wait_for_termination()
    service.stop()
    return 0
