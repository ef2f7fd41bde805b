"""Synthetic clips from still images (STCN's static pre-training data): determinism, shapes, aligned image/mask
warps, the thin-plate spline, and the file dataset."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vng.datasets.static_clips import StaticClipConfig, StaticClipDataset, make_static_clip, thin_plate_grid
from vng.io.common import FormatError

SMALL = StaticClipConfig(size=48, thin_plate_probability=0.5)


def still(height=60, width=80):
    """A grey image with a red rectangle, and the rectangle's mask."""
    image = np.full((height, width, 3), 100, np.uint8)
    mask = np.zeros((height, width), bool)
    mask[15:45, 20:55] = True
    image[mask] = (230, 20, 20)
    return image, mask


def test_shapes_and_determinism():
    image, mask = still()
    clip = make_static_clip(image, mask, config=SMALL, seed=3)
    assert clip.images.shape == (3, 3, 48, 48) and clip.images.dtype == torch.uint8
    assert clip.masks.shape == (3, 48, 48) and clip.masks.dtype == torch.uint8
    again = make_static_clip(image, mask, config=SMALL, seed=3)
    assert torch.equal(clip.images, again.images) and torch.equal(clip.masks, again.masks)
    other = make_static_clip(image, mask, config=SMALL, seed=4)
    assert not torch.equal(clip.images, other.images)
    assert not torch.equal(clip.images[0], clip.images[1])  # frames differ from each other


def test_the_caller_generator_is_untouched():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    make_static_clip(*still(), config=SMALL, seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("seed", range(4))
def test_image_and_mask_move_together(seed):
    """The red pixels and the mask pixels stay the same pixels (up to interpolated edges), whatever the warps."""
    clip = make_static_clip(*still(), config=StaticClipConfig(size=48, thin_plate_probability=1.0 if seed % 2 else 0,
                                                              clip_jitter=(0, 0, 0, 0), frame_jitter=(0, 0, 0, 0),
                                                              greyscale_probability=0), seed=seed)
    for image, mask in zip(clip.images.int(), clip.masks.bool()):
        red = (image[0] > 180) & (image[1] < 60)
        assert mask.any()
        assert (red ^ mask).float().mean() < 0.05


def test_label_ids_survive():
    image, mask = still()
    labels = mask.astype(np.uint8) * 3
    labels[50:58, 5:15] = 7
    clip = make_static_clip(image, labels, config=StaticClipConfig(size=64, clip_scale=(1, 1), frame_scale=(1, 1),
                                                                   degrees=0, shear=0, flip_probability=0), seed=0)
    assert set(clip.masks.unique().tolist()) <= {0, 3, 7}


def test_thin_plate_grid():
    torch.manual_seed(0)
    identity = thin_plate_grid((4, 6), scale=0.0)
    xs, ys = (2 * torch.arange(6) + 1) / 6 - 1, (2 * torch.arange(4) + 1) / 4 - 1
    assert torch.allclose(identity[0, ..., 0], xs.expand(4, 6), atol=1e-6)
    assert torch.allclose(identity[0, ..., 1], ys[:, None].expand(4, 6), atol=1e-6)
    warped = thin_plate_grid((40, 40), scale=0.02)
    assert warped.shape == (1, 40, 40, 2)
    offset = (warped - thin_plate_grid((40, 40), scale=0.0)).abs()
    assert 0 < offset.mean() < 0.1  # a gentle deformation
    image = torch.linspace(0, 1, 40).expand(1, 1, 40, 40)  # a horizontal ramp stays a ramp, slightly bent
    bent = F.grid_sample(image, warped, align_corners=False)
    assert (bent - image).abs().mean() < 0.05 and not torch.equal(bent, image)


def test_dataset_from_files(tmp_path):
    image, mask = still()
    Image.fromarray(image).save(tmp_path / "a.jpg")
    Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "a.png")
    dataset = StaticClipDataset([(tmp_path / "a.jpg", tmp_path / "a.png")], config=SMALL, seed=1)
    assert len(dataset) == 1
    first, again = dataset[0], dataset[0]
    assert torch.equal(first.images, again.images) and set(first.masks.unique().tolist()) <= {0, 1}
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0].images, first.images)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")  # a truncated file: a located error
    with pytest.raises(FormatError, match=r"broken\.png.*cannot read mask"):
        StaticClipDataset([(tmp_path / "a.jpg", tmp_path / "broken.png")], config=SMALL, seed=1)[0]


def test_bad_inputs():
    image, mask = still()
    with pytest.raises(ValueError, match="uint8"):
        make_static_clip(image.astype(np.float32), mask, seed=0)
    with pytest.raises(ValueError, match="mask"):
        make_static_clip(image, mask[:10], seed=0)
    with pytest.raises(ValueError):
        StaticClipConfig(thin_plate_probability=2)
