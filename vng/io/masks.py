"""Masks on disk: palette PNGs (DAVIS / YouTube-VOS / Point-VOS renderings) and COCO RLE (pycocotools)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from vng.io.common import FormatError, Location, atomic_write
from vng.io.images import image_size, load_image

__all__ = ["DAVIS_PALETTE", "read_mask_png", "read_frame_mask", "write_mask_png", "rle_encode", "rle_decode",
           "check_rle"]


def _davis_palette() -> np.ndarray:
    """The 256-colour palette of DAVIS / YouTube-VOS annotations (the PASCAL VOC colour map); 255 stays white-ish."""
    palette = np.zeros((256, 3), np.uint8)
    for label in range(256):
        value, r, g, b = label, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[label] = (r, g, b)
    return palette


DAVIS_PALETTE: np.ndarray = _davis_palette()
DAVIS_PALETTE.setflags(write=False)


def read_mask_png(path: str | os.PathLike) -> np.ndarray:
    """A label PNG as (H, W) uint8 ids: the palette index of 'P' images, the grey value of 'L' and '1' images.

    Grey + alpha ('LA') reads as its grey channel: the official DAVIS-2016 480p package stores a mask that way
    (``bear/00077.png``), with the labels in the grey channel and an alpha that carries no label. RGB is refused:
    its colours would have to be mapped back to ids through a palette the file does not name.
    """
    image = load_image(path, what="mask image")
    if image.mode in ("P", "L", "1"):
        return np.array(image, dtype=np.uint8)
    if image.mode == "LA":
        return np.array(image.getchannel("L"), dtype=np.uint8)
    raise FormatError(f"expected a palette or greyscale label PNG, got mode {image.mode}", Location(str(path)))


def read_frame_mask(path: str | os.PathLike, frame: str | os.PathLike, what: str) -> np.ndarray:
    """:func:`read_mask_png` of the mask of the image ``frame``, whose size it must have: a mask of another size puts
    every point and pixel in the wrong place. ``what`` names the frame in the error, e.g. "sequence 'bear' frame
    '00001'"."""
    mask = read_mask_png(path)
    width, height = image_size(frame, what="frame image")
    if mask.shape != (height, width):
        raise FormatError(f"{what}: mask is {mask.shape[1]}x{mask.shape[0]}, frame is {width}x{height}",
                          Location(str(path)))
    return mask


def write_mask_png(path: str | os.PathLike, labels: np.ndarray, *, palette: np.ndarray = DAVIS_PALETTE) -> None:
    """Write (H, W) integer ids in [0, 255] as a palette PNG, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label mask must be (H, W), got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"label ids must lie in [0, 255], got [{labels.min()}, {labels.max()}] for {path}")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")


def rle_encode(mask: np.ndarray) -> dict:
    """(H, W) bool → COCO compressed RLE ``{"size": [h, w], "counts": str}`` (JSON-ready)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a binary mask must be (H, W), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def check_rle(rle, location: Location, field: str) -> dict:
    """Validate the shape of a COCO RLE dict (compressed string counts or uncompressed list counts)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise FormatError("expected a COCO RLE object with 'size' and 'counts'", location, field)
    size = rle["size"]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise FormatError(f"RLE size must be [height, width] positive ints, got {size!r}", location, f"{field}.size")
    if not isinstance(rle["counts"], (str, list)):
        raise FormatError("RLE counts must be a string or a list of ints", location, f"{field}.counts")
    if isinstance(rle["counts"], list) and sum(rle["counts"]) != size[0] * size[1]:
        raise FormatError(f"uncompressed RLE counts sum to {sum(rle['counts'])}, not {size[0] * size[1]}",
                          location, f"{field}.counts")
    return rle


def rle_decode(rle: dict) -> np.ndarray:
    """COCO RLE (compressed or uncompressed) → (H, W) bool."""
    height, width = rle["size"]
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, height, width)
    else:
        rle = {"size": [height, width], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)

