from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vng.io.common import FormatError
from vng.io.davis import (davis_frame_paths, davis_mask_paths, read_davis_masks, read_davis_split,
                          write_davis_sequence, write_davis_split)

SHARED_DAVIS = Path("/work/shared/data/davis2016-val")


def make_sequence(count=3, height=24, width=32):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]
    masks = [np.zeros((height, width), np.uint8) for _ in range(count)]
    for index, mask in enumerate(masks):
        mask[2:10, 3 + index:12] = 1
        mask[15:20, 20:30] = 2
    return frames, masks


def test_split_round_trip(tmp_path):
    write_davis_split(tmp_path, ["bear", "bmx-trees"], year="2016", split="train")
    assert (tmp_path / "ImageSets" / "2016" / "train.txt").read_text() == "bear\nbmx-trees\n"
    assert read_davis_split(tmp_path, year="2016", split="train") == ["bear", "bmx-trees"]


def test_split_errors(tmp_path):
    with pytest.raises(FormatError, match="no such split file") as info:
        read_davis_split(tmp_path)
    assert "ImageSets/2017/val.txt" in str(info.value)
    path = tmp_path / "ImageSets" / "2017" / "val.txt"
    path.parent.mkdir(parents=True)
    path.write_text("bear\n\n/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png\n")
    with pytest.raises(FormatError, match=r"val.txt:3: expected one sequence name per line"):
        read_davis_split(tmp_path)
    write_davis_split(tmp_path, ["bear"])
    with pytest.raises(ValueError, match="one word"):
        write_davis_split(tmp_path, ["bear", "two words"])
    assert read_davis_split(tmp_path) == ["bear"]  # the failed write left the file alone


def test_sequence_round_trip(tmp_path):
    frames, masks = make_sequence()
    write_davis_sequence(tmp_path, "toy", iter(frames), iter(masks))
    assert [p.name for p in davis_frame_paths(tmp_path, "toy")] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert [p.name for p in davis_mask_paths(tmp_path, "toy")] == ["00000.png", "00001.png", "00002.png"]
    with Image.open(tmp_path / "Annotations" / "480p" / "toy" / "00000.png") as image:
        assert image.mode == "P"
    stack = read_davis_masks(tmp_path, "toy")
    assert stack.shape == (3, 24, 32) and stack.dtype == np.uint8
    np.testing.assert_array_equal(stack, np.stack(masks))


def test_frames_only_and_davis2016_masks_stay_as_read(tmp_path):
    frames, masks = make_sequence(2)
    write_davis_sequence(tmp_path, "s", frames, resolution="1080p")
    assert not (tmp_path / "Annotations").exists()
    folder = tmp_path / "Annotations" / "1080p" / "s"
    folder.mkdir(parents=True)
    for index, mask in enumerate(masks):
        Image.fromarray((mask > 0).astype(np.uint8) * 255, mode="L").save(folder / f"{index:05d}.png")
    stack = read_davis_masks(tmp_path, "s", resolution="1080p")
    assert set(np.unique(stack)) == {0, 255}


def test_mask_errors_name_sequence_and_frame(tmp_path):
    frames, masks = make_sequence()
    write_davis_sequence(tmp_path, "toy", frames, masks)
    folder = tmp_path / "Annotations" / "480p" / "toy"
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="P").save(folder / "00001.png")
    with pytest.raises(FormatError, match=r"sequence 'toy' frame '00001': mask is 10x10, frame is 32x24") as info:
        read_davis_masks(tmp_path, "toy")
    assert "00001.png" in str(info.value)
    (folder / "00001.png").unlink()
    with pytest.raises(FormatError, match=r"sequence 'toy' frame '00001': no mask"):
        read_davis_masks(tmp_path, "toy")
    Image.fromarray(masks[0], mode="P").save(folder / "00001.png")
    Image.fromarray(masks[0], mode="P").save(folder / "00007.png")
    with pytest.raises(FormatError, match=r"masks \['00007'\] have no frame"):
        read_davis_masks(tmp_path, "toy")
    with pytest.raises(FormatError, match="no such frame folder") as info:
        read_davis_masks(tmp_path, "missing")
    assert "JPEGImages/480p/missing" in str(info.value)


def test_write_sequence_checks_masks(tmp_path):
    frames, masks = make_sequence()
    with pytest.raises(ValueError, match="fewer masks than frames"):
        write_davis_sequence(tmp_path, "a", frames, masks[:2])
    with pytest.raises(ValueError, match="more masks than the 3 frames"):
        write_davis_sequence(tmp_path, "b", frames, masks + masks[:1])
    with pytest.raises(ValueError, match=r"frame 00001: mask shape \(4, 4\)"):
        write_davis_sequence(tmp_path, "c", frames, [masks[0], np.zeros((4, 4), np.uint8), masks[2]])
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 255\]"):
        write_davis_sequence(tmp_path, "d", frames[:1], [np.full((24, 32), 300)])


@pytest.mark.skipif(not SHARED_DAVIS.is_dir(), reason="DAVIS-2016 val sample not available")
def test_real_davis2016_sequence():
    sequence = read_davis_split(SHARED_DAVIS, year="2016")[0]
    stack = read_davis_masks(SHARED_DAVIS, sequence)
    assert stack.shape == (len(davis_frame_paths(SHARED_DAVIS, sequence)), 480, 854)
    assert set(np.unique(stack)) == {0, 255}
