"""Regenerate the gRPC stubs of jobs/proto/foveate/v1/jobs.proto: `python -m jobs.proto.codegen`.

The generated `*_pb2*.py` files are committed, so installing Foveate needs no grpcio-tools. protoc names
the stub's import after the proto's package path (`from foveate.v1 import jobs_pb2`); that is rewritten
to the import path inside this package, so the descriptor keeps its clean name `foveate/v1/jobs.proto`
(what reflection clients see) while the modules live under `jobs.proto`.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOS = ["foveate/v1/jobs.proto"]


def main() -> int:
    from grpc_tools import protoc

    include = str(resources.files("grpc_tools") / "_proto")
    for proto in PROTOS:
        args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={HERE}", f"--pyi_out={HERE}",
                f"--grpc_python_out={HERE}", str(HERE / proto)]
        if protoc.main(args) != 0:
            print(f"protoc failed on {proto}", file=sys.stderr)
            return 1
        stem = HERE / proto.removesuffix(".proto")
        grpc_file = stem.with_name(stem.name + "_pb2_grpc.py")
        package = proto.rsplit("/", 1)[0].replace("/", ".")
        text = grpc_file.read_text().replace(f"from {package} import", f"from jobs.proto.{package} import")
        grpc_file.write_text(text)
        print(f"generated {stem.name}_pb2.py, {stem.name}_pb2.pyi, {stem.name}_pb2_grpc.py in {stem.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
