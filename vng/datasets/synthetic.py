"""The embedded sample dataset: synthetic videos of coloured shapes, written in every release format.

``generate_sample_data(out_dir, seed=0)`` (CLI: ``vng sample-data --out DIR``) renders short videos of 1–3 textured,
moving shapes ("the red circle", "the blue square") over textured grey backgrounds, with dense instance masks, and
derives from the same scenes everything the project reads: VidLN narratives with timed words and mouse traces,
Point-VOS point annotations (PV-Oops / PV-Kinetics style) with pseudo-masks, DAVIS and YouTube-VOS layouts, VNG
expression files and COCO-PNG panoptic narrative grounding. No download is needed; the same seed gives byte-identical
JSON, masks and frames.

Output layout (``<out>/``)::

    index.json                                    what was written: counts per format and split
    vidln/{train,val,kinetics_train}.jsonl        VidLN narratives (one per video)
    frames/<dataset_id>/<video_id>/<frame>.jpg    all frames; frame stems are f"{i:06d}" (= Point-VOS frame_id)
    videos/<dataset_id>/<video_id>.mp4            the same videos as mp4
    Oops/{train,val}.json                         PV-Oops-style point annotations
    Oops/videos/{train,val}/<video>.mp4
    Oops/pseudo_masks/<split>/<object_id>/<frame_id>.png     0/1 masks of the annotated frames (degraded GT)
    Oops/val_masks/<object_id>/<frame_id>.png     PV-Oops benchmark ground truth: true masks, 3 frames per object
    Kinetics/train.jsonl                          PV-Kinetics-style point annotations (their own videos)
    Kinetics/videos/train/<video>.mp4
    Kinetics/pseudo_masks/train/<object_id>/<frame_id>.png
    DAVIS/{JPEGImages,Annotations}/480p/<seq>/... + ImageSets/2017/{train,val}.txt
    YouTubeVOS/{train,valid}/{JPEGImages,Annotations}/<vid>/... + meta.json
    VNG/{train,val}/meta_expressions.json + extra_masks.json + vis_annotations.json
    COCO-PNG/png_coco_{train2017,val2017}.json + panoptic_{train2017,val2017}.json + panoptic PNGs and images

Dataset ids: ``synthetic_train``, ``synthetic_val`` (the Oops-like videos, also used for DAVIS / YouTube-VOS / VNG)
and ``synthetic_kinetics`` (the Kinetics-like videos, train only, as PV-Kinetics has no val split).
Object ids are ``md5("vng-synthetic/<seed>/<video_id>/<track_id>")`` (32 hex); mask label ``track_id`` = 1, 2, 3
in painting order (a higher id is drawn in front).

What is simplified on purpose (so users know what the sample data can and cannot test):

- The "annotator" is the ground truth: fg points are ACCEPTED, bg points REJECTED, and the 3 points per frame
  sampled on the object boundary are AMBIGUOUS (the paper's uncertain candidates, Sec. 3.2).
- Pseudo-masks are the ground-truth mask eroded or dilated by 1–2 px (a stand-in for DynaMITe/SAM from points).
- Captions come from templates: "A red circle moves to the left and bounces off the left wall, passing behind the
  blue square." Each narrative has one deliberately wrong ``noun_segments`` entry (a verb tagged as a noun), as the
  automatically tagged VidLN segments sometimes are.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from vng.io.coco_png import (PanopticImage, PanopticSegment, write_panoptic_annotations, write_panoptic_png,
                             write_png_narratives)
from vng.io.common import write_json
from vng.io.davis import write_davis_sequence, write_davis_split
from vng.io.masks import rle_encode, write_mask_png
from vng.io.pointvos import pseudo_mask_path, pv_video_path, write_pv_annotations
from vng.io.video import write_frames, write_video
from vng.io.vidln import write_narratives
from vng.io.vng_format import write_extra_masks, write_meta_expressions, write_vis_annotations
from vng.io.ytvos import YTVOSObject, write_ytvos_meta, write_ytvos_video
from vng.points import evenly_spaced_frames, sample_points
from vng.protocol import MAX_GT_FRAMES
from vng.types import (ActorNarrative, FramePoints, MaskTrack, Narrative, ObjectAnnotation, PNGNarrative, PNGSegment,
                       PointLabel, Points, TraceSegment, VISVideo, VNGActor, VNGExpression, VNGVideo, WordTiming,
                       frame_id)

__all__ = ["SampleDataConfig", "SampleData", "generate_sample_data", "SHAPES", "COLOURS", "PNG_CATEGORIES",
           "ObjectTrack", "BackgroundStyle", "Scene", "Mention", "SceneNarrative", "SampleVideo", "PNGSample",
           "make_scene", "make_narrative", "make_point_annotations", "make_pseudo_masks", "make_png_sample",
           "sample_object_points", "object_id_for"]

# Shapes that stay distinct at 20–50 px and under rotation (a rotated square is not mistaken for a diamond because
# there is no diamond).
SHAPES = ("circle", "square", "triangle", "star", "cross")
# Saturated colours, far apart in hue, so that a caption's colour word is visible in the pixels; backgrounds are
# desaturated greys so that they never look like one of these.
COLOURS = {
    "red": (215, 35, 35),
    "green": (40, 175, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 35),
    "purple": (145, 55, 195),
    "orange": (245, 135, 25),
}
# Tints of the grey backgrounds, named in the background actor's caption.
_TINTS = {"grey": (0, 0, 0), "beige": (14, 6, -12), "bluish grey": (-10, -2, 12), "greenish grey": (-8, 9, -8)}
# Seed-sequence entry per source of videos: independent streams, so that train, val, Kinetics and COCO-PNG never
# share a video, and adding videos to one split leaves the others unchanged.
_STREAMS = {"train": 0, "val": 1, "kinetics": 2, "png_train2017": 3, "png_val2017": 4}
_EPOCH_MS = 1_650_000_000_000  # recordings "happen" in 2022, like the public VidLN release


@dataclass(frozen=True)
class SampleDataConfig:
    """Sizes and counts of the sample dataset. The defaults generate in a few seconds on one CPU core."""

    width: int = 160  # px; small for fast CPU training, divisible by 32 (stride-16/32 backbones need no padding)
    height: int = 128  # px; 5:4 keeps objects of 20-50 px well inside the frame
    num_frames: int = 20  # frames per video: >= 10 so that 10 frames can be annotated (Sec. 3.1), yet short
    fps: int = 10  # of the mp4 files; 2 s clips like a short Oops / Kinetics excerpt
    num_train_videos: int = 8  # Oops-like train videos (also DAVIS / YouTube-VOS / VNG train)
    num_val_videos: int = 4  # val videos: other seeds and other object combinations than train
    num_kinetics_videos: int = 4  # PV-Kinetics-style videos (train only: PV-Kinetics has no val split)
    num_png_images: int = 6  # COCO-PNG images per split (train2017, val2017)
    max_objects: int = 3  # objects per video: 1..max, distinct shapes and colours within a video
    min_radius: float = 12.0  # px, object size at the first frame; 12 px keeps >= 7 fg points 5 px apart
    max_radius: float = 22.0  # px; large enough to read texture, small enough to move and bounce in 160x128
    min_visible_area: int = 120  # px; every object stays this visible in every frame despite occlusion
    num_keyframes: int = 10  # VidLN keyframes per video (the public release has 10)
    keyframes_per_actor: int = 3  # keyframe_selection_indices per object actor (typical of VidLN)
    num_annotated_frames: int = 10  # Point-VOS annotates 10 evenly spaced frames per object (Sec. 3.1)
    num_fg_points: int = 7  # per annotated frame: 7 fg / 10 bg / 3 uncertain candidates (Sec. 3.2)
    num_bg_points: int = 10
    num_ambiguous_points: int = 3
    min_point_distance: float = 5.0  # px; the paper's d = 20 px at 480p, scaled to 128 px high frames
    pseudo_mask_max_radius: int = 2  # px; pseudo-mask = GT eroded or dilated by 1..this (stand-in for DynaMITe)
    jpeg_quality: int = 95  # frames are JPEG like the real releases; high quality keeps colours clean

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            # mp4v crops odd sizes, which would shift every annotation
            raise ValueError(f"frames must be at least 64x64 with even sides, got {self.width}x{self.height}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if not 1 <= self.max_objects <= min(len(SHAPES), len(COLOURS)):
            raise ValueError(f"max_objects must be in [1, {min(len(SHAPES), len(COLOURS))}], got {self.max_objects}")
        if not 0 < self.min_radius <= self.max_radius < min(self.width, self.height) / 4:
            raise ValueError("need 0 < min_radius <= max_radius < min(width, height) / 4")
        if not 1 <= self.keyframes_per_actor <= min(5, self.num_keyframes):
            # More would leave each trace segment too little of the subject's pause (~2 s) to be drawn in.
            raise ValueError(f"keyframes_per_actor must be in [1, {min(5, self.num_keyframes)}]")
        for name in ("num_train_videos", "num_val_videos", "num_kinetics_videos", "num_png_images", "num_keyframes",
                     "num_annotated_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


# ---------------------------------------------------------------------------------------------------------------------
# Scenes: motion, rendering, masks
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ObjectTrack:
    """One object of a scene and its motion.

    Attributes:
        track_id: its label in the instance masks (1-based, painting order: a higher id is drawn in front).
        centres: (T, 2) float64, (x, y) pixels per frame.
        radii: (T,) float64, outer radius in px per frame.
        angles: (T,) float64, rotation in radians per frame.
        direction: main axis of the initial motion: "left", "right", "up" or "down".
        bounce: the wall of the first bounce ("left", "right", "top", "bottom") or None.
        scale_change: "grows", "shrinks" or None.
    """

    track_id: int
    shape: str
    colour: str
    centres: np.ndarray
    radii: np.ndarray
    angles: np.ndarray
    direction: str
    bounce: str | None
    scale_change: str | None
    pattern: str  # texture: "stripes", "rings" or "plain"
    brightness: float  # multiplies the colour (texture variety without changing its name)

    @property
    def noun(self) -> str:
        """The noun phrase naming the object: colour + shape ("red circle")."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class BackgroundStyle:
    kind: str  # "speckles", "stripes", "gradient" or "checker"
    tint: str  # key of _TINTS
    description: str  # "a grey wall with vertical stripes"
    nouns: tuple[str, ...]  # substrings of the description tagged as nouns


