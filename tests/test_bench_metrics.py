"""The attention measures the benches report (bench/dram_multidigit.py, bench/racnn_zoom.py), on hand-computed cases."""

import math

import torch

from attention_models import create_model
from bench.dram_multidigit import on_digit_fraction, on_read_digit_fraction
from bench.racnn_zoom import CentredProposal, centre_inside, on_object_fraction

NAN = math.nan


def test_on_read_digit_counts_only_the_digit_each_slot_reads():
    # Two canvases, 2 glimpses per label, 3 slots (2 digits + EOS) -> T = 6 glimpses.
    boxes = torch.tensor(
        [
            [[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]],  # two digits
            [[0.0, 0.0, 10.0, 10.0], [NAN, NAN, NAN, NAN]],  # one digit, the second box is padding
        ]
    )
    centres = torch.tensor(
        [
            # slot 1: on digit 1, on digit 2 (wrong digit); slot 2: on digit 2 twice; EOS slot: on digit 1
            [[5.0, 5.0], [25.0, 5.0], [25.0, 5.0], [21.0, 1.0], [5.0, 5.0], [5.0, 5.0]],
            # slot 1: off, on; slot 2 is padding (on its NaN box nothing counts); EOS: on digit 1
            [[50.0, 50.0], [9.0, 9.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]],
        ]
    )
    # Valid slots: canvas 1 slots 1 (1/2) and 2 (2/2), canvas 2 slot 1 (1/2): mean of 0.5, 1, 0.5.
    assert math.isclose(on_read_digit_fraction(centres, boxes, glimpses_per_label=2), 2 / 3, rel_tol=1e-6)
    # on_digit counts any digit and every glimpse, EOS slot included: 6/6 and 5/6 (the one off glimpse).
    assert math.isclose(on_digit_fraction(centres, boxes), 11 / 12, rel_tol=1e-6)


def test_box_edges_are_half_open():
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0]]])
    centres = torch.tensor([[[10.0, 5.0], [0.0, 0.0]]])  # right edge out, top-left corner in
    assert on_read_digit_fraction(centres, boxes, glimpses_per_label=2) == 0.5


def test_box_on_object_and_centre_inside():
    truth = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    box = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])  # half on it; off it
    assert on_object_fraction(box, truth).tolist() == [0.5, 0.0]
    assert centre_inside(box, truth).tolist() == [True, False]


def test_centred_proposal_keeps_the_size_and_centres_the_box():
    model = create_model("racnn-zoom", num_scales=3)
    images = torch.rand(2, 1, model.config.image_size, model.config.image_size)
    feats = model.backbones[0](torch.nn.functional.interpolate(images, size=model.config.scale_sizes[0]))
    side = model.config.scale_sizes[0]
    learned = model.apns[0](feats, side)
    centred = CentredProposal(model.apns[0])(feats, side)
    assert torch.equal(centred[:, 2], learned[:, 2])
    assert torch.equal(centred[:, :2], torch.full((2, 2), side / 2))
