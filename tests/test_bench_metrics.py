"""The attention measures the benches report (bench/dram_multidigit.py, bench/racnn_zoom.py), on hand-computed cases."""

import math
from types import SimpleNamespace

import torch

from attention_models import create_model
from bench.dram_multidigit import on_digit_fraction, on_read_digit_fraction
from bench.racnn_zoom import (
    CentredProposal,
    centre_correlation,
    centre_inside,
    feature_peak_box,
    on_object_fraction,
)

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


def test_feature_peak_box_is_the_hottest_square_in_original_pixels():
    model = create_model("racnn-zoom")  # 96 px images, scale 1 at 48 px, target half side 0.15 x 48 = 7.2 px
    energy = torch.zeros(1, 12, 12)
    energy[0, 2:6, 6:10] = 1.0  # a 4x4-cell hot block: one cell is 4 px of scale 1's input
    out = SimpleNamespace(energy=(energy, energy), apn_boxes=torch.zeros(1, 1, 3))
    box = feature_peak_box(model, out, (96, 96))
    # Window (4x4 cells) at row 2, col 6: centre (8, 4) cells = (32, 16) px at 48, (64, 32) px at 96.
    torch.testing.assert_close(box, torch.tensor([[64 - 14.4, 32 - 14.4, 64 + 14.4, 32 + 14.4]]))
    assert feature_peak_box(create_model("racnn-zoom", num_scales=1, scale_sizes=(48,)), out, (96, 96)) is None


def test_centre_correlation_follows_or_sits_still():
    truth = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 5.0, 30.0, 15.0], [40.0, 30.0, 50.0, 50.0]])
    following = truth + torch.tensor([3.0, -2.0, 3.0, -2.0])  # a shifted copy: correlation 1 in x and y
    assert centre_correlation(following, truth) == [1.0, 1.0]
    fixed = torch.tensor([10.0, 10.0, 20.0, 20.0]).expand(3, 4)
    assert centre_correlation(fixed, truth) == [None, None]


def test_box_search_scores_each_square_with_the_finest_scale_as_the_model_would():
    from bench.box_search import squares, true_class_log_probs

    torch.manual_seed(0)
    model = create_model("racnn-cub", image_size=32, scale_sizes=(16, 16), backbone_width=4).eval()
    images, labels = torch.rand(3, 3, 32, 32), torch.tensor([0, 4, 7])
    centres = torch.tensor([[16.0, 16.0], [10.0, 22.0]])
    logp = true_class_log_probs(model, images, labels, centres, half=8.0, chunk=2)
    assert logp.shape == (3, 2) and (logp <= 0).all()
    # The same square through the model's own forward pass: an APN that always proposes it.
    class Fixed(torch.nn.Module):
        def forward(self, features, side):  # the square (10, 22) half 8 of 32 px, in scale-1 pixels (16 px)
            return features.new_tensor([5.0, 11.0, 4.0]).expand(len(features), 3)

    model.apns = torch.nn.ModuleList([Fixed()])
    with torch.no_grad():
        own = model(images).scale_logits[:, 1].log_softmax(dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(logp[:, 1], own, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(squares(centres, 8.0)[1], torch.tensor([2.0, 14.0, 18.0, 30.0]))
