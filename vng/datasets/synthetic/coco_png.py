"""COCO Panoptic Narrative Grounding samples: single images from the same renderer, with panoptic segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vng.datasets.synthetic.config import COLOURS, SHAPES, SampleDataConfig
from vng.datasets.synthetic.scenes import BackgroundStyle, ObjectTrack, make_background, render_frames, render_labels
from vng.io.coco_png import PanopticImage, PanopticSegment
from vng.types import PNGNarrative, PNGSegment

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
        labels = render_labels(tuple(objects), size, 1)[0]
        if all(np.count_nonzero(labels == obj.track_id) >= config.min_visible_area for obj in objects):
            break
    else:
        raise RuntimeError(f"could not place objects visibly in {max_attempts} attempts for image {image_id}")
    wall, wall_style = make_background(rng, size, noun="wall")
    floor, floor_style = make_background(rng, size, noun="floor")
    horizon = int(rng.uniform(0.35, 0.55) * config.height)
    is_wall = np.arange(config.height)[:, None, None] < horizon
    image = render_frames(np.where(is_wall, wall, floor), tuple(objects), labels[None], rng)[0]
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
