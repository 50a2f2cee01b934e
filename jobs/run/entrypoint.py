"""The driver a Ray Job runs: `python -m jobs.run.entrypoint SPEC.json` (a path, or a pyarrow URI).

It connects to the cluster it runs on (Ray Jobs sets RAY_ADDRESS), runs the train or tune job, and
writes its result into the run directory (RunLayout.result), which the job service reads back; its
output is kept there too (RunLayout.driver_log).
"""

from __future__ import annotations

import dataclasses
import sys

from cluster import connect
from jobs.api import paths
from jobs.api.spec import JobSpec, load_spec
from jobs.run import storage
from jobs.run.driver_log import DriverLog
from jobs.run.layout import RunLayout


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m jobs.run.entrypoint SPEC.json", file=sys.stderr)
        return 2
    # The job service writes the spec beside the run, which may be on s3:// or gs://.
    uri = argv[0]
    spec = JobSpec.from_dict(storage.read_json(uri)) if paths.is_uri(uri) else load_spec(uri)
    layout = RunLayout.of(spec)
    # Kept with the run: StreamLogs serves it from there once the Ray head that ran the job is gone.
    with DriverLog(layout.driver_log):
        connect("auto")
        if spec.kind == "train":
            from jobs.run.train import run_train

            result = run_train(spec)
        else:
            from jobs.run.tune import run_tune

            result = run_tune(spec)
        out = dataclasses.asdict(result)
        storage.write_json(layout.result, out)
        print(f"result: {out}", flush=True)
    return 1 if getattr(result, "error", None) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
