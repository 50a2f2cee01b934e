"""The torch-free export rules (jobs/api/exports.py) agree with the models they describe: the families
the dashboard offers sampled paths for are exactly those whose models take path noise."""

from __future__ import annotations

import pytest

from attention_models import create_model, list_models
from attention_models.registry import model_family
from jobs.api.exports import SAMPLED_FAMILIES

ONE_PER_FAMILY = {"ram": "ram-mnist28", "dram": "dram-multidigit", "racnn": "racnn-zoom", "mgcnn": "mgcnn-zoom"}


def test_every_family_is_checked():
    assert {model_family(n) for n in list_models()} == set(ONE_PER_FAMILY)


@pytest.mark.parametrize("family", sorted(ONE_PER_FAMILY))
def test_sampled_families_are_the_models_with_path_noise(family):
    model = create_model(ONE_PER_FAMILY[family])
    assert model.path_noise(0) == {}
    if family in SAMPLED_FAMILIES:
        assert model.path_noise(3)
    else:
        with pytest.raises(ValueError, match=r"^samples: .* must be 0"):
            model.path_noise(3)
