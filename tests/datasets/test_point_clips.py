"""vng.datasets.point_clips: temporally sparse clips of annotated frames, points moved with the pixels."""

import numpy as np
import pytest
import torch
from PIL import Image

from vng.datasets.point_clips import (PointClipConfig, PointVOSClipDataset, StaticPointClipDataset,
                                      choose_clip_frames, collate_point_clips, point_density_ratio, transform_points)
from vng.datasets.static_clips import StaticClipConfig, StaticClipDataset
from vng.io.masks import write_mask_png
from vng.points import sample_points
from vng.types import FramePoints, ObjectAnnotation, Points, frame_id

WIDTH, HEIGHT, FRAMES = 96, 64, 12


def disk(cx: float, cy: float, radius: float, shape: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius ** 2


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A frame-folder video of a bright disk moving right on a dark textured background, its exact masks in the
    pseudo-mask layout, and one object annotated on every other frame: fg points inside the eroded disk, bg points
    well outside it (so resampling at the border cannot flip a label)."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    background = rng.integers(0, 60, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames = []
    (root / "videos" / "vid").mkdir(parents=True)
    for t in range(FRAMES):
        mask = disk(20 + 4 * t, 32, 12)
        image = background.copy()
        image[mask] = (230, 200, 40)
        Image.fromarray(image).save(root / "videos" / "vid" / f"{t:05d}.png")
        if t % 2 == 0:
            write_mask_png(root / "masks" / "obj" / f"{frame_id(t)}.png", mask.astype(np.uint8))
            fg = sample_points(disk(20 + 4 * t, 32, 8), 5, min_distance=3, rng=rng)
            bg = sample_points(~disk(20 + 4 * t, 32, 17), 6, min_distance=3, rng=rng)
            labels = np.r_[np.ones(len(fg)), np.zeros(len(bg)), -1].astype(np.int8)
            xy = np.concatenate([fg, bg, [[20 + 4 * t, 32]]])
            frames.append(FramePoints(t, Points(xy, labels)))
    annotation = ObjectAnnotation("obj", "vid", "ball", "Where is the ball?", "", tuple(frames))
    return root, annotation


def test_transform_points_follow_the_pixels():
    image = torch.zeros(1, 1, 40, 60)
    xy = np.array([[37.0, 21.0], [12.0, 5.0]])
    for x, y in xy.astype(int):
        image[0, 0, y, x] = 1
    crop = (4, 10, 32, 48)  # top, left, height, width
    # without resizing (size = crop side) a point moves by the crop offset, exactly
    assert np.array_equal(transform_points(xy, (4, 10, 32, 32), 32, False), xy - [10, 4])
    # with a flip, column x becomes size - 1 - x
    assert np.array_equal(transform_points(xy, (4, 10, 32, 32), 32, True)[:, 0], 31 - (xy[:, 0] - 10))
    # with resizing, the moved point lands on the resampled bright pixel's centre of mass
    resized = torch.nn.functional.interpolate(image[:, :, 4:36, 10:58], size=(64, 64), mode="bilinear",
                                              align_corners=False)[0, 0]
    moved = transform_points(xy[:1], crop, 64, False)[0]
    ys, xs = np.mgrid[:64, :64]
    weights = resized.numpy()
    region = (np.abs(xs - moved[0]) < 4) & (np.abs(ys - moved[1]) < 4)
    centre = [(xs * weights * region).sum() / (weights * region).sum(), (ys * weights * region).sum()
              / (weights * region).sum()]
    # within 0.05 px (sampling of a non-integer scale); the corner convention (no half pixels) is 0.17 px off
    assert np.allclose(centre, moved, atol=0.05)


def test_clip_frames_are_one_direction_within_the_gap():
    rng = np.random.default_rng(0)
    references = [True, False, True, True, False, True, True, True, False, True]
    seen_directions = set()
    for _ in range(200):
        positions = choose_clip_frames(references, 3, 2, rng)
        steps = np.diff(positions)
        assert references[positions[0]]
        assert (np.abs(steps) >= 1).all() and (np.abs(steps) <= 2).all()
        assert len(set(np.sign(steps))) == 1
        seen_directions.add(int(np.sign(steps[0])))
        assert 0 <= min(positions) and max(positions) < len(references)
    assert seen_directions == {-1, 1}
    assert choose_clip_frames([True, False], 3, 2, rng) is None  # too few frames
    assert choose_clip_frames([False, False, False], 2, 2, rng) is None  # no reference
    # a reference at the end can only go backwards; frames closer than max_gap when they must be
    assert choose_clip_frames([False, False, True], 3, 5, rng) == [2, 1, 0]


def test_point_vos_clips_keep_labels_on_the_object(toy):
    root, annotation = toy
    config = PointClipConfig(num_frames=3, max_gap=2, size=48, crop_scale=(0.5, 1.0))
    dataset = PointVOSClipDataset([annotation], root / "videos", masks=root / "masks", config=config, seed=3)
    assert len(dataset) == 1 and dataset.skipped == 0
    for epoch in range(6):
        dataset.set_epoch(epoch)
        clip = dataset[0]
        assert clip.images.shape == (3, 3, 48, 48) and clip.images.dtype == torch.uint8
        assert clip.masks.shape == (3, 48, 48)
        assert all(f % 2 == 0 for f in clip.frames)
        assert (clip.labels[0] == 1).any()  # the reference has foreground points
        for t in range(3):
            for (x, y), label in zip(clip.xy[t].tolist(), clip.labels[t].tolist()):
                if label < 0:
                    continue
                column, row = int(round(x)), int(round(y))
                assert clip.masks[t, row, column] == label  # points still say what is under them
                bright = clip.images[t, 0, row, column] > 150  # the disk is bright in red
                assert bright == bool(label)


def test_clips_are_reproducible_per_epoch(toy):
    root, annotation = toy
    dataset = PointVOSClipDataset([annotation], root / "videos", config=PointClipConfig(size=32), seed=1)
    first, again = dataset[0], dataset[0]
    assert torch.equal(first.images, again.images) and torch.equal(first.xy, again.xy)
    assert first.masks is None
    dataset.set_epoch(1)
    other = dataset[0]
    assert not (torch.equal(first.images, other.images) and first.frames == other.frames)


def test_objects_too_short_for_a_clip_are_skipped(toy):
    root, annotation = toy
    short = ObjectAnnotation("short", "vid", "ball", "", "", annotation.frames[:2])
    dataset = PointVOSClipDataset([annotation, short], root / "videos", config=PointClipConfig(num_frames=3))
    assert len(dataset) == 1 and dataset.skipped == 1


def test_collate_pads_points_as_ambiguous(toy):
    root, annotation = toy
    dataset = PointVOSClipDataset([annotation], root / "videos", config=PointClipConfig(size=32))
    clip = dataset[0]
    short = type(clip)(clip.images, clip.xy[:, :2], clip.labels[:, :2], None, "x", clip.frames)
    batch = collate_point_clips([clip, short])
    assert batch.images.shape == (2, 3, 3, 32, 32)
    assert batch.labels.shape == (2, 3, clip.labels.shape[1])
    assert (batch.labels[1, :, 2:] == -1).all() and torch.equal(batch.labels[1, :, :2], clip.labels[:, :2])
    assert batch.masks is None


def test_static_clips_get_points_from_their_masks(tmp_path):
    image = np.zeros((80, 80, 3), np.uint8)
    mask = disk(40, 36, 20, (80, 80))
    image[mask] = 255
    Image.fromarray(image).save(tmp_path / "a.jpg", quality=100)
    write_mask_png(tmp_path / "a.png", mask.astype(np.uint8))
    static = StaticClipDataset([(tmp_path / "a.jpg", tmp_path / "a.png")], config=StaticClipConfig(size=64))
    dataset = StaticPointClipDataset(static, config=PointClipConfig(num_foreground=7, num_background=10,
                                                                    min_distance=4, reference_foreground=None))
    clip = dataset[0]
    assert clip.images.shape == (3, 3, 64, 64) and clip.masks.shape == (3, 64, 64)
    for t in range(3):
        labels = clip.labels[t]
        assert (labels == 1).sum() == 7 and (labels == 0).sum() == 10
        xy = clip.xy[t].round().long()
        assert torch.equal(clip.masks[t, xy[:, 1], xy[:, 0]].long(), labels.long())


def test_the_reference_keeps_what_the_benchmark_gives(toy):
    """1..10 foreground points and 0..all background points on the reference; the other frames keep all theirs."""
    root, annotation = toy
    everything = PointVOSClipDataset([annotation], root / "videos", seed=2,
                                     config=PointClipConfig(size=32, reference_foreground=None))
    dataset = PointVOSClipDataset([annotation], root / "videos", seed=2, config=PointClipConfig(size=32))
    counts, backgrounds, kept_backgrounds = set(), 0, set()
    for epoch in range(12):
        everything.set_epoch(epoch)
        dataset.set_epoch(epoch)
        full, clip = everything[0], dataset[0]
        assert torch.equal(full.images, clip.images) and torch.equal(full.labels[1:], clip.labels[1:])
        kept_backgrounds.add(int((clip.labels[0] == 0).sum()))
        assert (full.labels[0][clip.labels[0] == 0] == 0).all()
        backgrounds += int((full.labels[0] == 0).sum())
        kept = clip.labels[0] == 1
        assert kept.sum() >= 1 and (full.labels[0][kept] == 1).all()
        counts.add(int(kept.sum()))
    assert backgrounds > 0 and len(counts) > 1 and max(counts) <= 5 and len(kept_backgrounds) > 1
    no_background = PointVOSClipDataset([annotation], root / "videos", seed=2,
                                        config=PointClipConfig(size=32, reference_background=False))
    assert all((no_background[0].labels[0] == 0).sum() == 0 for _ in range(2))  # the toy's reference frames have up to 5 foreground points


def test_point_density_ratio_is_the_geometric_mean_over_frames(tmp_path):
    def frame(index: int, fg: int, bg: int) -> FramePoints:
        labels = np.array([1] * fg + [0] * bg + [-1])
        return FramePoints(index, Points(np.zeros((len(labels), 2), np.float32), labels))

    def mask(object_id: str, index: int, rows: int) -> None:  # 10×10 frame, the first ``rows`` rows object
        labels = np.zeros((10, 10), np.uint8)
        labels[:rows] = 1
        write_mask_png(tmp_path / object_id / f"{frame_id(index)}.png", labels)

    objects = [ObjectAnnotation("a", "v", "dog", "", "", (frame(0, 2, 4), frame(3, 1, 1), frame(5, 3, 0))),
               ObjectAnnotation("b", "v", "cat", "", "", (frame(1, 1, 2), frame(2, 1, 1)))]
    mask("a", 0, 2)  # area 0.2: (2 / 0.2) / (4 / 0.8) = 2
    mask("a", 3, 10)  # one class only: skipped
    mask("a", 5, 5)  # no background points: skipped
    mask("b", 1, 5)  # area 0.5: (1 / 0.5) / (2 / 0.5) = 0.5 ... and frame 2 has no mask: skipped
    mask("b", 7, 5)  # not annotated: not read
    assert point_density_ratio(objects, tmp_path) == pytest.approx(1.0)  # sqrt(2 × 0.5)
    mask("b", 2, 1)  # area 0.1: (1 / 0.1) / (1 / 0.9) = 9
    assert point_density_ratio(objects, tmp_path) == pytest.approx((2 * 0.5 * 9) ** (1 / 3))
    with pytest.raises(ValueError, match="no annotated frame"):
        point_density_ratio(objects[1:], tmp_path / "missing")
