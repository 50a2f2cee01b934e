"""Drawing attention records (dashboard/drawing.py) on synthetic data: the records' columns, IoUs, colours
per step, the replay, the retina scales drawn, glimpse numbers kept apart, crops and captions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dashboard import drawing

H = W = 60
DIGIT = (30, 20, 42, 35)  # x0, y0, x1, y1 of the white "object"


def _image() -> np.ndarray:
    img = np.zeros((H, W, 1), np.uint8)
    x0, y0, x1, y1 = DIGIT
    img[y0:y1, x0:x1] = 255
    return img


def _row(kind: str, boxes: list, steps: int, patches: int, **extra) -> dict:
    return {"image": _image().tobytes(), "height": H, "width": W, "channels": 1, "label": 7, "prediction": 7,
            "kind": kind, "boxes": np.asarray(boxes, np.float32).ravel().tolist(), "steps": steps,
            "patches": patches, "gt_boxes": list(DIGIT), "sample_id": 3, "epoch": 1, **extra}


def _glimpses() -> drawing.Record:
    """Three glimpses of two patches (12 and 24 px) walking from the centre onto the object."""
    boxes = [[[cx - 6, cy - 6, cx + 6, cy + 6], [cx - 12, cy - 12, cx + 12, cy + 12]]
             for cx, cy in [(10, 50), (30, 30), (36, 27)]]
    return drawing.record_from_row(_row("glimpse", boxes, 3, 2))


def _scales() -> drawing.Record:
    return drawing.record_from_row(_row("scale", [[0, 0, 60, 60], [28, 18, 44, 37]], 2, 1,
                                        step_probs=[0.3, 0.9], step_predictions=[1, 7]))


def _colour_at(img: Image.Image, x: float, y: float, scale: float) -> tuple:
    """The colour drawn at image pixel (x, y): the most saturated pixel within 2 px of it once scaled
    (an outline 1 px wide may land either side of the rounded coordinate)."""
    cx, cy = round(x * scale), round(y * scale)
    near = [img.getpixel((i, j)) for i in range(cx - 2, cx + 3) for j in range(cy - 2, cy + 3)
            if 0 <= i < img.width and 0 <= j < img.height]
    return max(near, key=lambda p: max(p) - min(p) + (sum(p) > 0))


def test_record_round_trips_the_flattened_columns():
    rec = _glimpses()
    assert rec.image.shape == (H, W, 1) and rec.boxes.shape == (3, 2, 4) and rec.gt_boxes.shape == (1, 4)
    assert rec.boxes[2, 0].tolist() == [30, 21, 42, 33] and rec.correct


def test_step_iou_takes_the_best_patch_and_is_nan_without_truth():
    rec = _glimpses()
    ious = drawing.step_iou(rec)
    assert ious[0] == 0.0  # far from the object
    x0, y0, x1, y1 = DIGIT
    inter = (42 - 30) * (33 - 21)
    assert ious[2] == pytest.approx(max(inter / (144 + 12 * 15 - inter), 12 * 15 / 24 ** 2))
    assert ious[0] < ious[1] <= ious[2]
    assert drawing.attention_score(rec) == pytest.approx(ious.mean())
    rec.gt_boxes = np.zeros((0, 4), np.float32)
    assert np.isnan(drawing.step_iou(rec)).all() and "IoU" not in drawing.caption(rec)


def test_glimpses_are_drawn_in_step_colours_on_the_scaled_image():
    rec = _glimpses()
    img = drawing.draw_record(rec, show_truth=False)
    s = drawing.MIN_SIDE / W
    assert img.size == (drawing.MIN_SIDE, drawing.MIN_SIDE) and img.mode == "RGB"
    # The outer (24 px) patch of step 1 has its left edge at x = -2 (clipped): use step 2's, at x = 18.
    assert _colour_at(img, 18, 30, s) == drawing.PALETTE[1]
    assert _colour_at(img, 36 + 12, 27, s) == drawing.PALETTE[2]
    assert _colour_at(img, 5, 5, s) == (0, 0, 0)  # untouched background


def test_replay_draws_only_the_steps_so_far():
    rec = _glimpses()
    s = drawing.MIN_SIDE / W
    first = drawing.draw_record(rec, upto=1, show_truth=False)
    assert _colour_at(first, 18, 30, s) == (0, 0, 0)  # step 2 not drawn yet
    frames = drawing.replay_frames(rec)
    assert len(frames) == 3 and _colour_at(frames[1], 18, 30, s) == drawing.PALETTE[1]
    gif = Image.open(io.BytesIO(drawing.replay_gif(rec)))
    assert gif.format == "GIF" and gif.n_frames == 4  # an empty frame, then one per glimpse


def test_only_the_chosen_retina_scales_are_drawn():
    rec = _glimpses()
    s = drawing.MIN_SIDE / W
    finest = drawing.draw_record(rec, show_truth=False, patches=(0,))
    assert _colour_at(finest, 18, 30, s) == (0, 0, 0)  # step 2's outer (24 px) patch left out
    assert _colour_at(finest, 24, 30, s) == drawing.PALETTE[1]  # its finest (12 px) patch drawn
    coarse = drawing.draw_record(rec, show_truth=False, patches=(1,))
    assert _colour_at(coarse, 18, 30, s) == drawing.PALETTE[1]


def test_glimpse_numbers_never_overlap():
    """Six glimpses around one spot (a model that has found the object) keep their numbers apart."""
    boxes = [[[30 + d - 4, 27 - 4, 30 + d + 4, 27 + 4]] * 3 for d in (0, 1, 0, 2, 1, 0)]
    rec = drawing.record_from_row(_row("glimpse", boxes, 6, 3))
    img = drawing.draw_record(rec, patches=(0,))
    draw = ImageDraw.Draw(img)
    size = max(11, img.width // 22)
    centres = [((b[0][0] + b[0][2]) / 2 * img.width / W, (b[0][1] + b[0][3]) / 2 * img.width / W) for b in boxes]
    spots = drawing.place_labels(draw, centres, [str(t + 1) for t in range(6)], size)
    areas = [drawing._label_box(draw, xy, str(t + 1), size) for t, xy in enumerate(spots)]
    for i in range(6):
        for j in range(i):
            assert not drawing._overlap(areas[i], areas[j]), (i, j, spots)
    assert spots[0] == centres[0]  # the first sits on its glimpse


def test_the_step_table_gives_the_iou_of_the_box_it_shows():
    rec = _glimpses()
    table = drawing.step_table(rec)
    # Step 2: its finest box (24..36, 24..36) overlaps the object less than its outer one does.
    finest = drawing.box_iou(rec.boxes[1, 0], rec.gt_boxes[0])
    assert table[1]["box"] == "(24.0, 24.0) – (36.0, 36.0)" and table[1]["IoU of this box"] == round(float(finest), 3)
    assert finest < drawing.step_iou(rec)[1]  # the best patch's IoU, which the table used to show here
    both = drawing.step_table(rec, (0, 1))[1]
    assert both["IoU of this box (scale 2)"] == round(float(drawing.box_iou(rec.boxes[1, 1], rec.gt_boxes[0])), 3)


def test_truth_box_and_scale_regions_with_crops_and_captions():
    rec = _scales()
    img = drawing.draw_record(rec)
    s = drawing.MIN_SIDE / W
    assert _colour_at(img, DIGIT[0], 28, s) == drawing.GT_COLOUR
    assert _colour_at(img, 28, 28, s) == drawing.PALETTE[1]  # scale 2's left edge
    crops = drawing.crops(rec, side=64)
    assert [c.size for c in crops] == [(64, 64), (64, 64)]
    # Scale 2 zooms onto the object: most of its crop is the white digit; scale 1 sees the whole canvas.
    assert np.asarray(crops[1]).mean() > 2 * np.asarray(crops[0]).mean()
    table = drawing.step_table(rec)
    assert [r["prediction"] for r in table] == [1, 7] and table[1]["p(true class)"] == pytest.approx(0.9)
    assert drawing.caption(rec).startswith("#3 · 7 → 7 ✓ · IoU")


def test_sequence_records_caption_the_digits():
    rec = drawing.record_from_row(_row("glimpse", [[[0, 0, 12, 12]]], 1, 1,
                                       label_sequence=[4, 2], predicted_sequence=[4, 7]))
    assert "42 → 47 ✗" in drawing.caption(rec) and not rec.correct
