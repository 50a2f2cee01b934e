"""The glimpse-placement measures that bench/dram_multidigit.py reports, on hand-computed cases."""

import math

import torch

from bench.dram_multidigit import on_digit_fraction, on_read_digit_fraction

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
