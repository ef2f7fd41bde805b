"""Videos as lazy frame sequences: a video file (OpenCV) or a folder of frame images, behind one :class:`Video`.

Frames come out as (H, W, 3) uint8 RGB at the original size, decoded only when asked for::

    video = Video.open("clip.mp4")            # or Video.open("JPEGImages/480p/bear")
    width, height = video.size
    for name, frame in zip(video.frame_names, video):
        ...

For a video file, frame ``i`` is the ``i``-th frame OpenCV decodes from the start and its name is ``f"{i:06d}"``:
the Point-VOS ``frame_id`` convention (FORMATS.md §2). Container seeking is not frame-accurate for every codec, so
random access decodes forward from the current position (re-opening the file to go backwards) instead of seeking.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image

from vng.io.common import FormatError, Location, atomic_write
from vng.io.images import image_size, load_image
from vng.types import VideoRef, frame_id

__all__ = ["Video", "RenderedVideo", "FRAME_SUFFIXES", "SPLIT_NAMES", "video_name_variants", "video_candidates",
           "first_existing", "find_video", "list_frame_files", "video_ref", "read_frames", "write_video",
           "write_frames", "decode_to_disk"]

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def _natural_key(path: Path) -> list:
    # Digit runs compare as numbers, so unpadded names ("2.jpg" < "10.jpg") sort in frame order; zero-padded names
    # sort exactly as plain string order would.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def list_frame_files(folder: str | os.PathLike, *, suffixes: Sequence[str] = FRAME_SUFFIXES) -> list[Path]:
    """The frame images of ``folder`` in frame order; FormatError when the folder is missing, empty or ambiguous."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError("no such frame folder", Location(str(folder)))
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    if not files:
        raise FormatError(f"no frame images ({', '.join(suffixes)}) in the folder", Location(str(folder)))
    duplicates = sorted(stem for stem, count in Counter(p.stem for p in files).items() if count > 1)
    if duplicates:
        raise FormatError(f"frames {duplicates} exist with several extensions", Location(str(folder)))
    return sorted(files, key=_natural_key)


def _check_index(index) -> int:
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"frame index must be an int, got {type(index).__name__}")
    return int(index)


