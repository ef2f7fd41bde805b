"""Frame-to-frame motion shared by the training-free methods (``flow``, ``sam-propagator``): OpenCV DIS optical flow
at a reduced size, backward warping of per-pixel maps, point tracking with a forward-backward check, and the region
around clicks that moves on its own (not with the camera)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["OpticalFlow", "warp", "sample", "track_points", "camera_residual", "moving_region"]


class OpticalFlow:
    """DIS flow between frames of one video, computed on grey frames scaled to ``flow_size`` on their shorter side
    (never upscaled) and returned at the frame size in frame pixels.

    Usage: ``grey = flow.grey(image)`` once per frame, then ``flow(grey, previous_grey)`` is the backward flow that
    :func:`warp` takes (each pixel of this frame → where it was in the previous one) and ``flow(previous_grey,
    grey)`` the forward flow."""

    def __init__(self, width: int, height: int, flow_size: int, preset: int) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)
        factor = min(1.0, flow_size / min(width, height))
        self._size = (max(int(round(width * factor)), 1), max(int(round(height * factor)), 1))
        self._frame_size = (width, height)
        self._scale = np.array([width / self._size[0], height / self._size[1]], np.float32)

    def grey(self, image: np.ndarray) -> np.ndarray:
        """(h, w) uint8: an (H, W, 3) RGB frame in grey at the flow size."""
        return cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), self._size, interpolation=cv2.INTER_AREA)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32: for each pixel of ``source`` (a grey image of :meth:`grey`), its displacement (dx, dy)
        to ``target``, in frame pixels."""
        flow = self._dis.calc(source, target, None)
        return cv2.resize(flow, self._frame_size, interpolation=cv2.INTER_LINEAR) * self._scale


def warp(array: np.ndarray, flow: np.ndarray, fill: float) -> np.ndarray:
    """Carry a (H, W) map to the next frame with *backward* flow.

    Args:
        array: (H, W) values of the previous frame (logits, probabilities, a mask as 0 / 1).
        flow: (H, W, 2) float32, for each pixel (x, y) of the current frame the displacement (dx, dy) to where it was
            in the previous frame (:class:`OpticalFlow`'s ``flow(current, previous)``).
        fill: the value of pixels that come from outside the previous frame.

    Returns:
        (H, W) float32: ``array`` sampled bilinearly at (x + dx, y + dy).
    """
    height, width = array.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(array, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def sample(field_: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(N, ...) values of a (H, W, ...) field at the pixels of (N, 2) (x, y) points, clipped to the frame: a point
    lies in pixel (floor(x), floor(y)), as everywhere in the library."""
    height, width = field_.shape[:2]
    x = np.clip(np.floor(xy[:, 0]).astype(int), 0, width - 1)
    y = np.clip(np.floor(xy[:, 1]).astype(int), 0, height - 1)
    return field_[y, x]


def _inside_frame(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    return (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] <= width - 1) & (xy[:, 1] <= height - 1)


def track_points(xy: np.ndarray, forward: np.ndarray, backward: np.ndarray, tolerance: float) -> np.ndarray:
    """Carry points one frame on with the forward flow; keep those that pass the forward-backward check.

    Args:
        xy: (N, 2) float32 (x, y) pixels in the previous frame.
        forward: (H, W, 2) float32 flow previous -> current; backward: current -> previous.
        tolerance: px by which the round trip may miss the start.

    Returns:
        (M, 2) float32 (x, y) in the current frame, M <= N: the points that stayed inside the frame and whose round
        trip came back within ``tolerance`` (a failing point was occluded or its flow is unreliable).
    """
    if len(xy) == 0:
        return xy
    height, width = forward.shape[:2]
    moved = xy + sample(forward, xy)
    back = moved + sample(backward, moved)
    keep = (np.linalg.norm(back - xy, axis=1) <= tolerance) & _inside_frame(moved, width, height)
    return moved[keep].astype(np.float32)


def camera_residual(flow: np.ndarray, *, step: int, tolerance: float) -> np.ndarray:
    """(H, W) float32: the length of each pixel's flow that the camera's motion does not explain, in px.

    The camera's motion is a homography fitted by RANSAC (inliers within ``tolerance`` px) to the flow sampled on a
    grid of ``step`` px: where the background is most of the frame, the fit is the background's motion (a pan, a
    zoom, a rotation), and what moves on its own is left over. A fit that fails explains nothing (the flow itself).
    """
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[step // 2:height:step, step // 2:width:step]
    source = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    homography = None
    if len(source) >= 4:
        homography, _ = cv2.findHomography(source, source + flow[ys.ravel(), xs.ravel()], cv2.RANSAC, tolerance)
    if homography is None:
        return np.linalg.norm(flow, axis=2)
    grid_y, grid_x = np.mgrid[:height, :width].astype(np.float32)
    grid = np.stack([grid_x, grid_y], 2)
    camera = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(height, width, 2)
    return np.linalg.norm(grid + flow - camera, axis=2)


def moving_region(flows: list[np.ndarray], points: np.ndarray, *, residual: float, tolerance: float, radius: float,
                  step: int, opening: int) -> np.ndarray | None:
    """The region around ``points`` that moves on its own: the pixels whose :func:`camera_residual` exceeds
    ``residual`` px in every one of ``flows`` (from the points' frame to others; the camera fitted with ``tolerance``
    and ``step``), opened by an ``opening`` px square (flow noise), and of its connected parts those that hold a
    point, or are the most common within ``radius`` px of it.

    Args:
        flows: (H, W, 2) float32 flows from the frame of ``points`` (:class:`OpticalFlow`).
        points: (N, 2) (x, y) pixels; a point lies in pixel (floor(x), floor(y)), clipped to the frame.

    Returns:
        (H, W) bool, or None when no flow is given or no point has a moving part near it.
    """
    if not flows:
        return None
    moving = np.logical_and.reduce([camera_residual(flow, step=step, tolerance=tolerance) > residual
                                    for flow in flows])
    if opening > 1:
        moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((opening, opening), np.uint8))
    _, parts = cv2.connectedComponents(moving.astype(np.uint8))
    height, width = parts.shape
    reach = int(np.ceil(radius))
    points = np.asarray(points, np.float64).reshape(-1, 2)
    chosen = set()
    for (x, y), part in zip(np.floor(points).astype(int), sample(parts, points)):
        if part > 0:
            chosen.add(int(part))
            continue
        x, y = int(np.clip(x, 0, width - 1)), int(np.clip(y, 0, height - 1))
        near = parts[max(0, y - reach):y + reach + 1, max(0, x - reach):x + reach + 1]
        near = near[near > 0]
        if len(near):
            chosen.add(int(np.bincount(near).argmax()))
    return np.isin(parts, list(chosen)) if chosen else None
