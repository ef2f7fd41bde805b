"""Image files read with located errors: every way PIL fails on a file becomes a FormatError naming the file.

PIL refuses an image of more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a decompression bomb: a small PNG
that would decode to gigabytes) and only warns between once and twice that; here both are refused. Raise
``PIL.Image.MAX_IMAGE_PIXELS`` to read larger images on purpose.
"""

from __future__ import annotations

import os
import warnings

from PIL import Image

from vng.io.common import FormatError, Location

__all__ = ["image_size", "load_image"]

# What PIL raises on a file it cannot read: OSError (unidentified, truncated, broken data), SyntaxError (some
# malformed headers), ValueError (bad values in a header) and the decompression-bomb error and warning.
_UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def _open(path: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def image_size(path: str | os.PathLike, *, what: str = "image") -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    path = str(path)
    try:
        with _open(path) as image:
            return image.size
    except _UNREADABLE as error:
        raise FormatError(f"cannot read {what}: {error}", Location(path)) from None


def load_image(path: str | os.PathLike, *, what: str = "image") -> Image.Image:
    """The whole image, decoded (the file is closed again); ``what`` names it in the error ("mask", "frame")."""
    path = str(path)
    try:
        with _open(path) as image:
            image.load()
            return image
    except _UNREADABLE as error:
        raise FormatError(f"cannot read {what}: {error}", Location(path)) from None
