"""Overlays for people to look at: traces, masks and points drawn over frames (RGB uint8 in, RGB uint8 out)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PALETTE", "overlay_mask", "draw_label", "overlay_labels", "write_overlay_video"]

# Distinct, colour-blind-friendly colours (Okabe–Ito) for up to 8 objects; cycled beyond.
PALETTE = np.array([(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
                    (204, 121, 167), (255, 255, 255)], np.uint8)


def overlay_mask(image: np.ndarray, mask: np.ndarray, color, *, alpha: float = 0.6) -> np.ndarray:
    """Blend ``color`` into the (H, W) bool ``mask`` pixels of the (H, W, 3) uint8 ``image`` (a copy)."""
    out = image.copy()
    mask = np.asarray(mask, bool)
    out[mask] = (alpha * np.asarray(color, np.float32) + (1 - alpha) * out[mask]).astype(np.uint8)
    return out


def draw_label(image: np.ndarray, text: str, *, origin: tuple[int, int] = (4, 4), color=(255, 255, 255),
               scale: float | None = None) -> np.ndarray:
    """Write ``text`` on a dark box at ``origin`` (top-left, pixels); the font scales with the image height."""
    out = image.copy()
    scale = scale or max(0.35, image.shape[0] / 720)
    thickness = max(1, round(scale * 2))
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = origin
    cv2.rectangle(out, (x, y), (x + width + 4, y + height + baseline + 4), (0, 0, 0), thickness=-1)
    cv2.putText(out, text, (x + 2, y + height + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in color),
                thickness, lineType=cv2.LINE_AA)
    return out


def overlay_labels(image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
    """Each object id of the (H, W) uint8 ``labels`` blended into the (H, W, 3) uint8 ``image`` in its
    :data:`PALETTE` colour (id 1 the first colour, cycling), with its outline drawn solid."""
    out = image.copy()
    for object_id in np.unique(labels):
        if object_id == 0:
            continue
        mask = labels == object_id
        colour = PALETTE[(int(object_id) - 1) % len(PALETTE)]
        out = overlay_mask(out, mask, colour, alpha=alpha)
        edge = mask & ~cv2.erode(mask.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        out[edge] = colour
    return out


def write_overlay_video(video, masks_dir, path, *, fps: float | None = None) -> None:
    """``path`` (.mp4): every frame of ``video`` (:class:`vng.io.video.Video`) with the id masks
    ``<masks_dir>/<frame name>.png`` overlaid (:func:`overlay_labels`); frames without a mask file are shown as
    they are. Odd frame sizes are padded by a pixel (the mp4 encoder needs even sizes)."""
    from pathlib import Path

    from vng.io.masks import read_mask_png
    from vng.io.video import write_video

    masks_dir = Path(masks_dir)

    def frames():
        for name, image in zip(video.frame_names, video):
            mask_path = masks_dir / f"{name}.png"
            if mask_path.is_file():
                image = overlay_labels(image, read_mask_png(mask_path))
            yield np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)))

    write_video(path, frames(), fps=fps or video.fps or 10.0)