@dataclass(frozen=True, eq=False)
class Scene:
    """A rendered video with its dense instance masks.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        labels: (T, H, W) uint8 instance masks: 0 background, ``track_id`` of the visible object elsewhere.
    """

    video_id: str
    frames: np.ndarray
    labels: np.ndarray
    objects: tuple[ObjectTrack, ...]
    background: BackgroundStyle

    @property
    def frame_names(self) -> tuple[str, ...]:
        return tuple(frame_id(i) for i in range(len(self.frames)))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.frames.shape[2], self.frames.shape[1]

    def mask(self, track_id: int, frame_index: int) -> np.ndarray:
        """(H, W) bool: the visible pixels of one object in one frame."""
        return self.labels[frame_index] == track_id

    def visible_areas(self) -> np.ndarray:
        """(num_objects, T) int: visible pixels per object and frame."""
        return np.array([[int(np.count_nonzero(self.labels[t] == obj.track_id)) for t in range(len(self.labels))]
                         for obj in self.objects])


def _unit_polygon(shape: str) -> np.ndarray:
    """(N, 2) vertices of a shape of outer radius 1 centred at 0."""
    if shape == "circle":
        angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return np.stack([np.cos(angles), np.sin(angles)], 1)
    if shape == "square":
        half = 1 / np.sqrt(2)
        return np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    if shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        return np.stack([np.cos(angles), np.sin(angles)], 1)
    if shape == "star":
        angles = np.deg2rad(np.arange(10) * 36 - 90)
        radius = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)
    if shape == "cross":
        a, b = 1 / np.sqrt(2), 0.3
        return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b],
                         [-a, -b], [-b, -b]])
    raise ValueError(f"unknown shape {shape!r}")


