"""Build models from the registered variants (timm's `_factory.py`); this is where PyTorch comes in.

    model = create_model("ram-cluttered60", num_glimpses=8)   # a registered variant with overrides
    model = create_model("ram-cluttered60", pretrained=True)  # the weights shipped for it
    clone = model_from_config(model.config)                    # what a checkpoint's config rebuilds

The registry (registry.py, torch-free) knows names, families and configs; this module maps each family to
its model class.
"""

from __future__ import annotations

from typing import Any

import torch

from attention_models.base import AttentionModel
from attention_models.dram import DRAM
from attention_models.mgcnn import MGCNN
from attention_models.pretrained_files import pretrained_manifest, weights_file
from attention_models.racnn import RACNN
from attention_models.ram import RAM
from attention_models.registry import config_family, model_config, model_family

MODELS: dict[str, type[AttentionModel]] = {cls.family: cls for cls in (RAM, DRAM, RACNN, MGCNN)}


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> AttentionModel:
    """Build variant `name`, with any config field overridden by keyword. `pretrained`: the weights shipped
    for it (attention_models/pretrained/, see pretrained_files.py) in the config they were trained with,
    overrides on top (those that change a weight's shape fail the strict key and shape match)."""
    if not pretrained:
        return MODELS[model_family(name)](model_config(name, **overrides))
    manifest = pretrained_manifest(name)
    trained = {k: tuple(v) if isinstance(v, list) else v for k, v in manifest["config"].items()}
    model = MODELS[model_family(name)](model_config(name, **{**trained, **overrides}))
    load_weights(model, torch.load(weights_file(name), map_location="cpu", weights_only=True), str(weights_file(name)))
    return model


def load_weights(model: AttentionModel, state: dict[str, Any], source: str) -> None:
    """`state` into `model` with a strict key and shape match; a mismatch is one line naming `source`."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = [line.strip() for line in str(exc).splitlines() if line.strip()][1:2] or [str(exc)]
        raise ValueError(f"{source}: its weights do not fit {model.family}'s model as configured ({first[0]})") from None


def model_from_config(config: Any) -> AttentionModel:
    """Rebuild a model from its config object alone (what a checkpoint stores)."""
    return MODELS[config_family(config)](config)
