"""Regenerate the Python stubs of jobs/proto/foveate/v1/*.proto: `python -m jobs.proto.codegen`.

The generated `*_pb2*.py` files are committed, so installing Foveate needs no grpcio-tools. protoc names
imports after the proto's package path (`from foveate.v1 import spec_pb2`); they are rewritten to the
import path inside this package, so the descriptor keeps its clean name `foveate/v1/jobs.proto`
(what reflection clients see) while the modules live under `jobs.proto`.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (proto, has services): gRPC stubs only where there is a service.
PROTOS = [("foveate/v1/spec.proto", False), ("foveate/v1/jobs.proto", True)]


def main(out: Path = HERE) -> int:
    """Generate into `out` (this directory; a test generates elsewhere and compares)."""
    from grpc_tools import protoc

    include = str(resources.files("grpc_tools") / "_proto")
    for proto, services in PROTOS:
        args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
                *([f"--grpc_python_out={out}"] if services else []), str(HERE / proto)]
        if protoc.main(args) != 0:
            print(f"protoc failed on {proto}", file=sys.stderr)
            return 1
        stem = out / proto.removesuffix(".proto")
        package = proto.rsplit("/", 1)[0].replace("/", ".")
        outputs = [f"{stem.name}_pb2.py", f"{stem.name}_pb2.pyi"] + ([f"{stem.name}_pb2_grpc.py"] if services else [])
        for name in outputs:
            f = stem.with_name(name)
            # `from foveate.v1 import x_pb2` and (public imports) `from foveate.v1.x_pb2 import *`
            text = re.sub(rf"^from {re.escape(package)}( import|\.)", rf"from jobs.proto.{package}\1",
                          f.read_text(), flags=re.M)
            f.write_text(text)
        print(f"generated {', '.join(outputs)} in {stem.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
