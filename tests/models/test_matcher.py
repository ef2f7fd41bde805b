"""Hungarian matching: a hand case where greedy fails, and clip-level matching of query sequences."""

import pytest
import torch

from vng.models.matcher import HungarianMatcher, hungarian_match


def test_hungarian_match_beats_greedy():
    cost = torch.tensor([[4.0, 1.0, 3.0],
                         [2.0, 0.0, 5.0],
                         [3.0, 2.0, 2.0]])
    # Greedy takes (1, 1) = 0 first and ends at 0 + 3 + 3 = 6; the optimum is 1 + 2 + 2 = 5.
    queries, targets = hungarian_match(cost)
    assert queries.tolist() == [0, 1, 2] and targets.tolist() == [1, 0, 2]
    assert cost[queries, targets].sum().item() == 5.0


def test_hungarian_match_with_more_queries_than_targets():
    queries, targets = hungarian_match(torch.tensor([[3.0], [1.0], [2.0]]))
    assert queries.tolist() == [1] and targets.tolist() == [0]


def clip(num_queries=3, frames=2, size=8):
    """Predictions where query 1 reproduces the target exactly and the others are far off."""
    target_masks = torch.zeros(1, frames, size, size)
    target_masks[0, :, 2:6, 2:6] = 1
    target_boxes = torch.tensor([0.5, 0.5, 0.5, 0.5]).expand(1, frames, 4).clone()
    logits = torch.full((frames, num_queries), -3.0)
    logits[:, 1] = 3.0
    boxes = torch.tensor([0.2, 0.2, 0.1, 0.1]).expand(frames, num_queries, 4).clone()
    boxes[:, 1] = target_boxes[0]
    masks = torch.full((frames, num_queries, size, size), -10.0)
    masks[:, 1] = target_masks[0] * 20 - 10
    present = torch.ones(1, frames, dtype=torch.bool)
    valid = torch.ones(frames, dtype=torch.bool)
    return logits, boxes, masks, target_masks, target_boxes, present, valid


def test_matcher_picks_the_query_sequence_that_fits_the_clip():
    queries, targets = HungarianMatcher()(*clip())
    assert queries.tolist() == [1] and targets.tolist() == [0]


def test_invalid_frames_do_not_enter_the_cost():
    logits, boxes, masks, target_masks, target_boxes, present, valid = clip()
    valid[1] = False
    present[0, 1] = False
    matcher = HungarianMatcher()
    cost = matcher.cost_matrix(logits, boxes, masks, target_masks, target_boxes, present, valid)
    # Make query 2 perfect and query 1 wrong on the unsupervised frame only: nothing changes.
    logits[1] = logits[1].flip(0)
    masks[1, 2], masks[1, 1] = masks[1, 1].clone(), masks[1, 2].clone()
    target_masks[0, 1] = 0
    assert torch.equal(cost, matcher.cost_matrix(logits, boxes, masks, target_masks, target_boxes, present, valid))


def test_cost_weights_by_hand():
    logits, boxes, masks, target_masks, target_boxes, present, valid = clip()
    only_l1 = HungarianMatcher(cost_class=0, cost_box=1, cost_giou=0, cost_mask=0, cost_dice=0)
    cost = only_l1.cost_matrix(logits, boxes, masks, target_masks, target_boxes, present, valid)
    # |0.2 - 0.5| * 2 + |0.1 - 0.5| * 2 = 1.4 for the wrong queries, 0 for the right one.
    assert cost[:, 0].tolist() == pytest.approx([1.4, 0.0, 1.4])


def test_a_target_must_be_present_somewhere():
    logits, boxes, masks, target_masks, target_boxes, present, valid = clip()
    with pytest.raises(ValueError, match="present"):
        HungarianMatcher()(logits, boxes, masks, target_masks, target_boxes, torch.zeros_like(present), valid)
