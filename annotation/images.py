"""The pictures the page shows, addressed by object and frame id, never by a path from the client.

Frame images are served as the files the task names. Rough masks and traces (0/1 PNGs) are served as transparent
overlays rendered here: a light fill with an opaque outline for the rough mask (the candidate under it stays
visible), the trace opaque and thickened, so that it still shows on the keyframe's thumbnail.
"""

from __future__ import annotations

import functools
import io
import posixpath
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from vng.io.masks import read_mask_png
from vng.types import TaskFrame, VerificationTask, parse_frame_id

from annotation.service import NotFound

__all__ = ["IMAGE_TYPES", "TaskFiles"]

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
# RGBA: the rough mask in cyan, light enough to see the pixels under it; the trace in yellow, as VidLN draws it,
# edged in black so that it stands out on any frame.
_MASK_FILL = (0, 200, 255, 50)
_MASK_EDGE = (0, 200, 255, 255)
_TRACE = (255, 214, 0, 255)
_TRACE_EDGE = (0, 0, 0, 255)

Overlay = Literal["mask", "trace"]


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (or on the frame's border)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def render_overlay(mask: np.ndarray, kind: Overlay) -> bytes:
    """A (H, W) bool mask as an RGBA PNG overlay (module docstring)."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    if kind == "trace":
        # A 3 px trace is a hair on the keyframe's thumbnail: drawn about 2 px wide there at any frame width.
        radius = max(1, mask.shape[1] // 200)
        rgba[_grow(mask, radius + max(1, radius // 2))] = _TRACE_EDGE
        rgba[_grow(mask, radius)] = _TRACE
    else:
        rgba[mask] = _MASK_FILL
        rgba[_outline(mask)] = _MASK_EDGE
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)  # fast: rendered on request
    return buffer.getvalue()


class TaskFiles:
    """Files of a task folder, looked up by (object id, frame id) through the task records."""

    def __init__(self, root: str | Path, tasks: dict[str, VerificationTask]) -> None:
        self.root = Path(root).resolve()
        self._tasks = tasks
        # Renders are small (mostly transparent) and asked for again on every reload: keep the recent ones.
        self.overlay = functools.lru_cache(maxsize=512)(self._overlay)

    def _frame(self, object_id: str, frame: str) -> TaskFrame:
        task = self._tasks.get(object_id)
        if task is None:
            raise NotFound(f"no object {object_id!r} among the tasks")
        try:
            index = parse_frame_id(frame)
        except ValueError:
            raise NotFound(f"no frame {frame!r}: frame ids are 6 digits") from None
        for candidate in (*task.frames, task.keyframe):
            if candidate.frame_index == index:
                return candidate
        raise NotFound(f"object {object_id} has no frame {frame}")

    def _path(self, relative: str) -> Path:
        # TaskFrame already refuses absolute paths and '..'; this repeats it where the file is opened, so that no
        # record can ever name a file outside the task folder.
        normal = posixpath.normpath(relative.replace("\\", "/"))
        if normal.startswith(("/", "../")) or normal == "..":
            raise NotFound(f"{relative!r} is outside the task folder")
        path = self.root / normal
        if not path.is_file():
            raise NotFound(f"missing file {normal} in the task folder")
        return path

    def image(self, object_id: str, frame: str) -> tuple[Path, str]:
        """The frame's image file and its media type."""
        path = self._path(self._frame(object_id, frame).image)
        media_type = IMAGE_TYPES.get(path.suffix.lower())
        if media_type is None:
            raise NotFound(f"{path.name}: not an image type the page shows ({', '.join(IMAGE_TYPES)})")
        return path, media_type

    def _overlay(self, object_id: str, frame: str, kind: Overlay) -> bytes:
        index = self._frame(object_id, frame).frame_index  # NotFound for an unknown object or frame
        task = self._tasks[object_id]
        if kind == "trace":
            source = task.keyframe if task.keyframe.frame_index == index else None
        else:
            source = next((candidate for candidate in task.frames if candidate.frame_index == index), None)
        if source is None or source.mask is None:
            raise NotFound(f"object {object_id} has no {'trace' if kind == 'trace' else 'rough mask'} on frame "
                           f"{frame}")
        return render_overlay(read_mask_png(self._path(source.mask)) > 0, kind)
