"""Losses and box helpers against hand-computed values."""

import math

import pytest
import torch

from vng.losses import (box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, dice_loss, giou_loss, masks_to_boxes,
                        sigmoid_focal_loss)


def test_focal_loss_by_hand():
    logits = torch.tensor([0.0, 0.0, math.log(3.0)])  # p = 0.5, 0.5, 0.75
    targets = torch.tensor([1.0, 0.0, 1.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0)
    expected = [0.25 * 0.5 ** 2 * math.log(2),  # positive: alpha (1 - p)^2 (-log p)
                0.75 * 0.5 ** 2 * math.log(2),  # negative: (1 - alpha) p^2 (-log(1 - p))
                0.25 * 0.25 ** 2 * -math.log(0.75)]
    assert loss.tolist() == pytest.approx(expected, rel=1e-6)


def test_focal_loss_without_alpha_is_modulated_cross_entropy():
    loss = sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), alpha=-1, gamma=0.0)
    assert loss.item() == pytest.approx(math.log(2))


def test_dice_loss_by_hand():
    logits = torch.zeros(1, 4)  # p = 0.5 everywhere
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    # 1 - (2 * 1 + 1) / (2 + 2 + 1)
    assert dice_loss(logits, targets).item() == pytest.approx(1 - 3 / 5)
    confident = torch.tensor([[20.0, 20.0, -20.0, -20.0]])
    assert dice_loss(confident, targets).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(torch.full((1, 4), -20.0), torch.zeros(1, 4)).item() == pytest.approx(0.0, abs=1e-6)


def test_giou_loss_on_simple_boxes():
    unit = torch.tensor([[0.5, 0.5, 1.0, 1.0]])  # (cx, cy, w, h): [0, 1] × [0, 1]
    assert giou_loss(unit, unit).item() == pytest.approx(0.0)
    beside = torch.tensor([[2.5, 0.5, 1.0, 1.0]])  # [2, 3] × [0, 1]: IoU 0, hull 3, union 2
    assert giou_loss(unit, beside).item() == pytest.approx(1 + 1 / 3)
    half = torch.tensor([[0.5, 0.25, 1.0, 0.5]])  # inside the unit box: IoU 1/2, hull = union
    assert giou_loss(unit, half).item() == pytest.approx(0.5)


def test_box_conversions_round_trip():
    boxes = torch.tensor([[0.5, 0.4, 0.2, 0.6]])
    assert box_cxcywh_to_xyxy(boxes)[0].tolist() == pytest.approx([0.4, 0.1, 0.6, 0.7])
    assert torch.allclose(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(boxes)), boxes)


def test_masks_to_boxes_normalises_by_the_real_size():
    masks = torch.zeros(2, 8, 10, dtype=torch.bool)
    masks[0, 1, 2] = masks[0, 2, 5] = True  # x in [2, 6), y in [1, 3)
    sizes = torch.tensor([[4, 8], [8, 10]])  # frame 0 is 4 × 8 real pixels, the rest padding
    boxes = masks_to_boxes(masks, sizes)
    assert boxes[0].tolist() == pytest.approx([4 / 8, 2 / 4, 4 / 8, 2 / 4])
    assert boxes[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # empty mask
