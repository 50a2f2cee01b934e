"""Named model variants, registered once as data (timm-style).

    create_model("ram-cluttered60", num_glimpses=8)   # a registered variant with overrides
    list_models()                                      # every registered name, sorted

A variant is a model class plus default config fields; overrides replace fields and go through the
config's own validation, so a bad override fails with a message naming the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

_REGISTRY: dict[str, _Variant] = {}


@dataclass(frozen=True)
class _Variant:
    name: str
    family: str
    model_cls: type[nn.Module]
    config_cls: type
    defaults: dict[str, Any]
    description: str


def register_variant(
    name: str,
    model_cls: type[nn.Module],
    config_cls: type,
    description: str = "",
    **defaults: Any,
) -> None:
    """Register `name` as `model_cls(config_cls(**defaults))`. Names are unique."""
    if name in _REGISTRY:
        raise ValueError(f"model variant {name!r} is registered twice")
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(defaults) - known)
    if unknown:
        raise ValueError(f"variant {name!r}: unknown config fields {unknown} for {config_cls.__name__}")
    family = getattr(model_cls, "family", model_cls.__name__.lower())
    _REGISTRY[name] = _Variant(name, family, model_cls, config_cls, dict(defaults), description)


def _ensure_loaded() -> None:
    # Importing the package registers every family's variants (each model file registers its own).
    import attention_models  # noqa: F401


def list_models(family: str | None = None) -> list[str]:
    """Every registered variant name, sorted; only one family's when `family` is given."""
    _ensure_loaded()
    return sorted(n for n, v in _REGISTRY.items() if family is None or v.family == family)


def model_family(name: str) -> str:
    """The family (`ram`, `dram`, `racnn`, `mgcnn`) of a registered variant."""
    return _variant(name).family


def model_config(name: str, **overrides: Any) -> Any:
    """The validated config of variant `name` with `overrides` applied."""
    v = _variant(name)
    known = {f.name for f in dataclasses.fields(v.config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"model.{unknown[0]}: not a field of {name!r} ({v.config_cls.__name__}); "
            f"known fields: {', '.join(sorted(known))}"
        )
    return v.config_cls(**{**v.defaults, **overrides})


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build variant `name`, with any config field overridden by keyword."""
    v = _variant(name)
    return v.model_cls(model_config(name, **overrides))


def model_from_config(config: Any) -> nn.Module:
    """Rebuild a model from its config object alone (what a checkpoint stores)."""
    _ensure_loaded()
    for v in _REGISTRY.values():
        if isinstance(config, v.config_cls):
            return v.model_cls(config)
    raise ValueError(f"no registered model family takes a {type(config).__name__}")


def config_class(name: str) -> type:
    return _variant(name).config_cls


def _variant(name: str) -> _Variant:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


Factory = Callable[..., nn.Module]
