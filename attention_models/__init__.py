"""Foveate's attention models: RAM, DRAM, RA-CNN, MG-CNN. Needs nothing but PyTorch and torchvision.

Each family lives in one model file (`ram.py`: modules, output record, loss) beside a torch-free config
file (`ram_config.py`: the frozen config dataclass and the named variants). Build a variant with
`create_model(name, **overrides)`; `list_models()`, `model_config(...)` and `model_family(...)` need no
torch, so the job service can validate a spec without it (configs.py says why).

The names below are exported lazily (PEP 562): `from attention_models import model_config` imports the
registry only, and `create_model` or `AttentionModel` bring in torch when first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attention_models.base import Attention, AttentionModel
    from attention_models.factory import create_model, model_from_config
    from attention_models.registry import list_models, model_config, model_family

_EXPORTS = {
    "Attention": "attention_models.base",
    "AttentionModel": "attention_models.base",
    "create_model": "attention_models.factory",
    "model_from_config": "attention_models.factory",
    "list_models": "attention_models.registry",
    "model_config": "attention_models.registry",
    "model_family": "attention_models.registry",
}

__all__ = [
    "Attention",
    "AttentionModel",
    "create_model",
    "list_models",
    "model_config",
    "model_family",
    "model_from_config",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'attention_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