class Video(abc.ABC):
    """A video file or a frame folder; see the module docstring. Build with :meth:`Video.open`."""

    path: Path
    _size: tuple[int, int]  # set by each kind of video
    _fps: float | None = None

    @staticmethod
    def open(path: str | os.PathLike, *, exact_length: bool = True) -> Video:
        """Open a video file (anything OpenCV decodes) or a folder of .jpg/.jpeg/.png frames.

        Args:
            exact_length: video files only. True: ``len()`` decodes the file once (grab only, no colour conversion)
                to count the frames OpenCV really yields, because ``CAP_PROP_FRAME_COUNT`` comes from container
                metadata and can be off, while Point-VOS frame ids index decoded frames. False: trust the
                metadata when it is positive.
        """
        path = Path(path)
        if path.is_dir():
            return _FolderVideo(path)
        if not path.is_file():
            raise FormatError("no such video file or frame folder", Location(str(path)))
        return _FileVideo(path, exact_length=exact_length)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self._size

    @property
    def fps(self) -> float | None:
        """Frames per second from the container; None for frame folders."""
        return self._fps

    @property
    def frame_names(self) -> list[str]:
        """One name per frame: file stems for folders, ``f"{i:06d}"`` (the Point-VOS frame ids) otherwise."""
        return [frame_id(i) for i in range(len(self))]

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of frames."""

    @abc.abstractmethod
    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index`` (negative counts from the end): (H, W, 3) uint8 RGB."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[np.ndarray]:
        """Stream the frames in order, each (H, W, 3) uint8 RGB."""

    def _index(self, index: int) -> int:
        index = _check_index(index)
        length = len(self)
        if not -length <= index < length:
            raise IndexError(f"frame {index} is outside the {length} frames of {self.path}")
        return index % length

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class RenderedVideo(Video):
    """A video whose frames a function makes on demand: frames already in memory (:meth:`from_frames`), or drawn
    by a program (tests, benchmarks, a simulator) — nothing is read from disk.

    Args:
        render: frame index (0-based) → (H, W, 3) uint8 RGB of size ``size``.
        num_frames: how many frames.
        size: (width, height).
        name: what ``path`` says in messages; frame names are ``f"{i:06d}"`` (the Point-VOS frame ids).
    """

    def __init__(self, render: Callable[[int], np.ndarray], num_frames: int, size: tuple[int, int], *,
                 name: str = "rendered", fps: float | None = None):
        if num_frames < 1:
            raise ValueError(f"a video needs at least one frame, got {num_frames}")
        self.path = Path(name)
        self._render, self._num_frames, self._size, self._fps = render, int(num_frames), tuple(size), fps

    @classmethod
    def from_frames(cls, frames, *, name: str = "frames", fps: float | None = None) -> RenderedVideo:
        """A video of (T, H, W, 3) uint8 frames in memory (an array or a sequence of arrays)."""
        if len(frames) == 0:
            raise ValueError("no frames")
        height, width = np.asarray(frames[0]).shape[:2]
        return cls(lambda index: frames[index], len(frames), (width, height), name=name, fps=fps)

    def __len__(self) -> int:
        return self._num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        return self._render(self._index(index))

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self._render(index) for index in range(self._num_frames))


class _FolderVideo(Video):
    def __init__(self, folder: Path):
        self.path = folder
        self._files = list_frame_files(folder)
        self._size = image_size(self._files[0], what="frame image")

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self._files]

    def __len__(self) -> int:
        return len(self._files)

    def _load(self, path: Path) -> np.ndarray:
        frame = np.asarray(load_image(path, what="frame image").convert("RGB"), dtype=np.uint8)
        if (frame.shape[1], frame.shape[0]) != self._size:
            raise FormatError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the video's first frame is "
                              f"{self._size[0]}x{self._size[1]}", Location(str(path)))
        return frame

    def __getitem__(self, index: int) -> np.ndarray:
        return self._load(self._files[self._index(index)])

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self._files:
            yield self._load(path)


class _FileVideo(Video):
    def __init__(self, path: Path, *, exact_length: bool):
        self.path = path
        self._reader: cv2.VideoCapture | None = None  # the random-access decoder, opened on demand
        self._position = 0  # index of the frame that reader decodes next
        capture = self._capture()
        try:
            self._fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
            metadata_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            ok, first = capture.read()  # some containers report no size: the first decoded frame is the truth
            if not ok:
                raise FormatError("OpenCV decodes no frame from this video", Location(str(path)))
        finally:
            capture.release()
        self._size = (first.shape[1], first.shape[0])
        self._container_count = metadata_count if metadata_count > 0 else None
        self._length = None if exact_length else self._container_count

    def _capture(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise FormatError("OpenCV cannot open this video", Location(str(self.path)))
        return capture

    def __len__(self) -> int:
        if self._length is None:
            capture = self._capture()
            try:
                count = 0
                while capture.grab():
                    count += 1
            finally:
                capture.release()
            self._decoding_ended(count)
        return self._length

    def _decoding_ended(self, count: int) -> None:
        """Decoding stopped after ``count`` frames: that is the length, unless the container lists more frames, which
        means the file is damaged (an mp4 with broken bytes mid-file decodes up to them and stops without an error)."""
        self._length = count
        if self._container_count is not None and count < self._container_count:
            raise FormatError(f"OpenCV decodes {count} of the {self._container_count} frames the container lists: the "
                              "file is damaged or cut short (re-encode it, or extract its frames to a folder)",
                              Location(str(self.path)))

    def __getitem__(self, index: int) -> np.ndarray:
        index = _check_index(index)
        if index < 0 or self._length is not None:
            index = self._index(index)
        # else: decode forward without counting the frames first, which would cost a full extra pass
        if self._reader is None or index < self._position:
            self.close()
            self._reader, self._position = self._capture(), 0
        while self._position < index and self._reader.grab():
            self._position += 1
        ok, frame = self._reader.read() if self._position == index else (False, None)
        if not ok:
            self.close()
            self._decoding_ended(self._position)  # decoding ended here: now the count is known
            raise IndexError(f"frame {index} is outside the {self._length} frames OpenCV decodes from {self.path}")
        self._position += 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[np.ndarray]:
        # A capture of its own: iterating never disturbs the random-access reader.
        capture = self._capture()
        try:
            count = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                count += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            self._decoding_ended(count)  # a full pass is an exact count for free
        finally:
            capture.release()

    def close(self) -> None:
        """Release the random-access decoder (it is re-opened on demand)."""
        if self._reader is not None:
            self._reader.release()
            self._reader = None

    def __del__(self) -> None:
        self.close()


def decode_to_disk(path: str | os.PathLike, folder: str | os.PathLike) -> Video:
    """A video for random access in any order: a frame folder as it is; a video file decoded once into
    ``<folder>/frames.raw`` (H x W x 3 bytes a frame) and read back by index without decoding. Reading a video file
    backwards otherwise decodes it from the start for every frame (``Video`` never seeks); a PNG cache costs ~90 ms
    a 768x490 frame to write against 6 ms to decode. The caller deletes ``folder`` when done."""
    video = Video.open(path, exact_length=False)
    if not isinstance(video, _FileVideo):
        return video
    raw = Path(folder) / "frames.raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    with open(raw, "wb") as handle:
        for frame in video:  # one decoding pass, streamed; it also counts the frames exactly
            handle.write(np.ascontiguousarray(frame).tobytes())
    width, height = video.size
    frames = np.memmap(raw, np.uint8, "r", shape=(len(video), height, width, 3))
    return RenderedVideo(lambda index: np.array(frames[index]), len(frames), video.size, name=str(video.path),
                         fps=video.fps)


def _check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index} must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return frame


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps: float = 10.0) -> None:
    """Encode (H, W, 3) uint8 RGB frames as an MPEG-4 Part 2 ('mp4v') .mp4, atomically.

    All frames must share one size, with even width and height: the encoder silently crops odd sizes, which would
    shift every (x, y) annotation made on the original frames. The file is written under a temporary ``.mp4`` name in
    the same folder (OpenCV picks the container from the suffix) and renamed over ``path`` when complete.
    """
    target = Path(path)
    if target.suffix.lower() != ".mp4":
        raise ValueError(f"write_video writes .mp4 files, got {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".mp4", dir=target.parent)
    os.close(descriptor)
    writer = None
    try:
        size = None
        for index, frame in enumerate(frames):
            frame = _check_frame(frame, index)
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                if size[0] % 2 or size[1] % 2:
                    raise ValueError(f"mp4v needs even frame sizes, got {size[0]}x{size[1]}")
                writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot open an mp4v writer for {target}")
            elif (frame.shape[1], frame.shape[0]) != size:
                raise ValueError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, the first is "
                                 f"{size[0]}x{size[1]}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if writer is None:
            raise ValueError(f"no frames to write to {target}")
        writer.release()
        os.replace(temporary, target)
    except BaseException:
        if writer is not None:
            writer.release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_frames(folder: str | os.PathLike, frames: Iterable[np.ndarray], *, names: Sequence[str] | None = None,
                 extension: str = ".jpg", quality: int = 95, name_format: str = "{:06d}") -> list[Path]:
    """Write (H, W, 3) uint8 RGB frames as ``<folder>/<name><extension>``, streamed, each file atomically.

    Args:
        names: file stems, one per frame; default ``name_format.format(i)``: ``f"{i:06d}"`` is the Point-VOS frame
            id of frame ``i``, DAVIS uses ``"{:05d}"``.
        extension: ".jpg"/".jpeg" (JPEG at ``quality``) or ".png" (lossless).

    Returns:
        The written paths, in frame order.
    """
    extension = extension.lower()
    if extension not in FRAME_SUFFIXES:
        raise ValueError(f"extension must be one of {FRAME_SUFFIXES}, got {extension!r}")
    options = {"format": "PNG"} if extension == ".png" else {"format": "JPEG", "quality": quality}
    folder = Path(folder)
    paths = []
    for index, frame in enumerate(frames):
        if names is not None and index >= len(names):
            raise ValueError(f"more frames than the {len(names)} names given")
        name = name_format.format(index) if names is None else names[index]
        image = Image.fromarray(_check_frame(frame, index), mode="RGB")
        with atomic_write(folder / f"{name}{extension}", "wb") as handle:
            image.save(handle, **options)
        paths.append(folder / f"{name}{extension}")
    if names is not None and len(paths) != len(names):
        raise ValueError(f"{len(names)} names given for {len(paths)} frames")
    return paths


SPLIT_NAMES = ("train", "val", "test")


def video_name_variants(video_name: str) -> list[str]:
    """The names a video may be stored under: the Point-VOS release's ``video_name`` can carry its split as a prefix
    (``"train/False Start! - … _ FailArmy31"``, FORMATS.md §2), so a name with such a prefix is tried as written,
    then without it."""
    head, _, tail = video_name.partition("/")
    return [video_name, tail] if tail and head in SPLIT_NAMES else [video_name]


def video_candidates(videos: str | os.PathLike, video_name: str | None, *,
                     object_id: str | None = None) -> list[Path]:
    """Where the frames of ``video_name`` may be in the folder ``videos``, in the order :func:`find_video` tries."""
    videos = Path(videos)
    names = video_name_variants(video_name) if video_name is not None else []
    return ([path for name in names for path in (videos / f"{name}.mp4", videos / name)]
            + ([videos / object_id] if object_id is not None else []))


def first_existing(candidates: Sequence[Path], what: str, location: Location) -> Path:
    """The first of ``candidates`` that exists (``.mp4``: a file; else a folder); a FormatError naming them all."""
    for path in candidates:
        if path.is_file() if path.suffix == ".mp4" else path.is_dir():
            return path
    raise FormatError(f"{what} not found; tried {', '.join(map(str, dict.fromkeys(candidates)))}", location,
                      "video_name")


def find_video(videos: str | os.PathLike, video_name: str | None, *, object_id: str | None = None) -> Path:
    """The frames of ``video_name`` in the folder ``videos``: ``<videos>/<video_name>.mp4`` (the release layout,
    ``<Dataset>/videos/<split>``), else the frame folder ``<videos>/<video_name>`` (DAVIS ``JPEGImages/480p``,
    YouTube-VOS ``train/JPEGImages``), each also without a split prefix (:func:`video_name_variants`); else, given
    ``object_id``, the frame folder ``<videos>/<object_id>`` (the release's extracted frames, keyed by object:
    ``<Dataset>/<split>/JPEGImages``).

    Raises:
        FormatError naming every path tried when none exists.
    """
    return first_existing(video_candidates(videos, video_name, object_id=object_id), f"video {video_name!r}",
                          Location(str(videos), record=object_id))


def video_ref(path: str | os.PathLike, name: str | None = None, *, exact_length: bool = False) -> VideoRef:
    """What checking annotations against a video needs: its frame count and size (``name``: default the file's or
    folder's name). A video file's count is the container's, which costs no decoding; a file that decodes fewer
    frames is found out when they are read (:class:`Video` raises a FormatError then). ``exact_length``: the count
    of the frames that decode, found by decoding them all (what a pipeline that reads every frame must know first).
    """
    video = Video.open(path, exact_length=exact_length)
    width, height = video.size
    return VideoRef(name or Path(path).stem, str(path), num_frames=len(video), width=width, height=height)


def read_frames(path: str | os.PathLike, indices: Iterable[int], location: Location | None = None
                ) -> dict[int, np.ndarray]:
    """``{index: (H, W, 3) uint8 RGB}`` for the 0-based decode-order ``indices`` of a video file or frame folder,
    read forward once. A missing video or a frame past the end raises a FormatError located at ``location``
    (e.g. the annotation record that asked for it) or at the video."""
    location = location or Location(str(path))
    if not Path(path).exists():
        raise FormatError(f"video not found: {path}", location, "video_name")
    video = Video.open(path, exact_length=False)
    try:
        return {index: video[index] for index in sorted(set(indices))}
    except IndexError as error:
        raise FormatError(f"frame does not exist: {error}", location, "annotated_points") from None
