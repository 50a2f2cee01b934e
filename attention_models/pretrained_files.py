"""Where the shipped trained weights live and what their manifests say, without torch (the job service
checks `model.init_from: pretrained` with it).

    attention_models/pretrained/<variant>.pt     the weights only (a state dict), a few MB
    attention_models/pretrained/<variant>.json   its manifest: the model config it was trained with, the spec,
                                                 the commit, the data, the minutes, and the errors that
                                                 `foveate evaluate` measured on the test split

The config in the manifest is the one the weights fit (a paper recipe may set fields the variant leaves at
their defaults, such as an LSTM core); `create_model(name, pretrained=True)` builds that config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attention_models.configs import field_error

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def weights_file(name: str) -> Path:
    return PRETRAINED_DIR / f"{name}.pt"


def manifest_file(name: str) -> Path:
    return PRETRAINED_DIR / f"{name}.json"


def shipped() -> list[str]:
    """The variants that have shipped weights (a manifest and its weights file), sorted."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.json") if weights_file(p.stem).is_file())


def pretrained_manifest(name: str) -> dict[str, Any]:
    """The manifest of variant `name`'s shipped weights; `model.name: no pretrained weights ...` otherwise."""
    if name not in shipped():
        have = ", ".join(shipped()) or "none yet"
        raise field_error("model.name", f"has no pretrained weights (shipped for: {have})", name)
    return json.loads(manifest_file(name).read_text())
