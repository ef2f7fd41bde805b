"""Scenes: objects with motion, textured backgrounds, rendered frames and exact instance masks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vng.datasets.synthetic.config import COLOURS, SHAPES, TINTS, SampleDataConfig
from vng.types import frame_id


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
    tint: str  # key of TINTS
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


def shape_mask(shape: str, centre: np.ndarray, radius: float, angle: float, size: tuple[int, int]) -> np.ndarray:
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


def make_background(rng: np.random.Generator, size: tuple[int, int], *, kind: str | None = None,
                     noun: str = "wall") -> tuple[np.ndarray, BackgroundStyle]:
    """A textured, desaturated background (H, W, 3) float32 and its description."""
    width, height = size
    kind = kind or str(rng.choice(["speckles", "stripes", "gradient", "checker"]))
    tint = str(rng.choice(list(TINTS)))
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
    image = grey + pattern[..., None] + np.asarray(TINTS[tint], np.float32)
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


def render_labels(objects: tuple[ObjectTrack, ...], size: tuple[int, int], steps: int) -> np.ndarray:
    """(T, H, W) uint8 instance masks; later objects overwrite earlier ones (occlusion)."""
    width, height = size
    labels = np.zeros((steps, height, width), np.uint8)
    for t in range(steps):
        for obj in objects:
            labels[t][shape_mask(obj.shape, obj.centres[t], obj.radii[t], obj.angles[t], size)] = obj.track_id
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


def render_frames(background: np.ndarray, objects: tuple[ObjectTrack, ...], labels: np.ndarray,
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
        labels = render_labels(objects, size, config.num_frames)
        visible = np.array([(labels == obj.track_id).sum(axis=(1, 2)) for obj in objects])
        if visible.min() >= config.min_visible_area:
            break
    else:
        raise RuntimeError(f"could not place objects visibly in {max_attempts} attempts for {video_id}; "
                           "use larger frames or a smaller min_visible_area")
    background, style = make_background(rng, size)
    frames = render_frames(background, objects, labels, rng)
    return Scene(video_id, frames, labels, objects, style)
