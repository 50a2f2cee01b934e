"""`foveate cluster up | down | status`: a local Ray head for the job service (see cluster/local.py)."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="start, stop or inspect the local Ray head")
    csub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    up = csub.add_parser("up", help="start a local Ray head (token auth on) that outlives this command")
    up.add_argument("--num-cpus", type=int, default=None, help="logical CPUs (default: the machine's)")
    up.add_argument("--num-gpus", type=int, default=None, help="GPUs (default: detected)")
    down = csub.add_parser("down", help="stop the local Ray head and every job running on it")
    status = csub.add_parser("status", help="the local head's address and every node's resources")
    join = csub.add_parser("join", help="start one more Ray node on this machine, joined to the local head "
                                        "(on other machines: `ray start --address HEAD:PORT` with the head's token)")
    join.add_argument("name", help="the node's name (its record and log under DIR/nodes/)")
    join.add_argument("--num-cpus", type=int, required=True, help="its logical CPUs")
    join.add_argument("--resources", default="{}", help='custom resources as JSON, e.g. \'{"node2": 1}\'')
    leave = csub.add_parser("leave", help="stop a node started with `join`")
    leave.add_argument("name")
    for q in (up, down, status, join, leave):
        q.add_argument("--dir", default=None, help="state directory (env FOVEATE_CLUSTER_DIR, default ~/.foveate/cluster)")
    up.set_defaults(func=_up)
    down.set_defaults(func=_down)
    status.set_defaults(func=_status)
    join.set_defaults(func=_join)
    leave.set_defaults(func=_leave)


def _join(args: argparse.Namespace) -> int:
    import json

    from cluster import local, nodes

    head = local.status(args.dir)
    if head is None:
        print("no local Ray head running (start one with `foveate cluster up`)")
        return 1
    try:
        resources = json.loads(args.resources)
        if not isinstance(resources, dict) or not all(isinstance(v, int | float) for v in resources.values()):
            raise ValueError("not an object of numbers")
    except ValueError as exc:
        print(f"--resources: a JSON object of numbers, e.g. '{{\"node2\": 1}}' ({exc})")
        return 2
    node = nodes.join(head.gcs_address, head.token_path, args.name, num_cpus=args.num_cpus, resources=resources,
                      state_dir=args.dir)
    print(f"node {node.name} joined {node.head} (pid {node.pid}, {node.num_cpus} CPUs, resources {node.resources}); "
          f"log {node.log_path}")
    return 0


def _leave(args: argparse.Namespace) -> int:
    from cluster import nodes

    print(f"node {args.name} stopped" if nodes.leave(args.name, args.dir) else f"no node {args.name} was running")
    return 0


def _up(args: argparse.Namespace) -> int:
    from cluster import local

    already = local.status(args.dir)
    head = local.up(args.dir, num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    print(f"Ray head {'already running' if already else 'started'} (pid {head.pid})\n"
          f"  dashboard / Jobs API: {head.dashboard_url}\n  GCS address: {head.gcs_address}\n"
          f"  auth token file: {head.token_path}\n  logs: {head.log_path}, {head.temp_dir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from cluster import local

    print("Ray head stopped" if local.down(args.dir) else "no local Ray head was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from cluster import local
    from cluster.jobs_api import ClusterUnavailable, RayJobsAPI

    head = local.status(args.dir)
    if head is None:
        print("no local Ray head running (start one with `foveate cluster up`)")
        return 1
    print(f"Ray head pid {head.pid}: dashboard {head.dashboard_url}, GCS {head.gcs_address}")
    try:
        snap = RayJobsAPI(head.dashboard_url, head.token()).describe()
    except ClusterUnavailable as exc:
        print(f"  not answering: {exc}")
        return 1
    print(f"  Ray {snap.ray_version}: {len(snap.nodes)} node(s), {snap.cpus:g} CPUs, {snap.gpus:g} GPUs")
    for n in snap.nodes:
        print(f"  {n.node_id[:12]} {n.ip:<15} {'head' if n.is_head else 'worker'} {'alive' if n.alive else 'dead'}"
              f"  CPU {n.cpus_used:g}/{n.cpus:g}  GPU {n.gpus_used:g}/{n.gpus:g}"
              + "".join(f"  {k}={v:g}" for k, v in sorted(n.resources.items())))
    return 0
