"""Load on the job service: many concurrent clients calling GetJob, ListJobs, validation-only
SubmitJob and the gRPC health check against a real server on localhost for a bounded time.

    .venv/bin/python bench/service_load.py --seconds 20 --procs 2 --threads 8
    .venv/bin/python bench/service_load.py --seconds 20 --watch-streams 100   # with 100 WatchJobs held open
    .venv/bin/python bench/service_load.py --procs 2 --threads 25 --seed-jobs 1000 --calls GetJob,ListJobs
    .venv/bin/python bench/service_load.py --procs 2 --threads 25 --seed-jobs 1000 --calls GetJob,ListJobs --rate 1000

Starts a local Ray head and `foveate serve` (token on, queue paused with --max-running 0 so the seeded
jobs never run), seeds jobs, then runs procs x threads clients and prints requests per second, p50/p99
latency per call and errors (which must be zero). Closed loop (the default), each client calls again as
soon as it is answered, so the figure is the server's capacity and, by Little's law, mean latency =
clients / throughput: 50 clients can see a p50 under 25 ms only above ~2,000 calls/s. --rate offers a
fixed load instead (open loop, Poisson arrivals, latency counted from when each call was due): the
latency a service at that load gives its callers. Clients, server and Ray share this machine's cores. --server/--token target a running
service instead (then nothing is started). The dataset the specs name is a real one of 4 images per
split (validation reads its manifest), and no job is ever run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOKEN = "bench-token"


def _spec(data: str, out: str) -> dict:
    return {"model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 4}},
            "data": {"path": data, "probe_count": 4}, "optim": {"epochs": 1}, "scaling": {"num_workers": 1},
            "storage_path": out}


def _worker(address: str, token: str, ids: list[str], spec: dict, seconds: float, threads: int, seed: int, q,
            only: tuple[str, ...] = (), rate: float = 0.0) -> None:
    """`threads` clients calling for `seconds`. Closed loop (rate 0): each calls again as soon as it has
    its answer. Open loop: each client sends at `rate` calls/s on a Poisson schedule of its own, and a
    call's latency counts from when it was due, not when it was sent, so a slow answer that delays
    the next calls is charged to them too (no coordinated omission, as wrk2 measures)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from jobs.api.client import ClientError, FoveateClient

    results: list[tuple[str, float, str]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        mine = []
        due = time.perf_counter() + (rng.expovariate(rate) if rate else 0.0)
        with FoveateClient(address, token) as client:
            msg = client.spec_message(spec)
            health = health_pb2_grpc.HealthStub(client._channel)

            def check():
                try:
                    health.Check(health_pb2.HealthCheckRequest(), timeout=30)
                except grpc.RpcError as exc:
                    raise ClientError(exc.code(), exc.details() or "") from None

            calls = {
                "Health.Check": check,
                "GetJob": lambda: client.get(rng.choice(ids)),
                "ListJobs": lambda: client.list(page_size=20, owner=rng.choice(["", "ann", "bob"])),
                "SubmitJob(validate_only)": lambda: client.submit(msg, validate_only=True),
            }
            names = [n for n in calls if not only or n.split("(")[0] in only]
            while time.monotonic() < stop_at:
                name = rng.choice(names)
                if rate:
                    time.sleep(max(0.0, due - time.perf_counter()))
                    t0, due = due, due + rng.expovariate(rate)
                else:
                    t0 = time.perf_counter()
                err = ""
                try:
                    calls[name]()
                except ClientError as exc:
                    err = f"{exc.code.name}: {exc}"
                mine.append((name, time.perf_counter() - t0, err))
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put(results)


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else float("nan")


def _open_streams(client, ids: list[str], n: int) -> tuple[list, int]:
    """Open `n` WatchJob streams on queued jobs (each then waits, holding a server thread); returns the
    streams that were accepted and how many the server refused."""
    import grpc

    from jobs.proto.foveate.v1 import jobs_pb2 as pb

    streams, refused = [], 0
    for i in range(n):
        call = client._stub.WatchJob(pb.WatchJobRequest(job_id=ids[i % len(ids)]), metadata=client._metadata)
        try:
            next(call)  # the replayed QUEUED state: the stream is open and waiting
            streams.append(call)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            refused += 1
    return streams, refused


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--threads", type=int, default=8, help="client threads per process")
    ap.add_argument("--seed-jobs", type=int, default=200, help="jobs created before the load")
    ap.add_argument("--server", default=None, help="target a running service (host:port) instead")
    ap.add_argument("--token", default=None)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="open loop: calls/s offered by all clients together (default: closed loop, as fast as answered)")
    ap.add_argument("--calls", default="", help="comma-separated calls to make (default: all): GetJob,ListJobs,...")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--watch-streams", type=int, default=0,
                    help="WatchJob streams to hold open during the load (those past the server's limit are refused)")
    args = ap.parse_args()

    from cluster import local
    from jobs.api.client import FoveateClient

    tmp = Path(tempfile.mkdtemp(prefix="fvbench", dir="/tmp"))
    data = tmp / "data"
    from jobs.data import build_recipe, write_dataset

    write_dataset(str(data), {s: build_recipe("cluttered60", count=4, seed=0, split=s) for s in ("train", "test")},
                  {"recipe": "cluttered60", "seed": 0})
    spec = _spec(str(data), str(tmp / "out"))
    serve = None
    address, token = args.server, args.token
    try:
        if address is None:
            head = local.up(tmp / "head", num_cpus=4, temp_dir=str(tmp / "r"))
            port_file = tmp / "port"
            log = open(tmp / "serve.log", "w")  # noqa: SIM115  (held by the child for its life)
            serve = subprocess.Popen(
                [sys.executable, "-m", "jobs.cli", "serve", "--address", head.dashboard_url, "--ray-token-file",
                 head.token_path, "--db", str(tmp / "catalog.db"), "--port", "0", "--port-file", str(port_file),
                 "--token", TOKEN, "--max-running", "0", "--storage-root", str(tmp), "--data-root", str(tmp)],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
            while not port_file.exists():
                if serve.poll() is not None:
                    raise SystemExit(f"foveate serve exited; see {tmp / 'serve.log'}")
                time.sleep(0.2)
            address, token = f"127.0.0.1:{port_file.read_text()}", TOKEN
        with FoveateClient(address, token) as c:
            ids = [c.submit(spec, owner=random.choice(["ann", "bob"])).id for _ in range(args.seed_jobs)]
        print(f"server {address}: {len(ids)} jobs seeded; {args.procs} x {args.threads} clients for "
              f"{args.seconds:g} s, " + (f"open loop at {args.rate:g} calls/s" if args.rate else "closed loop"),
              flush=True)
        watcher = FoveateClient(address, token)
        streams, refused = _open_streams(watcher, ids, args.watch_streams)
        if args.watch_streams:
            print(f"{len(streams)} WatchJob streams held open, {refused} refused (RESOURCE_EXHAUSTED)", flush=True)

        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(address, token, ids, spec, args.seconds, args.threads, i, q,
                                                        tuple(filter(None, args.calls.split(","))),
                                                        args.rate / (args.procs * args.threads)))
                 for i in range(args.procs)]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        results = [r for _ in procs for r in q.get()]
        for p in procs:
            p.join()
        wall = time.monotonic() - t0
        for call in streams:
            call.cancel()
        watcher.close()
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=30)
            local.down(tmp / "head")
            shutil.rmtree(tmp, ignore_errors=True)

    figures = {"clients": args.procs * args.threads, "seconds": round(wall, 1), "offered_rps": args.rate, "calls": {},
               "watch_streams": {"asked": args.watch_streams, "open": len(streams), "refused": refused}}
    errors = [r for r in results if r[2]]
    print(f"\n{'call':<26} {'n':>7} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name in sorted({r[0] for r in results}) + ["all"]:
        rows = [r for r in results if name in ("all", r[0])]
        lat = [r[1] for r in rows if not r[2]]
        f = {"n": len(rows), "rps": round(len(rows) / args.seconds, 1), "p50_ms": round(_pct(lat, 50), 2),
             "p99_ms": round(_pct(lat, 99), 2), "errors": sum(1 for r in rows if r[2])}
        figures["calls"][name] = f
        print(f"{name:<26} {f['n']:>7} {f['rps']:>8} {f['p50_ms']:>8} {f['p99_ms']:>8} {f['errors']:>7}")
    for e in sorted({r[2] for r in errors})[:5]:
        print(f"error: {e}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
