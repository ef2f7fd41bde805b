"""Loss functions and box helpers shared by the models (elementwise or per-instance; reductions stay with the caller).

RF-VNG trains with ReferFormer's set-prediction losses (Wu et al., CVPR 2022): sigmoid focal loss for the "is the
referred object" score, L1 + generalised IoU for boxes, and focal + Dice for masks. The weights live in the model
config (:class:`vng.models.rf_vng.RFVNGConfig`).

Boxes are ``(cx, cy, w, h)`` normalised by the real (unpadded) frame size, or ``(x0, y0, x1, y1)`` where noted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import generalized_box_iou

__all__ = ["box_cxcywh_to_xyxy", "box_xyxy_to_cxcywh", "dice_loss", "generalized_box_iou", "giou_loss",
           "masks_to_boxes", "sigmoid_focal_loss"]


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, *, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Focal loss of RetinaNet (Lin et al. 2017) on sigmoid logits, elementwise.

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p_t = p`` for positives and ``1 - p`` for negatives,
    ``alpha_t = alpha`` for positives and ``1 - alpha`` for negatives (``alpha < 0``: no weighting).

    Args:
        logits: float, any shape.
        targets: float in [0, 1], same shape (1 = positive).

    Returns:
        float, the shape of ``logits``.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice loss per instance: ``1 - (2 |p ∩ y| + 1) / (|p| + |y| + 1)`` with soft ``p = sigmoid(logits)``.

    The +1 smoothing is DETR's/ReferFormer's; it makes an empty prediction of an empty target cost 0.

    Args:
        logits: (N, P) float, P pixels per instance.
        targets: (N, P) float in [0, 1].

    Returns:
        (N,) float.
    """
    prob = logits.sigmoid()
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(..., 4) (cx, cy, w, h) → (..., 4) (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """(..., 4) (x0, y0, x1, y1) → (..., 4) (cx, cy, w, h)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1)


def masks_to_boxes(masks: Tensor, sizes: Tensor) -> Tensor:
    """Tight boxes around binary masks, normalised by each frame's real size.

    A box covers whole pixels: a mask that is only pixel (x, y) gives ``(x, y, x + 1, y + 1)`` before normalisation.
    Empty masks give all-zero boxes (callers exclude them).

    Args:
        masks: (..., H, W) bool.
        sizes: (..., 2) int or float, real (unpadded) (height, width) in pixels of each mask's frame.

    Returns:
        (..., 4) float (cx, cy, w, h) in [0, 1].
    """
    height, width = masks.shape[-2:]
    rows = masks.any(-1)  # (..., H)
    cols = masks.any(-2)  # (..., W)
    y_index = torch.arange(height, device=masks.device)
    x_index = torch.arange(width, device=masks.device)
    # First and last occupied row/column: min/max over the occupied indices.
    y0 = torch.where(rows, y_index, height).amin(-1)
    y1 = torch.where(rows, y_index, -1).amax(-1) + 1
    x0 = torch.where(cols, x_index, width).amin(-1)
    x1 = torch.where(cols, x_index, -1).amax(-1) + 1
    frame_h, frame_w = sizes.float().unbind(-1)
    boxes = torch.stack([x0, y0, x1, y1], -1).float() / torch.stack([frame_w, frame_h, frame_w, frame_h], -1)
    boxes = torch.where(masks.flatten(-2).any(-1)[..., None], boxes, torch.zeros_like(boxes))
    return box_xyxy_to_cxcywh(boxes)


def giou_loss(boxes: Tensor, targets: Tensor) -> Tensor:
    """``1 - GIoU`` of matched pairs (torchvision's ``generalized_box_iou`` on the diagonal).

    Args:
        boxes, targets: (N, 4) float (cx, cy, w, h).

    Returns:
        (N,) float in [0, 2].
    """
    return 1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(targets)))
