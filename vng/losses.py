"""Loss functions and box helpers shared by the models (elementwise or per-instance; reductions stay with the caller).

RF-VNG trains with ReferFormer's set-prediction losses (Wu et al., CVPR 2022): sigmoid focal loss for the "is the
referred object" score, L1 + generalised IoU for boxes, and focal + Dice for masks. The weights live in the model
config (:class:`vng.models.rf_vng.RFVNGConfig`).

Boxes are ``(cx, cy, w, h)`` normalised by the real (unpadded) frame size, or ``(x0, y0, x1, y1)`` where noted.
"""

from __future__ import annotations

import math

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


# --- STCN / Point-STCN (Point-VOS, Sec. 4) ----------------------------------------------------------------------------
# Segmentation logits are (B, C, H, W) over C = O + 1 classes (0 = background): the soft-aggregated log-odds of
# :class:`vng.models.stcn.STCN`, on which STCN computes its cross-entropy.

__all__ += ["sample_at_points", "point_cross_entropy", "huberised_cross_entropy", "bootstrapped_cross_entropy"]


def sample_at_points(maps: Tensor, xy: Tensor) -> Tensor:
    """Bilinear samples of maps at points given in pixels (Cutie's ``point_sample``, in pixel units).

    Pixel (x, y) is the centre of the pixel in column x, row y: x maps to ``(2x + 1) / W - 1`` in ``grid_sample``'s
    [-1, 1] range with ``align_corners=False``, so an integer point reads its pixel's value (up to rounding). Points
    outside the map read zeros (``padding_mode="zeros"``).

    Args:
        maps: (B, C, H, W) float.
        xy: (B, N, 2) float (x, y) pixels of ``maps``.

    Returns:
        (B, C, N) float.
    """
    height, width = maps.shape[-2:]
    scale = xy.new_tensor([2.0 / width, 2.0 / height])
    grid = (xy.to(scale.dtype) * scale + scale / 2 - 1).unsqueeze(2)  # (B, N, 1, 2): (2x + 1) / W - 1
    return F.grid_sample(maps, grid.to(maps.dtype), mode="bilinear", align_corners=False).squeeze(3)


def point_cross_entropy(logits: Tensor, xy: Tensor, object_index: Tensor, labels: Tensor, *,
                        background_weight: float = 1.0, reduction: str = "mean") -> Tensor:
    """Point-STCN's loss: cross-entropy only at the annotated points.

    The class logits are sampled at each point (:func:`sample_at_points`) and soft-maxed over the C classes. A
    foreground point of object o costs ``-log p_o``. A background point of object o only says "not o" (with several
    objects it may lie on another one), so it costs ``-log(1 - p_o)``; with one object that is exactly the
    cross-entropy against the background class. Ambiguous points (label -1, also usable as padding) cost nothing.

    Points are not pixels: an annotator gives a few foreground points on a small object and a few background points
    on the large rest of the frame, so per pixel the foreground is sampled far more densely than the background.
    Plain point CE then learns a posterior shifted toward the foreground by the log of that density ratio (masks
    that spill over the object). ``background_weight`` w costs every background point w times: the shift becomes
    ``log(ratio / w)``, and w = the ratio of the point densities, ``(n_fg / area_fg) / (n_bg / area_bg)``, undoes it.

    Args:
        logits: (B, C, H, W) float class logits (class 0 background, class o object o).
        xy: (B, N, 2) float (x, y) pixels of ``logits``.
        object_index: (B, N) int64 in [1, C - 1], the class of the object each point was annotated for.
        labels: (B, N) int, 1 foreground, 0 background, -1 ambiguous (ignored).
        background_weight: the weight of a background point, a foreground point's being 1 (> 0).
        reduction: ``"mean"``: the weighted mean over the non-ambiguous points, ``sum(w l) / sum(w)`` (0 when there
            are none, with a gradient of 0), or ``"none"``: the weighted losses ``w l``.

    Returns:
        A scalar, or (B, N) float with 0 at ignored points.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if not background_weight > 0:
        raise ValueError(f"background_weight must be > 0, got {background_weight}")
    log_probs = torch.log_softmax(sample_at_points(logits, xy).float(), dim=1)  # (B, C, N)
    index = object_index.clamp(0, logits.shape[1] - 1).unsqueeze(1)
    log_p = log_probs.gather(1, index).squeeze(1)  # log p_o
    # log(1 - p_o) = logsumexp over the classes other than o (stable when p_o -> 1)
    log_not_p = log_probs.scatter(1, index, float("-inf")).logsumexp(1)
    loss = torch.where(labels == 1, -log_p, -log_not_p)
    weight = torch.where(labels == 0, background_weight, 1.0) * (labels >= 0)
    loss = loss * weight
    if reduction == "none":
        return loss
    return loss.sum() / weight.sum().clamp(min=1e-12)


def huberised_cross_entropy(logits: Tensor, target: Tensor, *, tau: float = 10.0, reduction: str = "mean") -> Tensor:
    """Partially Huberised cross-entropy (Menon et al., ICLR 2020), robust to wrong labels in pseudo-masks
    (Point-VOS, Sec. 4: STCN trained on pseudo-masks uses it in place of the bootstrapped CE).

    For the target class's probability p: ``-tau p + log(tau) + 1`` when ``p <= 1 / tau``, else ``-log p``. Both
    pieces equal ``log(tau)`` at ``p = 1 / tau`` with slope ``-tau``, so the loss is continuously differentiable; the
    gradient is bounded where the model confidently disagrees with the label (a likely pseudo-mask error).

    Args:
        logits: (B, C, H, W) float class logits.
        target: (B, H, W) int64 class per pixel.
        tau: > 1; larger is closer to plain cross-entropy (``tau = 10``: our default, the paper does not give it).
        reduction: ``"mean"`` or ``"none"``.

    Returns:
        A scalar, or (B, H, W) float.
    """
    if tau <= 1:
        raise ValueError(f"tau must be > 1, got {tau}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    log_p = torch.log_softmax(logits.float(), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    p = log_p.exp()
    loss = torch.where(p <= 1 / tau, -tau * p + math.log(tau) + 1, -log_p)
    return loss.mean() if reduction == "mean" else loss


def bootstrapped_cross_entropy(logits: Tensor, target: Tensor, iteration: int, *, start_warm: int = 20_000,
                               end_warm: int = 70_000, top_p: float = 0.15) -> tuple[Tensor, float]:
    """STCN's bootstrapped cross-entropy for dense masks (``model/losses.py``).

    Plain cross-entropy before ``start_warm``; then the mean over the hardest fraction p of each sample's pixels,
    p annealed linearly from 1 at ``start_warm`` to ``top_p`` at ``end_warm`` and ``top_p`` after. The mean over
    samples of the per-sample means, as STCN's loop over the batch.

    Args:
        logits: (B, C, H, W) float class logits.
        target: (B, H, W) int64 class per pixel.
        iteration: the training iteration.

    Returns:
        The scalar loss and the fraction p used.
    """
    if iteration < start_warm:
        return F.cross_entropy(logits.float(), target), 1.0
    raw = F.cross_entropy(logits.float(), target, reduction="none").flatten(1)  # (B, H W)
    if iteration > end_warm:
        p = top_p
    else:
        p = top_p + (1 - top_p) * (end_warm - iteration) / (end_warm - start_warm)
    return raw.topk(int(raw.shape[1] * p), dim=1, sorted=False).values.mean(), p
