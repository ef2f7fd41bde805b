"""DAVIS on disk (FORMATS.md §5).

Layout::

    <root>/JPEGImages/<resolution>/<sequence>/00000.jpg
    <root>/Annotations/<resolution>/<sequence>/00000.png     palette PNG of object ids (DAVIS-2016: 0/255 greyscale)
    <root>/ImageSets/<year>/{train,val}.txt                  one sequence name per line

Masks are returned as stored: DAVIS-2017 object ids, DAVIS-2016 0/255 (binarising is the caller's choice).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from vng.io.common import FormatError, Location, atomic_write, read_text
from vng.io.masks import read_frame_mask, write_mask_png
from vng.io.video import list_frame_files, write_frames

__all__ = ["read_davis_split", "write_davis_split", "davis_frame_paths", "davis_mask_paths", "read_davis_masks",
           "write_davis_sequence"]


def _split_path(root, year: str, split: str) -> Path:
    return Path(root) / "ImageSets" / str(year) / f"{split}.txt"


def read_davis_split(root: str | os.PathLike, *, year: str = "2017", split: str = "val") -> list[str]:
    """Sequence names of ``ImageSets/<year>/<split>.txt`` in file order (blank lines ignored)."""
    path = _split_path(root, year, split)
    if not path.is_file():
        raise FormatError("no such split file", Location(str(path)))
    sequences = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if len(name.split()) != 1 or "/" in name:
            raise FormatError(f"expected one sequence name per line, got {name!r:.60}", Location(str(path), number))
        if name in sequences:  # a repeated name would score the sequence twice
            raise FormatError(f"sequence {name!r} is listed twice", Location(str(path), number))
        sequences.append(name)
    return sequences


def write_davis_split(root: str | os.PathLike, sequences: Iterable[str], *, year: str = "2017",
                      split: str = "val") -> None:
    """Write ``ImageSets/<year>/<split>.txt`` (one name per line), atomically."""
    sequences = list(sequences)
    for name in sequences:
        if not isinstance(name, str) or not name or len(name.split()) != 1 or "/" in name:
            raise ValueError(f"a sequence name must be one word without '/', got {name!r}")
    with atomic_write(_split_path(root, year, split)) as handle:
        handle.writelines(f"{name}\n" for name in sequences)


def davis_frame_paths(root: str | os.PathLike, sequence: str, *, resolution: str = "480p") -> list[Path]:
    """The sequence's ``.jpg`` frames in order; FormatError naming the folder when missing or empty."""
    return list_frame_files(Path(root) / "JPEGImages" / resolution / sequence, suffixes=(".jpg",))


def davis_mask_paths(root: str | os.PathLike, sequence: str, *, resolution: str = "480p") -> list[Path]:
    """The sequence's ``.png`` annotations in order; FormatError naming the folder when missing or empty."""
    return list_frame_files(Path(root) / "Annotations" / resolution / sequence, suffixes=(".png",))


def read_davis_masks(root: str | os.PathLike, sequence: str, *, resolution: str = "480p") -> np.ndarray:
    """All annotations of a sequence: (T, H, W) uint8 object ids, one per frame of ``JPEGImages``.

    Raises:
        FormatError naming the sequence and frame when a frame has no mask, a mask has no frame, or a mask's size
        differs from its frame's.
    """
    frames = davis_frame_paths(root, sequence, resolution=resolution)
    masks = {p.stem: p for p in davis_mask_paths(root, sequence, resolution=resolution)}
    extra = sorted(set(masks) - {p.stem for p in frames})
    if extra:
        raise FormatError(f"sequence {sequence!r}: masks {extra} have no frame", Location(str(masks[extra[0]])))
    stack = []
    for frame in frames:
        if frame.stem not in masks:
            raise FormatError(f"sequence {sequence!r} frame {frame.stem!r}: no mask", Location(str(frame)))
        stack.append(read_frame_mask(masks[frame.stem], frame, f"sequence {sequence!r} frame {frame.stem!r}"))
    return np.stack(stack)


def write_davis_sequence(root: str | os.PathLike, sequence: str, frames: Iterable[np.ndarray],
                         masks: Iterable[np.ndarray] | None = None, *, resolution: str = "480p",
                         quality: int = 95) -> None:
    """Write a sequence in the DAVIS layout, frames named ``00000``, ``00001``, … (streamed, one file at a time).

    Args:
        frames: (H, W, 3) uint8 RGB, written as JPEG at ``quality``.
        masks: one (H, W) uint8 id mask per frame (palette PNG), or None for frames only.
    """
    root = Path(root)
    mask_folder = root / "Annotations" / resolution / sequence
    mask_iterator = None if masks is None else iter(masks)

    def frames_with_masks() -> Iterator[np.ndarray]:
        index = -1
        for index, frame in enumerate(frames):
            if mask_iterator is not None:
                mask = next(mask_iterator, None)
                if mask is None:
                    raise ValueError(f"sequence {sequence!r}: fewer masks than frames")
                if np.shape(mask) != np.shape(frame)[:2]:
                    raise ValueError(f"sequence {sequence!r} frame {index:05d}: mask shape {np.shape(mask)} differs "
                                     f"from the frame's {np.shape(frame)[:2]}")
                write_mask_png(mask_folder / f"{index:05d}.png", mask)
            yield frame
        if mask_iterator is not None and next(mask_iterator, None) is not None:
            raise ValueError(f"sequence {sequence!r}: more masks than the {index + 1} frames")

    write_frames(root / "JPEGImages" / resolution / sequence, frames_with_masks(), name_format="{:05d}",
                 quality=quality)
