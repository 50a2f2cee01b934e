"""Build models from the registered variants (timm's `_factory.py`); this is where PyTorch comes in.

    model = create_model("ram-cluttered60", num_glimpses=8)   # a registered variant with overrides
    clone = model_from_config(model.config)                    # what a checkpoint's config rebuilds

The registry (registry.py, torch-free) knows names, families and configs; this module maps each family to
its model class.
"""

from __future__ import annotations

from typing import Any

from attention_models.base import AttentionModel
from attention_models.dram import DRAM
from attention_models.mgcnn import MGCNN
from attention_models.racnn import RACNN
from attention_models.ram import RAM
from attention_models.registry import config_family, model_config, model_family

MODELS: dict[str, type[AttentionModel]] = {cls.family: cls for cls in (RAM, DRAM, RACNN, MGCNN)}


def create_model(name: str, **overrides: Any) -> AttentionModel:
    """Build variant `name`, with any config field overridden by keyword."""
    return MODELS[model_family(name)](model_config(name, **overrides))


def model_from_config(config: Any) -> AttentionModel:
    """Rebuild a model from its config object alone (what a checkpoint stores)."""
    return MODELS[config_family(config)](config)
