"""Hungarian matching of query sequences to target objects over a whole clip (ReferFormer's sequence matching).

ReferFormer shares its N queries across the T frames of a clip, so query ``q`` predicts one *sequence* (a score, a box
and a mask in every frame). A target object is matched to one query sequence with a cost summed over the clip:

- class: focal-style cost of the query's "referred" score, ``alpha (1 - p)^g (-log p) - (1 - alpha) p^g (-log(1 - p))``,
  averaged over the frames where the target is present;
- box: L1 distance and ``-GIoU`` between predicted and target boxes, averaged over the same frames;
- mask: sigmoid focal loss and Dice loss between the query's masks and the target's, over all supervised frames
  (frames where the target is absent count with an empty target mask).

Frames without supervision (``valid`` False) take no part. Weights default to ReferFormer's ``--set_cost_*`` options
(class 2, L1 5, GIoU 2, mask 2, Dice 5). With one target per clip (RF-VNG) the assignment is the query of least cost;
:func:`hungarian_match` (``scipy.optimize.linear_sum_assignment``) also solves several targets at once.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from vng.losses import box_cxcywh_to_xyxy, dice_loss, generalized_box_iou, sigmoid_focal_loss

__all__ = ["HungarianMatcher", "hungarian_match"]


def hungarian_match(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignment of rows (queries) to columns (targets).

    Args:
        cost: (Q, M) float, finite.

    Returns:
        (query_index, target_index): two (min(Q, M),) int64 tensors on ``cost``'s device, sorted by query index.
    """
    rows, cols = linear_sum_assignment(cost.detach().cpu().float().numpy())
    return (torch.as_tensor(rows, dtype=torch.int64, device=cost.device),
            torch.as_tensor(cols, dtype=torch.int64, device=cost.device))


class HungarianMatcher:
    """Matches the query sequences of one clip to its target objects (see the module docstring for the cost).

    Args:
        cost_class, cost_box, cost_giou, cost_mask, cost_dice: weights of the five cost terms.
        focal_alpha, focal_gamma: of the focal terms (RetinaNet's 0.25 and 2).
    """

    def __init__(self, *, cost_class: float = 2.0, cost_box: float = 5.0, cost_giou: float = 2.0,
                 cost_mask: float = 2.0, cost_dice: float = 5.0, focal_alpha: float = 0.25, focal_gamma: float = 2.0):
        self.cost_class, self.cost_box, self.cost_giou = cost_class, cost_box, cost_giou
        self.cost_mask, self.cost_dice = cost_mask, cost_dice
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma

    @torch.no_grad()
    def cost_matrix(self, pred_logits: Tensor, pred_boxes: Tensor, pred_masks: Tensor, target_masks: Tensor,
                    target_boxes: Tensor, target_present: Tensor, target_valid: Tensor) -> Tensor:
        """Cost of assigning each query sequence to each target over one clip.

        Args:
            pred_logits: (T, Q) float, "referred" logits.
            pred_boxes: (T, Q, 4) float, (cx, cy, w, h) normalised.
            pred_masks: (T, Q, h, w) float, mask logits.
            target_masks: (M, T, h, w) float in [0, 1], at the resolution of ``pred_masks``.
            target_boxes: (M, T, 4) float, (cx, cy, w, h) normalised; read only where present.
            target_present: (M, T) bool, target visible (and supervised) in the frame; each target needs one.
            target_valid: (T,) bool, frame supervised.

        Returns:
            (Q, M) float.
        """
        if not target_present.any(1).all():
            raise ValueError("every target must be present in at least one supervised frame")
        present = target_present.T.float()  # (T, M)
        frames_present = present.sum(0)  # (M,)

        prob = pred_logits.sigmoid()
        alpha, gamma = self.focal_alpha, self.focal_gamma
        positive = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
        negative = (1 - alpha) * prob ** gamma * -(1 - prob + 1e-8).log()
        cost_class = ((positive - negative).T @ present) / frames_present  # (Q, M)

        l1 = (pred_boxes[:, :, None] - target_boxes.transpose(0, 1)[:, None]).abs().sum(-1)  # (T, Q, M)
        pred_xyxy, target_xyxy = box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(target_boxes)
        giou = torch.stack([generalized_box_iou(pred_xyxy[t], target_xyxy[:, t])
                            for t in range(pred_boxes.shape[0])])  # (T, Q, M)
        weight = present[:, None, :]  # (T, 1, M)
        # where(): boxes of frames without the target may be degenerate; keep their NaN/inf out of the sums.
        cost_box = torch.where(weight > 0, l1, 0.0).sum(0) / frames_present
        cost_giou = -torch.where(weight > 0, giou, 0.0).sum(0) / frames_present

        num_queries, num_targets = pred_logits.shape[1], target_masks.shape[0]
        masks = pred_masks[target_valid].transpose(0, 1).flatten(1)  # (Q, P) over the supervised frames
        targets = target_masks[:, target_valid].flatten(1)  # (M, P)
        masks = masks[:, None].expand(-1, num_targets, -1)
        targets = targets[None].expand(num_queries, -1, -1)
        cost_mask = sigmoid_focal_loss(masks, targets, alpha=alpha, gamma=gamma).mean(-1)  # (Q, M)
        cost_dice = dice_loss(masks, targets)  # (Q, M)

        return (self.cost_class * cost_class + self.cost_box * cost_box + self.cost_giou * cost_giou
                + self.cost_mask * cost_mask + self.cost_dice * cost_dice)

    def __call__(self, pred_logits: Tensor, pred_boxes: Tensor, pred_masks: Tensor, target_masks: Tensor,
                 target_boxes: Tensor, target_present: Tensor, target_valid: Tensor) -> tuple[Tensor, Tensor]:
        """Match one clip (arguments as :meth:`cost_matrix`) → ``(query_index, target_index)``, int64."""
        return hungarian_match(self.cost_matrix(pred_logits, pred_boxes, pred_masks, target_masks, target_boxes,
                                                target_present, target_valid))
