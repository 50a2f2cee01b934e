"""Foveate's attention models: RAM, DRAM, RA-CNN, MG-CNN. Needs nothing but PyTorch and torchvision.

Each family lives in one file (config dataclass, modules, output record, loss) and registers its named
variants on import; build them with `create_model(name, **overrides)`.
"""

from attention_models.base import Attention, AttentionModel
from attention_models.registry import (
    create_model,
    list_models,
    model_config,
    model_family,
    model_from_config,
)

__all__ = [
    "Attention",
    "AttentionModel",
    "create_model",
    "list_models",
    "model_config",
    "model_family",
    "model_from_config",
]

# Each family registers its variants on import (the registry imports this package first).
import attention_models.dram  # noqa: E402, F401
import attention_models.mgcnn  # noqa: E402, F401
import attention_models.racnn  # noqa: E402, F401
import attention_models.ram  # noqa: E402, F401