def _shape_mask(shape: str, centre: np.ndarray, radius: float, angle: float, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool, the shape rasterised without antialiasing (sharp masks = exact ground truth)."""
    width, height = size
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    vertices = _unit_polygon(shape) @ rotation.T * radius + centre
    canvas = np.zeros((height, width), np.uint8)
    # 4 fractional bits: sub-pixel vertices, so slow motion and scale changes are smooth rather than in 1 px jumps.
    cv2.fillPoly(canvas, [np.rint(vertices * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """(H, W) float32 noise in about [-1, 1], smooth over ``cell`` px (bicubic upsampling of coarse noise)."""
    width, height = size
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) / 1.5


def _make_background(rng: np.random.Generator, size: tuple[int, int], *, kind: str | None = None,
                     noun: str = "wall") -> tuple[np.ndarray, BackgroundStyle]:
    """A textured, desaturated background (H, W, 3) float32 and its description."""
    width, height = size
    kind = kind or str(rng.choice(["speckles", "stripes", "gradient", "checker"]))
    tint = str(rng.choice(list(_TINTS)))
    grey = rng.uniform(85, 165)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "speckles":
        pattern = 22 * _smooth_noise(rng, size, 12) + 8 * rng.standard_normal((height, width))
        description, nouns = f"a {tint} {noun} with dark speckles", (noun, "speckles")
    elif kind == "stripes":
        orientation = str(rng.choice(["vertical", "horizontal", "diagonal"]))
        axis = {"vertical": xs, "horizontal": ys, "diagonal": (xs + ys) / np.sqrt(2)}[orientation]
        pattern = 28 * np.sign(np.sin(2 * np.pi * axis / rng.uniform(8, 18))) + 4 * rng.standard_normal((height, width))
        description, nouns = f"a {tint} {noun} with {orientation} stripes", (noun, "stripes")
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height)
        pattern = 70 * (ramp - ramp.mean()) + 10 * _smooth_noise(rng, size, 6)
        description, nouns = f"a {tint} {noun} that fades from light to dark", (noun,)
    elif kind == "checker":
        cell = int(rng.integers(10, 20))
        pattern = 22 * np.where(((xs // cell) + (ys // cell)) % 2 == 0, 1.0, -1.0) + 5 * _smooth_noise(rng, size, 4)
        description, nouns = f"a {tint} {noun} with a checkered pattern", (noun, "pattern")
    else:
        raise ValueError(f"unknown background kind {kind!r}")
    image = grey + pattern[..., None] + np.asarray(_TINTS[tint], np.float32)
    return image.astype(np.float32), BackgroundStyle(kind, tint, description, nouns)


def _sample_motion(rng: np.random.Generator, config: SampleDataConfig, track_id: int, shape: str,
                   colour: str) -> ObjectTrack:
    """Constant velocity with elastic bounces off the frame edges, exponential scale change, slow rotation."""
    width, height, steps = config.width, config.height, config.num_frames
    radius0 = rng.uniform(config.min_radius, config.max_radius)
    scale_change = rng.choice(["grows", "shrinks", None], p=[0.3, 0.3, 0.4])
    ratio = {"grows": rng.uniform(1.3, 1.6), "shrinks": rng.uniform(0.6, 0.77), None: 1.0}[scale_change]
    radii = radius0 * ratio ** (np.arange(steps) / max(steps - 1, 1))
    # The direction in the caption must be right: move within 25 degrees of one axis.
    direction = str(rng.choice(["left", "right", "up", "down"]))
    base = {"right": 0.0, "down": 90.0, "left": 180.0, "up": 270.0}[direction]
    heading = np.deg2rad(base + rng.uniform(-25, 25))
    speed = rng.uniform(1.5, 4.0) * 20 / steps  # px per frame: about 30-80 px over the clip, whatever its length
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
    margin = radii.max()
    position = np.array([rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)])
    centres, bounce = [], None
    for t in range(steps):
        centres.append(position.copy())
        position = position + velocity
        for axis, low_side, high_side, limit in ((0, "left", "right", width), (1, "top", "bottom", height)):
            if position[axis] < radii[t]:
                position[axis], velocity[axis] = 2 * radii[t] - position[axis], -velocity[axis]
                bounce = bounce or low_side
            elif position[axis] > limit - radii[t]:
                position[axis], velocity[axis] = 2 * (limit - radii[t]) - position[axis], -velocity[axis]
                bounce = bounce or high_side
    spin = 0.0 if shape == "circle" else rng.uniform(-0.06, 0.06)  # rad per frame
    angles = rng.uniform(0, 2 * np.pi) + spin * np.arange(steps)
    return ObjectTrack(track_id=track_id, shape=shape, colour=colour, centres=np.array(centres), radii=radii,
                       angles=angles, direction=direction, bounce=bounce, scale_change=scale_change,
                       pattern=str(rng.choice(["stripes", "rings", "plain"])), brightness=rng.uniform(0.9, 1.05))


def _render_labels(objects: tuple[ObjectTrack, ...], size: tuple[int, int], steps: int) -> np.ndarray:
    """(T, H, W) uint8 instance masks; later objects overwrite earlier ones (occlusion)."""
    width, height = size
    labels = np.zeros((steps, height, width), np.uint8)
    for t in range(steps):
        for obj in objects:
            labels[t][_shape_mask(obj.shape, obj.centres[t], obj.radii[t], obj.angles[t], size)] = obj.track_id
    return labels


def _object_texture(obj: ObjectTrack, t: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 brightness factor of the object's texture, fixed to the object (moves, turns and scales)."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = xs - obj.centres[t, 0], ys - obj.centres[t, 1]
    radius = obj.radii[t]
    if obj.pattern == "stripes":
        along = np.cos(obj.angles[t]) * dx + np.sin(obj.angles[t]) * dy
        texture = 0.9 + 0.1 * np.sin(2 * np.pi * along / (0.5 * radius))
    elif obj.pattern == "rings":
        texture = 0.9 + 0.1 * np.cos(2 * np.pi * np.hypot(dx, dy) / (0.45 * radius))
    else:
        texture = 1.0 - 0.1 * np.hypot(dx, dy) / radius  # soft shading towards the rim
    return (obj.brightness * texture).astype(np.float32)


def _render_frames(background: np.ndarray, objects: tuple[ObjectTrack, ...], labels: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames: background, textured objects where the masks say, mild sensor noise."""
    steps, height, width = labels.shape
    frames = np.empty((steps, height, width, 3), np.uint8)
    for t in range(steps):
        image = background.copy()
        for obj in objects:
            where = labels[t] == obj.track_id
            texture = _object_texture(obj, t, (width, height))
            image[where] = np.asarray(COLOURS[obj.colour], np.float32) * texture[where][:, None]
        image += rng.normal(0, 2.0, image.shape).astype(np.float32)
        frames[t] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return frames


def make_scene(video_id: str, rng: np.random.Generator, config: SampleDataConfig, *,
               exclude: frozenset[frozenset[str]] = frozenset(), max_attempts: int = 200) -> Scene:
    """Sample and render one video.

    Objects get distinct shapes and colours; motions are resampled until every object keeps at least
    ``config.min_visible_area`` visible pixels in every frame, and until the video's set of objects
    ("red circle", ...) is not in ``exclude`` (so that val videos show other combinations than train).
    """
    size = (config.width, config.height)
    for _ in range(max_attempts):
        count = int(rng.integers(1, config.max_objects + 1))
        shapes = rng.choice(SHAPES, count, replace=False)
        colours = rng.choice(list(COLOURS), count, replace=False)
        if frozenset(f"{c} {s}" for c, s in zip(colours, shapes)) in exclude:
            continue
        objects = tuple(_sample_motion(rng, config, index + 1, str(shape), str(colour))
                        for index, (shape, colour) in enumerate(zip(shapes, colours)))
        labels = _render_labels(objects, size, config.num_frames)
        visible = np.array([(labels == obj.track_id).sum(axis=(1, 2)) for obj in objects])
        if visible.min() >= config.min_visible_area:
            break
    else:
        raise RuntimeError(f"could not place objects visibly in {max_attempts} attempts for {video_id}; "
                           "use larger frames or a smaller min_visible_area")
    background, style = _make_background(rng, size)
    frames = _render_frames(background, objects, labels, rng)
    return Scene(video_id, frames, labels, objects, style)


# ---------------------------------------------------------------------------------------------------------------------
# Captions, word timings and mouse traces (VidLN)
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Phrase:
    """A piece of a caption as the annotator speaks and traces it.

    ``target``: track id traced while saying it (0: background, None: nothing); ``wall``: a frame edge traced
    instead; ``trace_from``: substring of ``text`` at whose first word the tracing starts (default: the first word);
    ``keyframes``: keyframe indices traced, one trace segment each; ``pause_ms``: the silence after the phrase,
    during which the annotator keeps tracing (VidLN annotators pause to move the mouse).
    """

    text: str
    target: int | None = None
    wall: str | None = None
    trace_from: str | None = None
    keyframes: tuple[int, ...] = ()
    pause_ms: tuple[int, int] = (300, 600)
    mentions: tuple[tuple[str, int], ...] = ()  # (substring, track_id): noun phrases that name an object
    nouns: tuple[str, ...] = ()  # substrings tagged in noun_segments


@dataclass(frozen=True)
class Mention:
    """A noun phrase of a caption that names an object: ``caption[span[0]:span[1]]`` refers to ``track_id``.

    ``subject`` marks the phrase that opens the object's own actor narrative ("red circle" in "A red circle moves
    ..."); other mentions name another object ("..., passing behind the blue square").
    """

    actor_index: int
    span: tuple[int, int]
    track_id: int
    subject: bool


@dataclass(frozen=True)
class SceneNarrative:
    """A VidLN narrative of a scene, with which caption spans name which object (the ground truth of grounding)."""

    narrative: Narrative
    mentions: tuple[Mention, ...]
    keyframe_frames: tuple[int, ...]  # frame index of each keyframe name

    def subject(self, track_id: int) -> Mention:
        return next(m for m in self.mentions if m.track_id == track_id and m.subject)


_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


def _join_clauses(clauses: list[str]) -> list[str]:
    """Phrase texts of an English list: ["a"] → [" a"]; ["a", "b"] → [" a", " and b"];
    ["a", "b", "c"] → [" a", ", b", " and c"]."""
    joined = []
    for index, clause in enumerate(clauses):
        if index == 0:
            joined.append(f" {clause}")
        elif index == len(clauses) - 1:
            joined.append(f" and {clause}")
        else:
            joined.append(f", {clause}")
    return joined


def _object_phrases(obj: ObjectTrack, keyframes: tuple[int, ...], rng: np.random.Generator, *,
                    occluder: tuple[ObjectTrack, str, int] | None) -> list[_Phrase]:
    """The phrases of one object's caption: subject, motion, bounce, scale change, occlusion."""
    verb = str(rng.choice(["moves", "slides", "drifts", "glides"]))
    direction = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}[obj.direction]
    own = obj.track_id
    motion_keyframe = (keyframes[len(keyframes) // 2],)
    clauses: list[tuple[str, dict]] = [(f"{verb} {direction}", dict(target=own, keyframes=motion_keyframe,
                                                                   pause_ms=(700, 1400)))]
    if obj.bounce is not None:
        clauses.append((f"bounces off the {obj.bounce} wall",
                        dict(wall=obj.bounce, trace_from=f"{obj.bounce} wall", keyframes=(keyframes[-1],),
                             pause_ms=(700, 1200), nouns=("wall",))))
    if obj.scale_change is not None:
        text = "grows bigger" if obj.scale_change == "grows" else "shrinks"
        clauses.append((text, dict(target=own, keyframes=(keyframes[0],), pause_ms=(600, 1200))))
    texts = _join_clauses([text for text, _ in clauses])
    article = "An" if obj.noun[0] in "aeiou" else "A"
    # The subject is traced on all the actor's keyframes, with a long pause after it: VidLN annotators trace the
    # actor thoroughly when they name it.
    phrases = [_Phrase(f"{article} {obj.noun}", target=own, trace_from=obj.noun, keyframes=keyframes,
                       pause_ms=(1800, 3000), mentions=((obj.noun, own),), nouns=(obj.noun,))]
    phrases += [_Phrase(text, **options) for text, (_, options) in zip(texts, clauses)]
    if occluder is not None:
        other, relation, keyframe = occluder
        phrases.append(_Phrase(f", passing {relation} the {other.noun}", target=other.track_id, trace_from=other.noun,
                               keyframes=(keyframe,), pause_ms=(1500, 2500), mentions=((other.noun, other.track_id),),
                               nouns=(other.noun,)))
    phrases.append(_Phrase("."))
    return phrases


def _background_phrases(style: BackgroundStyle, keyframe: int) -> list[_Phrase]:
    return [_Phrase("In the background", target=0, trace_from="background", keyframes=(keyframe,),
                    pause_ms=(1200, 2200), nouns=("background",)),
            _Phrase(f", there is {style.description}", target=0, trace_from=style.description, keyframes=(keyframe,),
                    pause_ms=(1500, 2500), nouns=style.nouns),
            _Phrase(".")]


def _speak(phrases: list[_Phrase], rng: np.random.Generator
           ) -> tuple[str, list[WordTiming], list[int], list[tuple[int, int] | None]]:
    """Assemble the caption and time its words like a spoken recording.

    Returns the caption, its word timings, each phrase's character offset, and each phrase's trace interval
    (start ms, end ms) or None for a phrase without words; times are relative to the recording start. Words of a
    phrase follow each other without gaps; a pause follows each phrase. Times are multiples of 10 ms, as in VidLN's
    forced alignment.
    """
    caption, words, offsets, spans, clock = "", [], [], [], int(rng.integers(120, 260)) * 10
    for phrase in phrases:
        offset = len(caption)
        offsets.append(offset)
        caption += phrase.text
        phrase_words = []
        for match in _WORD.finditer(phrase.text):
            duration = (110 + 45 * len(match.group()) + int(rng.integers(0, 80))) // 10 * 10
            phrase_words.append(WordTiming(word=match.group(), start_index=offset + match.start(),
                                           end_index=offset + match.end(), start_ms=clock, end_ms=clock + duration))
            clock += duration
        words += phrase_words
        if not phrase_words:
            spans.append(None)
            continue
        pause = int(rng.integers(*phrase.pause_ms)) // 10 * 10
        start_char = offset + (phrase.text.index(phrase.trace_from) if phrase.trace_from else 0)
        first = next(w for w in phrase_words if w.end_index > start_char)
        # Trace from just after the traced word starts to just before the next phrase starts, so every point lies
        # inside the FORMATS.md §1 window of that word (which ends at the next word's start).
        spans.append((first.start_ms + 20, clock + pause - 60))
        clock += pause
    return caption, words, offsets, spans


def _interior_point(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The mask pixel farthest from the boundary (x, y) and that distance in px."""
    distance = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return np.array([col + 0.5, row + 0.5]), float(distance[row, col])


def _trace_path(scene: Scene, frame_index: int, target: int | None, wall: str | None, count: int,
                rng: np.random.Generator) -> np.ndarray:
    """(count, 2) float64 (x, y) pixels of one trace segment: loops over an object, a line along a wall, or a
    wander over the background."""
    width, height = scene.size
    progress = np.linspace(0, 1, count)
    if wall is not None:
        inset = 3.0
        along = 0.2 + 0.6 * progress
        xy = {"left": np.stack([np.full(count, inset), along * height], 1),
              "right": np.stack([np.full(count, width - 1 - inset), along * height], 1),
              "top": np.stack([along * width, np.full(count, inset)], 1),
              "bottom": np.stack([along * width, np.full(count, height - 1 - inset)], 1)}[wall]
    elif target:
        # Annotators circle the object: a loop around its most interior point, inside its visible part.
        centre, depth = _interior_point(scene.mask(target, frame_index))
        loops = rng.uniform(1.0, 2.0)
        phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * loops * progress
        radius = 0.6 * depth * (0.7 + 0.3 * np.sin(3 * phase))
        xy = centre + np.stack([radius * np.cos(phase), radius * np.sin(phase)], 1)
    else:
        # Background: a wander through a few background pixels.
        rows, cols = np.nonzero(scene.labels[frame_index] == 0)
        picks = rng.choice(len(rows), 5, replace=False)
        waypoints = np.stack([cols[picks], rows[picks]], 1).astype(np.float64) + 0.5
        knots = np.linspace(0, 1, len(waypoints))
        xy = np.stack([np.interp(progress, knots, waypoints[:, 0]), np.interp(progress, knots, waypoints[:, 1])], 1)
    xy = xy + rng.normal(0, 0.4, xy.shape)
    xy[:, 0] = np.clip(xy[:, 0], 0, width - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, height - 1)
    return np.round(xy, 2)


def _trace_phrase(scene: Scene, phrase: _Phrase, start_ms: int, end_ms: int, keyframe_frames: list[int],
                  rng: np.random.Generator) -> list[TraceSegment]:
    """One trace segment per keyframe of the phrase, splitting [start_ms, end_ms] (absolute) with short gaps."""
    if phrase.target is None and phrase.wall is None:
        return []
    count = len(phrase.keyframes)
    gap = int(rng.integers(150, 300))
    length = (end_ms - start_ms - gap * (count - 1)) / count
    segments = []
    for index, keyframe in enumerate(phrase.keyframes):
        begin = start_ms + round(index * (length + gap))
        times = [begin]
        while times[-1] + 40 <= begin + length:
            times.append(times[-1] + int(rng.integers(15, 40)))  # the VidLN tool samples every ~17-33 ms
        xy = _trace_path(scene, keyframe_frames[keyframe], phrase.target, phrase.wall, len(times), rng)
        segments.append(TraceSegment(xy, times, [keyframe] * len(times)))
    return segments


def _spans_of(phrases: list[_Phrase], offsets: list[int], texts_of) -> list[tuple[int, int]]:
    """Caption spans of the substrings ``texts_of(phrase)`` names in each phrase."""
    spans = []
    for phrase, offset in zip(phrases, offsets):
        for text in texts_of(phrase):
            start = offset + phrase.text.index(text)
            spans.append((start, start + len(text)))
    return spans


def _actor(scene: Scene, name: str, phrases: list[_Phrase], selection: tuple[int, ...], keyframe_frames: list[int],
           recording_start: int, recording_filename: str, rng: np.random.Generator, *,
           wrong_noun: str | None = None) -> tuple[ActorNarrative, list[tuple[int, int, int]], int]:
    """An ActorNarrative, its mentions (start, end, track id) and how long its recording took (ms)."""
    caption, words, offsets, intervals = _speak(phrases, rng)
    segments = []
    for phrase, interval in zip(phrases, intervals):
        if interval is not None:
            segments += _trace_phrase(scene, phrase, recording_start + interval[0], recording_start + interval[1],
                                      keyframe_frames, rng)
    noun_segments = _spans_of(phrases, offsets, lambda phrase: phrase.nouns)
    if wrong_noun is not None:
        # Automatic tagging errs sometimes (VidLN's noun_segments do): tag the verb as a noun.
        start = caption.index(wrong_noun)
        noun_segments = sorted(noun_segments + [(start, start + len(wrong_noun))])
    spans = _spans_of(phrases, offsets, lambda phrase: [text for text, _ in phrase.mentions])
    tracks = [track for phrase in phrases for _, track in phrase.mentions]
    mentions = [(start, end, track) for (start, end), track in zip(spans, tracks)]
    actor = ActorNarrative(
        actor_name=name, caption=caption, keyframe_selection_indices=selection,
        recording_start_time_ms=recording_start,
        traces_start_time_ms=recording_start - int(rng.integers(200, 500)),
        recording_filename=recording_filename, noun_segments=tuple(noun_segments), time_alignment=tuple(words),
        traces=tuple(segments))
    return actor, mentions, words[-1].end_ms + 1500


def _keyframe_frames(num_frames: int, num_keyframes: int) -> list[int]:
    """Evenly spaced keyframes, first and last frame left out (VidLN keyframes avoid the clip's ends)."""
    return sorted({int(round(v)) for v in np.linspace(0, num_frames - 1, num_keyframes + 2)[1:-1]})


def _spread_selection(areas: np.ndarray, count: int) -> tuple[int, ...]:
    """``count`` keyframe indices, one per consecutive chunk, each the chunk's keyframe with the largest area."""
    chunks = np.array_split(np.arange(len(areas)), min(count, len(areas)))
    return tuple(int(chunk[np.argmax(areas[chunk])]) for chunk in chunks)


def _occlusion(scene: Scene, obj: ObjectTrack, selection: tuple[int, ...], keyframe_frames: list[int],
               min_area: int):
    """(other object, "behind"/"in front of", keyframe) for the first object whose shape overlaps this one's in
    some frame and that is visible on one of the actor's keyframes; None when none does."""
    size = scene.size
    for other in scene.objects:
        if other is obj:
            continue
        overlaps = any((_shape_mask(obj.shape, obj.centres[t], obj.radii[t], obj.angles[t], size)
                        & _shape_mask(other.shape, other.centres[t], other.radii[t], other.angles[t], size)).any()
                       for t in range(len(scene.frames)))
        if not overlaps:
            continue
        areas = [int(scene.mask(other.track_id, keyframe_frames[k]).sum()) for k in selection]
        if max(areas) >= min_area:
            relation = "behind" if obj.track_id < other.track_id else "in front of"
            return other, relation, selection[int(np.argmax(areas))]
    return None


def make_narrative(scene: Scene, *, vidln_id: int, dataset_id: str, rng: np.random.Generator,
                   config: SampleDataConfig) -> SceneNarrative:
    """The VidLN narrative of a scene: one actor narrative per object ("Red circle") plus "background".

    Word timings and traces are made so that the FORMATS.md §1 window of every noun that names an object contains
    trace points over that object on the actor's keyframes.
    """
    keyframe_frames = _keyframe_frames(len(scene.frames), config.num_keyframes)
    areas = scene.visible_areas()[:, keyframe_frames]
    actors, mentions = [], []
    clock = _EPOCH_MS + int(rng.integers(0, 10**10))
    wrong = int(rng.integers(len(scene.objects)))  # which actor gets the deliberately wrong noun segment
    for index, obj in enumerate(scene.objects):
        selection = _spread_selection(areas[index], config.keyframes_per_actor)
        occluder = _occlusion(scene, obj, selection, keyframe_frames, config.min_visible_area)
        phrases = _object_phrases(obj, selection, rng, occluder=occluder)
        verb = phrases[1].text.split()[0]
        actor, spans, duration = _actor(scene, obj.noun.capitalize(), phrases, selection, keyframe_frames, clock,
                                        f"recordings/{dataset_id}/{vidln_id}_{index}.webm", rng,
                                        wrong_noun=verb if index == wrong else None)
        actors.append(actor)
        # The first mention of an object actor is its subject ("A red circle ...").
        mentions += [Mention(index, (start, end), track, subject=order == 0)
                     for order, (start, end, track) in enumerate(spans)]
        clock += duration + int(rng.integers(4000, 15000))
    background_keyframe = int(rng.integers(len(keyframe_frames)))
    actor, _, _ = _actor(scene, "background", _background_phrases(scene.background, background_keyframe),
                         (background_keyframe,), keyframe_frames, clock,
                         f"recordings/{dataset_id}/{vidln_id}_{len(scene.objects)}.webm", rng)
    actors.append(actor)
    narrative = Narrative(vidln_id=vidln_id, dataset_id=dataset_id, video_id=scene.video_id,
                          annotator_id=int(rng.integers(1, 200)),
                          keyframe_names=tuple(frame_id(i) for i in keyframe_frames), frame_size=scene.size,
                          actor_narratives=tuple(actors))
    return SceneNarrative(narrative, tuple(mentions), tuple(keyframe_frames))


# ---------------------------------------------------------------------------------------------------------------------
# Point annotations (Point-VOS release) and pseudo-masks
# ---------------------------------------------------------------------------------------------------------------------

def object_id_for(seed: int, video_id: str, track_id: int) -> str:
    """The 32-hex Point-VOS object id of a synthetic object: stable for a seed, distinct across videos and seeds."""
    return hashlib.md5(f"vng-synthetic/{seed}/{video_id}/{track_id}".encode()).hexdigest()


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def sample_object_points(mask: np.ndarray, rng: np.random.Generator, config: SampleDataConfig) -> Points:
    """The verified points of one object on one frame, as the Point-VOS annotators would return them.

    Foreground candidates come from the mask eroded by 1 px and are ACCEPTED; background candidates from outside the
    mask dilated by 2 px (so no point sits on the edge) and are REJECTED; the uncertain candidates come from the
    1 px band around the boundary and are AMBIGUOUS. All points are at least ``min_distance`` px apart (Sec. 3.2).

    Args:
        mask: (H, W) bool, the object's visible pixels.

    Returns:
        Points with integer (x, y) pixels, labels 1 / 0 / -1 and ``is_fg_candidate`` True for the fg candidates.
    """
    mask_u8 = mask.astype(np.uint8)
    inner = cv2.erode(mask_u8, _disk(1)).astype(bool)
    outer = cv2.dilate(mask_u8, _disk(2)).astype(bool)
    band = cv2.dilate(mask_u8, _disk(1)).astype(bool) & ~inner
    groups = [(inner if inner.any() else mask, config.num_fg_points, PointLabel.FOREGROUND),
              (~outer, config.num_bg_points, PointLabel.BACKGROUND),
              (band, config.num_ambiguous_points, PointLabel.AMBIGUOUS)]
    xy, labels = np.zeros((0, 2)), []
    for region, count, label in groups:
        found = sample_points(region, count, min_distance=config.min_point_distance, rng=rng, exclude=xy)
        xy = np.concatenate([xy, found])
        labels += [int(label)] * len(found)
    labels = np.asarray(labels, np.int8)
    return Points(xy=xy, labels=labels, is_fg_candidate=labels == PointLabel.FOREGROUND)


def _pseudo_mask(mask: np.ndarray, rng: np.random.Generator, config: SampleDataConfig) -> np.ndarray:
    """(H, W) uint8 0/1: the ground truth eroded or dilated by 1..``pseudo_mask_max_radius`` px, so that models
    trained on pseudo-masks see imperfect boundaries as they would with DynaMITe/SAM masks."""
    radius = int(rng.integers(1, config.pseudo_mask_max_radius + 1))
    operation = cv2.erode if rng.random() < 0.5 else cv2.dilate
    degraded = operation(mask.astype(np.uint8), _disk(radius))
    return degraded if degraded.any() else mask.astype(np.uint8)  # never erase a small object entirely


def make_point_annotations(scene: Scene, story: SceneNarrative, seed: int, rng: np.random.Generator,
                           config: SampleDataConfig) -> list[ObjectAnnotation]:
    """One Point-VOS record per object: points on evenly spaced frames, linked to the object's caption noun."""
    frames = evenly_spaced_frames(len(scene.frames), config.num_annotated_frames)
    annotations = []
    for obj in scene.objects:
        subject = story.subject(obj.track_id)
        caption = story.narrative.actor_narratives[subject.actor_index].caption
        annotations.append(ObjectAnnotation(
            object_id=object_id_for(seed, scene.video_id, obj.track_id), video_name=scene.video_id,
            object_name=obj.noun, question=caption, question_hash=hashlib.md5(caption.encode()).hexdigest(),
            frames=tuple(FramePoints(t, sample_object_points(scene.mask(obj.track_id, t), rng, config))
                         for t in frames),
            noun_span=subject.span))
    return annotations


def make_pseudo_masks(scene: Scene, annotations: list[ObjectAnnotation], rng: np.random.Generator,
                      config: SampleDataConfig) -> dict[tuple[str, int], np.ndarray]:
    """``{(object_id, frame_index): (H, W) uint8 0/1}`` for every annotated frame of every object.

    ``annotations`` are :func:`make_point_annotations`' output: one per object of the scene, in the same order.
    """
    return {(annotation.object_id, frame.frame_index): _pseudo_mask(scene.mask(obj.track_id, frame.frame_index),
                                                                    rng, config)
            for annotation, obj in zip(annotations, scene.objects, strict=True) for frame in annotation.frames}


# ---------------------------------------------------------------------------------------------------------------------
# Generation and writing
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SampleVideo:
    """Everything made for one video: the scene, its narrative, its point annotations and pseudo-masks."""

    scene: Scene
    story: SceneNarrative
    annotations: tuple[ObjectAnnotation, ...]
    pseudo_masks: dict[tuple[str, int], np.ndarray]


@dataclass(frozen=True)
class SampleData:
    """What :func:`generate_sample_data` wrote.

    Attributes:
        root: the output folder.
        counts: ``{what: {split: count}}``, as in ``<root>/index.json``.
        seconds: wall time of the generation (not in index.json, which must not change between runs).
    """

    root: Path
    seed: int
    config: SampleDataConfig
    counts: dict[str, dict[str, int]]
    seconds: float

    def summary(self) -> str:
        lines = [f"sample data (seed {self.seed}, {self.config.width}x{self.config.height}, "
                 f"{self.config.num_frames} frames per video) → {self.root} in {self.seconds:.1f} s"]
        for what, per_split in self.counts.items():
            lines.append(f"  {what:<24} " + ", ".join(f"{split}: {count}" for split, count in per_split.items()))
        return "\n".join(lines)


def _make_videos(stream: str, prefix: str, count: int, dataset_id: str, first_vidln_id: int, seed: int,
                 config: SampleDataConfig, *, exclude: frozenset[frozenset[str]] = frozenset()) -> list[SampleVideo]:
    videos = []
    for index in range(count):
        # One generator per video, seeded by (seed, stream, index): videos are independent of each other.
        rng = np.random.default_rng([seed, _STREAMS[stream], index])
        scene = make_scene(f"{prefix}_{index:03d}", rng, config, exclude=exclude)
        story = make_narrative(scene, vidln_id=first_vidln_id + index, dataset_id=dataset_id, rng=rng, config=config)
        annotations = make_point_annotations(scene, story, seed, rng, config)
        videos.append(SampleVideo(scene, story, tuple(annotations), make_pseudo_masks(scene, annotations, rng, config)))
    return videos


def _object_set(scene: Scene) -> frozenset[str]:
    return frozenset(obj.noun for obj in scene.objects)


def _write_vidln(out: Path, name: str, videos: list[SampleVideo], config: SampleDataConfig) -> None:
    """``vidln/<name>.jsonl``, every frame under ``frames/<dataset_id>/<video_id>/`` and ``videos/...mp4``."""
    write_narratives(out / "vidln" / f"{name}.jsonl", [video.story.narrative for video in videos])
    for video in videos:
        dataset_id, scene = video.story.narrative.dataset_id, video.scene
        write_frames(out / "frames" / dataset_id / scene.video_id, scene.frames, names=scene.frame_names,
                     quality=config.jpeg_quality)
        write_video(out / "videos" / dataset_id / f"{scene.video_id}.mp4", scene.frames, fps=config.fps)


def _write_point_vos(out: Path, dataset: str, split: str, videos: list[SampleVideo], config: SampleDataConfig) -> None:
    """PV-Oops ``<split>.json`` / PV-Kinetics ``train.jsonl``, the videos, and the pseudo-masks; for a val split
    also the benchmark's ground truth (:mod:`vng.benchmark.oops`): the true masks of the last
    :data:`~vng.protocol.MAX_GT_FRAMES` annotated frames, ``<split>_masks/<object_id>/<frame_id>.png``."""
    suffix = ".jsonl" if dataset == "Kinetics" else ".json"
    write_pv_annotations(out / dataset / f"{split}{suffix}", [a for video in videos for a in video.annotations])
    for video in videos:
        write_video(pv_video_path(out, dataset, split, video.scene.video_id), video.scene.frames, fps=config.fps)
        for (object_id, frame_index), mask in video.pseudo_masks.items():
            write_mask_png(pseudo_mask_path(out, dataset, split, object_id, frame_index), mask)
        if split == "val":
            for annotation, obj in zip(video.annotations, video.scene.objects, strict=True):
                for frame in annotation.frames[1:][-MAX_GT_FRAMES:]:  # never the initialisation frame
                    path = out / dataset / f"{split}_masks" / annotation.object_id / f"{frame_id(frame.frame_index)}.png"
                    write_mask_png(path, video.scene.mask(obj.track_id, frame.frame_index).astype(np.uint8))


def _write_davis(root: Path, splits: dict[str, list[SampleVideo]], config: SampleDataConfig) -> None:
    """DAVIS-2017 layout: all frames with instance masks (ids = track ids), ImageSets/2017/{train,val}.txt."""
    for split, videos in splits.items():
        for video in videos:
            write_davis_sequence(root, video.scene.video_id, video.scene.frames, video.scene.labels,
                                 quality=config.jpeg_quality)
        write_davis_split(root, [video.scene.video_id for video in videos], year="2017", split=split)


# YouTube-VOS keeps every 5th frame of the 30 fps source and names frames by the source index: "00000", "00005", …
_YTVOS_STEP = 5


def _write_ytvos(root: Path, splits: dict[str, list[SampleVideo]], config: SampleDataConfig) -> None:
    """YouTube-VOS layout: train annotates every frame; valid only each object's first frame, like the real valid
    split (whose scores come from a server). Dense ground truth of the same videos is in the DAVIS layout."""
    for split, videos in splits.items():
        meta = {}
        for video in videos:
            scene = video.scene
            names = [f"{_YTVOS_STEP * i:05d}" for i in range(len(scene.frames))]
            if split == "train":
                masks = {name: scene.labels[i] for i, name in enumerate(names)}
            else:
                # Every object is visible from frame 0 (make_scene guarantees it): the first frame holds them all.
                masks = {names[0]: scene.labels[0]}
            write_ytvos_video(root, split, scene.video_id, scene.frames, masks, names, quality=config.jpeg_quality)
            meta[scene.video_id] = {str(obj.track_id): YTVOSObject(obj.shape, tuple(names)) for obj in scene.objects}
        write_ytvos_meta(root / split / "meta.json", meta)


def _write_vng(root: Path, split: str, videos: list[SampleVideo]) -> dict[str, int]:
    """``meta_expressions.json`` + masks: each video's first object in ``vis_annotations.json`` (the stand-in for
    OVIS' own ``annotations_train.json``), the others in ``extra_masks.json`` (ids from 100001, disjoint).

    Frames are not copied: VIS ``file_names`` are ``<video>/<frame>.jpg`` under ``frames/<dataset_id>/``, as OVIS-VNG
    uses the OVIS frames.
    """
    meta, vis_videos, vis_tracks, extra_videos, extra_tracks = {}, [], {}, [], {}
    categories = [{"id": index + 1, "name": shape} for index, shape in enumerate(SHAPES)]
    category_ids = {}
    for number, video in enumerate(videos, start=1):
        scene, narrative = video.scene, video.story.narrative
        width, height = scene.size
        vis_video = VISVideo(id=number, width=width, height=height, length=len(scene.frames),
                             file_names=tuple(f"{scene.video_id}/{name}.jpg" for name in scene.frame_names))
        vis_videos.append(vis_video)
        obj_ids = {}  # track id → annotation id
        for obj in scene.objects:
            segmentations = tuple(rle_encode(scene.mask(obj.track_id, t)) for t in range(len(scene.frames)))
            in_vis = obj.track_id == 1
            obj_id = len(vis_tracks) + 1 if in_vis else 100_001 + len(extra_tracks)
            track = MaskTrack(obj_id, number, scene.video_id, height, width, segmentations)
            if in_vis:
                vis_tracks[obj_id] = track
                category_ids[obj_id] = SHAPES.index(obj.shape) + 1
            else:
                extra_tracks[obj_id] = track
                if not extra_videos or extra_videos[-1].id != number:
                    extra_videos.append(vis_video)
            obj_ids[obj.track_id] = obj_id
        actors = tuple(VNGActor(index, actor.actor_name, actor.caption)
                       for index, actor in enumerate(narrative.actor_narratives))
        expressions = tuple(VNGExpression(str(index), m.actor_index, m.span[0], m.span[1], obj_ids[m.track_id])
                            for index, m in enumerate(video.story.mentions))
        meta[scene.video_id] = VNGVideo(scene.video_id, scene.frame_names, actors, expressions)
    write_meta_expressions(root / split / "meta_expressions.json", meta)
    write_vis_annotations(root / split / "vis_annotations.json", vis_videos, vis_tracks, categories=categories,
                          category_ids=category_ids)
    write_extra_masks(root / split / "extra_masks.json", extra_videos, extra_tracks,
                      info={"description": "vng synthetic sample data: masks of objects not in vis_annotations.json"})
    return {"expressions": sum(len(v.expressions) for v in meta.values()), "vis_tracks": len(vis_tracks),
            "extra_tracks": len(extra_tracks)}



# ---------------------------------------------------------------------------------------------------------------------
# COCO Panoptic Narrative Grounding: single images from the same renderer
# ---------------------------------------------------------------------------------------------------------------------

# COCO-PNG categories: one "thing" per shape, two "stuff" classes for the background halves.
PNG_CATEGORIES = tuple([{"id": index + 1, "name": shape, "isthing": 1} for index, shape in enumerate(SHAPES)]
                       + [{"id": len(SHAPES) + 1, "name": "wall", "isthing": 0},
                          {"id": len(SHAPES) + 2, "name": "floor", "isthing": 0}])
_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "cross": "crosses"}


@dataclass(frozen=True, eq=False)
class PNGSample:
    """One COCO-PNG image: (H, W, 3) uint8 RGB ``image``, (H, W) int64 panoptic ``segment_ids`` (0 = none)."""

    image_id: int
    image: np.ndarray
    segment_ids: np.ndarray
    panoptic: PanopticImage
    narrative: PNGNarrative


def _png_objects(rng: np.random.Generator, config: SampleDataConfig, *, plural: bool) -> list[ObjectTrack]:
    """Static objects (one-frame tracks); with ``plural`` the first two share shape and colour ("two red circles")."""
    count = int(rng.integers(2, config.max_objects + 1)) if plural else int(rng.integers(1, config.max_objects + 1))
    distinct = count - 1 if plural else count
    shapes = [str(s) for s in rng.choice(SHAPES, distinct, replace=False)]
    colours = [str(c) for c in rng.choice(list(COLOURS), distinct, replace=False)]
    if plural:
        shapes.insert(0, shapes[0])
        colours.insert(0, colours[0])
    objects = []
    for index, (shape, colour) in enumerate(zip(shapes, colours)):
        radius = rng.uniform(config.min_radius, config.max_radius)
        centre = np.array([rng.uniform(radius, config.width - radius), rng.uniform(radius, config.height - radius)])
        objects.append(ObjectTrack(track_id=index + 1, shape=shape, colour=colour, centres=centre[None],
                                   radii=np.array([radius]), angles=np.array([rng.uniform(0, 2 * np.pi)]),
                                   direction="none", bounce=None, scale_change=None,
                                   pattern=str(rng.choice(["stripes", "rings", "plain"])),
                                   brightness=rng.uniform(0.9, 1.05)))
    return objects


def make_png_sample(image_id: int, rng: np.random.Generator, config: SampleDataConfig, *, plural: bool,
                    max_attempts: int = 200) -> PNGSample:
    """A still image over a wall (top) and a floor (bottom), its panoptic segments and its grounded caption.

    One segment per object ("thing") and one per background half ("stuff"); a plural noun ("Two red circles")
    lists both objects' segment ids, so its target is their union.
    """
    size = (config.width, config.height)
    for _ in range(max_attempts):
        objects = _png_objects(rng, config, plural=plural)
        labels = _render_labels(tuple(objects), size, 1)[0]
        if all(np.count_nonzero(labels == obj.track_id) >= config.min_visible_area for obj in objects):
            break
    else:
        raise RuntimeError(f"could not place objects visibly in {max_attempts} attempts for image {image_id}")
    wall, wall_style = _make_background(rng, size, noun="wall")
    floor, floor_style = _make_background(rng, size, noun="floor")
    horizon = int(rng.uniform(0.35, 0.55) * config.height)
    is_wall = np.arange(config.height)[:, None, None] < horizon
    image = _render_frames(np.where(is_wall, wall, floor), tuple(objects), labels[None], rng)[0]
    # Random distinct ids over the whole 24-bit range, so that readers must decode all three channels.
    ids = [int(v) + 1 for v in rng.choice(256 ** 3 - 1, len(objects) + 2, replace=False)]
    segment_ids = np.zeros(labels.shape, np.int64)
    stuff = {"wall": (ids[-2], len(SHAPES) + 1, is_wall[:, :, 0]),
             "floor": (ids[-1], len(SHAPES) + 2, ~is_wall[:, :, 0])}
    for segment_id, _, region in stuff.values():
        segment_ids[region & (labels == 0)] = segment_id
    for obj, segment_id in zip(objects, ids):
        segment_ids[labels == obj.track_id] = segment_id
    categories = [SHAPES.index(obj.shape) + 1 for obj in objects] + [stuff["wall"][1], stuff["floor"][1]]
    segments = tuple(PanopticSegment(segment_id, category, 0, *_area_and_bbox(segment_ids == segment_id),
                                     isthing=category <= len(SHAPES))
                     for segment_id, category in zip(ids, categories))
    name = f"{image_id:012d}"  # COCO file naming
    panoptic = PanopticImage(image_id, f"{name}.png", f"{name}.jpg", config.width, config.height, segments)
    narrative = _png_narrative(image_id, objects, ids, wall_style, floor_style, plural=plural)
    return PNGSample(image_id, image, segment_ids, panoptic, narrative)


def _area_and_bbox(mask: np.ndarray) -> tuple[int, tuple[int, int, int, int]]:
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return 0, (0, 0, 0, 0)
    return len(rows), (int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                       int(rows.max() - rows.min() + 1))


def _png_narrative(image_id: int, objects: list[ObjectTrack], ids: list[int], wall: BackgroundStyle,
                   floor: BackgroundStyle, *, plural: bool) -> PNGNarrative:
    """The caption as COCO-PNG cuts it: utterances joined by spaces, nouns grounded to panoptic segment ids."""
    pieces: list[tuple[str, bool, tuple[int, ...], bool]] = []  # (utterance, is_noun, segment ids, plural)
    subjects = [(f"two {objects[0].colour} {_PLURALS[objects[0].shape]}", tuple(ids[:2]), True)] if plural else []
    for obj, segment_id in list(zip(objects, ids))[2 if plural else 0:]:
        article = "an" if obj.noun[0] in "aeiou" else "a"
        subjects.append((f"{article} {obj.noun}", (segment_id,), False))
    for index, (text, segment_ids, is_plural) in enumerate(subjects):
        if index:
            pieces.append(("and", False, (), False))
        pieces.append((text, True, segment_ids, is_plural))
    verb = "are" if plural or len(subjects) > 1 else "is"
    pieces.append((f"{verb} in front of", False, (), False))
    for style, segment_id, link in ((wall, ids[-2], "above"), (floor, ids[-1], None)):
        noun_phrase = f"a {style.tint} {style.nouns[0]}"
        pieces.append((noun_phrase, True, (segment_id,), False))
        rest = style.description[len(noun_phrase):].strip()
        if rest:
            pieces.append((rest, False, (), False))
        if link:
            pieces.append((link, False, (), False))
    first = pieces[0]
    pieces[0] = (first[0][0].upper() + first[0][1:], *first[1:])
    last = pieces[-1]
    pieces[-1] = (last[0] + ".", *last[1:])
    segments = tuple(PNGSegment(text, is_noun, segment_ids, plural=is_plural)
                     for text, is_noun, segment_ids, is_plural in pieces)
    return PNGNarrative(image_id, " ".join(piece[0] for piece in pieces), segments)


def _write_coco_png(root: Path, split: str, samples: list[PNGSample], config: SampleDataConfig) -> None:
    """COCO layout under ``root``: ``<split>/<id>.jpg`` images, ``panoptic_<split>/<id>.png``,
    ``panoptic_<split>.json`` and ``png_coco_<split>.json``."""
    for sample in samples:
        stem = Path(sample.panoptic.image_file_name).stem
        write_frames(root / split, [sample.image], names=[stem], quality=config.jpeg_quality)
        write_panoptic_png(root / f"panoptic_{split}" / sample.panoptic.file_name, sample.segment_ids)
    write_panoptic_annotations(root / f"panoptic_{split}.json", [s.panoptic for s in samples],
                               categories=PNG_CATEGORIES)
    write_png_narratives(root / f"png_coco_{split}.json", [s.narrative for s in samples])


def generate_sample_data(out_dir: str | Path, *, seed: int = 0, config: SampleDataConfig | None = None) -> SampleData:
    """Generate the sample dataset under ``out_dir`` in every release format (see the module docstring).

    The same ``seed`` and ``config`` give byte-identical JSON, masks and JPEG frames (the mp4 files hold the same
    frames; their container bytes are up to OpenCV's encoder).
    """
    config = config or SampleDataConfig()
    started = time.perf_counter()
    out = Path(out_dir)
    # 1. Make everything in memory: videos per split, then still images for COCO-PNG.
    train = _make_videos("train", "train", config.num_train_videos, "synthetic_train", 0, seed, config)
    seen = frozenset(_object_set(video.scene) for video in train)
    val = _make_videos("val", "val", config.num_val_videos, "synthetic_val", len(train), seed, config, exclude=seen)
    kinetics = _make_videos("kinetics", "kinetics", config.num_kinetics_videos, "synthetic_kinetics",
                            len(train) + len(val), seed, config)
    png = {}
    for split in ("train2017", "val2017"):
        rng = np.random.default_rng([seed, _STREAMS[f"png_{split}"]])
        first_id = 1 if split == "train2017" else 1_000_001  # disjoint image ids across splits
        # Every third image (the first included) has a plural noun ("two red circles").
        png[split] = [make_png_sample(first_id + index, rng, config, plural=index % 3 == 0)
                      for index in range(config.num_png_images)]

    # 2. Write every format.
    for name, videos in (("train", train), ("val", val), ("kinetics_train", kinetics)):
        _write_vidln(out, name, videos, config)
    _write_point_vos(out, "Oops", "train", train, config)
    _write_point_vos(out, "Oops", "val", val, config)
    _write_point_vos(out, "Kinetics", "train", kinetics, config)
    _write_davis(out / "DAVIS", {"train": train, "val": val}, config)
    _write_ytvos(out / "YouTubeVOS", {"train": train, "valid": val}, config)
    vng_counts = {split: _write_vng(out / "VNG", split, videos) for split, videos in (("train", train), ("val", val))}
    for split, samples in png.items():
        _write_coco_png(out / "COCO-PNG", split, samples, config)

    # 3. The index: counts only (no timings, no absolute paths), so that it is identical between runs.
    splits = {"train": train, "val": val, "kinetics_train": kinetics}
    pv = {"Oops/train": train, "Oops/val": val, "Kinetics/train": kinetics}
    counts = {
        "videos": {name: len(videos) for name, videos in splits.items()},
        "frames": {name: sum(len(v.scene.frames) for v in videos) for name, videos in splits.items()},
        "objects": {name: sum(len(v.scene.objects) for v in videos) for name, videos in splits.items()},
        "vidln_narratives": {name: len(videos) for name, videos in splits.items()},
        "vidln_actor_narratives": {name: sum(len(v.story.narrative.actor_narratives) for v in videos)
                                   for name, videos in splits.items()},
        "pv_objects": {name: sum(len(v.annotations) for v in videos) for name, videos in pv.items()},
        "pv_points": {name: sum(len(f.points) for v in videos for a in v.annotations for f in a.frames)
                      for name, videos in pv.items()},
        "pseudo_masks": {name: sum(len(v.pseudo_masks) for v in videos) for name, videos in pv.items()},
        "davis_sequences": {"train": len(train), "val": len(val)},
        "ytvos_videos": {"train": len(train), "valid": len(val)},
        "vng_expressions": {split: c["expressions"] for split, c in vng_counts.items()},
        "vng_vis_tracks": {split: c["vis_tracks"] for split, c in vng_counts.items()},
        "vng_extra_tracks": {split: c["extra_tracks"] for split, c in vng_counts.items()},
        "coco_png_images": {split: len(samples) for split, samples in png.items()},
        "coco_png_nouns": {split: sum(len(s.narrative.nouns) for s in samples) for split, samples in png.items()},
    }
    write_json(out / "index.json", {
        "generator": "vng.datasets.synthetic", "seed": seed, "config": asdict(config),
        "frame_size": [config.width, config.height],
        "dataset_ids": {"train": "synthetic_train", "val": "synthetic_val", "kinetics_train": "synthetic_kinetics"},
        "layout": _LAYOUT, "counts": counts}, indent=1)
    return SampleData(out, seed, config, counts, time.perf_counter() - started)


# Where each format lies under the output folder (also written into index.json for tools and people).
_LAYOUT = {
    "vidln": "vidln/{train,val,kinetics_train}.jsonl",
    "frames": "frames/<dataset_id>/<video_id>/<frame_id>.jpg",
    "videos": "videos/<dataset_id>/<video_id>.mp4",
    "pv_oops": "Oops/{train,val}.json, Oops/videos/<split>/<video>.mp4",
    "pv_kinetics": "Kinetics/train.jsonl, Kinetics/videos/train/<video>.mp4",
    "pseudo_masks": "<Oops|Kinetics>/pseudo_masks/<split>/<object_id>/<frame_id>.png (0/1, degraded ground truth)",
    "pv_oops_benchmark": "Oops/val_masks/<object_id>/<frame_id>.png (0/1 true masks, 3 frames per object)",
    "davis": "DAVIS/{JPEGImages,Annotations}/480p/<seq>/<00000>.{jpg,png}, DAVIS/ImageSets/2017/{train,val}.txt",
    "ytvos": "YouTubeVOS/{train,valid}/{JPEGImages,Annotations}/<video>/<00005>.{jpg,png}, .../meta.json",
    "vng": "VNG/{train,val}/{meta_expressions,vis_annotations,extra_masks}.json; frames: frames/synthetic_<split>/",
    "coco_png": "COCO-PNG/png_coco_<split>.json, panoptic_<split>.json, panoptic_<split>/<id>.png, <split>/<id>.jpg",
}
