"""What an export of a trained model is, torch-free: its formats, its options and their rules.

`foveate export`, the job service's ExportModel RPC and the dashboard's download button all take the same
request (a format and a number of sampled paths); this module owns its names and its validation. Building
the file is `jobs.run.export` (torch); where a run keeps its exports is `jobs.run.layout.RunLayout.export`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.api.errors import UserError

# format -> file suffix. ONNX for onnxruntime and other runtimes, TorchScript for libtorch / torch.jit.load.
FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
MAX_SAMPLES = 1000  # M sampled paths per image: the exported graph runs B * M episodes in one batch
CARD_SUFFIX = ".card.json"
# Families whose glimpse paths are sampled (a stochastic location policy): only they take samples > 0.
# RA-CNN's and MG-CNN's crops are deterministic; the dashboard offers M only for these.
SAMPLED_FAMILIES = ("ram", "dram")


@dataclass(frozen=True)
class ExportRequest:
    """format: one of FORMATS. samples: 0 for the deterministic mean path (RAM/DRAM: first glimpse at
    the centre, policy means after; the crop families are deterministic anyway), M > 0 for M sampled
    glimpse paths whose noise is an input of the exported graph (RAM/DRAM only)."""

    format: str = "onnx"
    samples: int = 0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UserError(f"format: must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or not 0 <= self.samples <= MAX_SAMPLES:
            raise UserError(f"samples: must be an integer from 0 to {MAX_SAMPLES}, got {self.samples!r}")

    @property
    def file_name(self) -> str:
        """`model-mean.onnx`, `model-m10.pt`, ...: one name per request, so a run keeps one file of each."""
        path = "mean" if self.samples == 0 else f"m{self.samples}"
        return f"model-{path}{FORMATS[self.format]}"


def card_path(model_file: str) -> str:
    """The model card (JSON) written beside an exported file: `model-mean.onnx` -> `model-mean.onnx.card.json`."""
    return model_file + CARD_SUFFIX
