"""Damaged media: a video that decodes short, masks of the wrong size or mode, corrupt and decompression-bomb
images. Each is a FormatError naming the file (never a short result, a wrong pixel grid or a raw traceback), and
a real dataset's quirk (DAVIS-2016's grey + alpha mask) reads."""

import cv2
import numpy as np
import pytest
from PIL import Image

from vng.io.common import FormatError
from vng.io.davis import read_davis_masks, write_davis_sequence
from vng.io.masks import read_mask_png
from vng.io.video import Video, read_frames, video_ref, write_video
from vng.io.vidln import read_keyframe

NUM_FRAMES = 20


@pytest.fixture
def damaged_mp4(tmp_path):
    """An mp4 whose middle fifth is zeroed: the container still lists 20 frames, OpenCV decodes a few, no error."""
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    write_video(path, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(NUM_FRAMES)])
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 5:len(data) * 3 // 5] = bytes(len(data) * 3 // 5 - len(data) * 2 // 5)
    path.write_bytes(bytes(data))
    capture = cv2.VideoCapture(str(path))
    listed, decoded = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0
    while capture.grab():
        decoded += 1
    assert (listed, decoded < listed) == (NUM_FRAMES, True)  # the fixture is what it claims
    return path


def test_a_video_that_decodes_short_is_an_error_not_a_short_video(damaged_mp4):
    message = rf"clip.mp4: OpenCV decodes \d+ of the {NUM_FRAMES} frames the container lists: the file is damaged"
    with pytest.raises(FormatError, match=message):
        len(Video.open(damaged_mp4))  # the exact count
    with pytest.raises(FormatError, match=message):
        list(Video.open(damaged_mp4))  # streaming
    with pytest.raises(FormatError, match=message):
        Video.open(damaged_mp4, exact_length=False)[NUM_FRAMES - 1]  # random access
    assert video_ref(damaged_mp4).num_frames == NUM_FRAMES  # the container's count: cheap, checked when decoding
    with pytest.raises(FormatError, match=message):
        video_ref(damaged_mp4, exact_length=True)  # what the pipeline asks before it reads every frame
    with pytest.raises(FormatError, match=message):
        read_frames(damaged_mp4, [0, NUM_FRAMES - 1])


def test_davis_mask_stored_as_grey_plus_alpha_reads_its_grey_channel(tmp_path):
    # the official DAVIS-2016 480p package stores bear/00077.png this way
    frames = [np.zeros((24, 32, 3), np.uint8)] * 2
    masks = [np.zeros((24, 32), np.uint8)] * 2
    write_davis_sequence(tmp_path, "bear", frames, masks)
    grey = np.zeros((24, 32), np.uint8)
    grey[5:10, 6:12] = 255
    alpha = np.full((24, 32), 255, np.uint8)
    Image.fromarray(np.stack([grey, alpha], -1), mode="LA").save(tmp_path / "Annotations/480p/bear/00001.png")
    np.testing.assert_array_equal(read_mask_png(tmp_path / "Annotations/480p/bear/00001.png"), grey)
    np.testing.assert_array_equal(read_davis_masks(tmp_path, "bear")[1], grey)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8), mode="RGB").save(tmp_path / "Annotations/480p/bear/00001.png")
    with pytest.raises(FormatError, match="00001.png: expected a palette or greyscale label PNG, got mode RGB"):
        read_davis_masks(tmp_path, "bear")


def test_corrupt_and_truncated_images_are_located(tmp_path):
    folder = tmp_path / "ds" / "vid"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((24, 32, 3), 100, np.uint8)).save(folder / "000001.jpg")
    data = (folder / "000001.jpg").read_bytes()
    (folder / "000002.jpg").write_bytes(data[:len(data) // 2])  # cut short
    (folder / "000003.jpg").write_bytes(b"not a jpeg at all")
    assert read_keyframe(tmp_path, "ds", "vid", "000001").shape == (24, 32, 3)
    with pytest.raises(FormatError, match="000002.jpg: cannot read keyframe: .*[Tt]runcated"):
        read_keyframe(tmp_path, "ds", "vid", "000002")
    with pytest.raises(FormatError, match="000003.jpg: cannot read keyframe: cannot identify image file"):
        read_keyframe(tmp_path, "ds", "vid", "000003")
    with pytest.raises(FormatError, match="keyframe is 32x24, the traces of video 'vid' are for 64x48"):
        read_keyframe(tmp_path, "ds", "vid", "000001", size=(64, 48))
    with pytest.raises(FormatError, match="000002.jpg: cannot read frame image"):
        list(Video.open(folder))


def test_decompression_bombs_are_refused_with_the_file_named(tmp_path, monkeypatch):
    # PIL raises above 2 x MAX_IMAGE_PIXELS and only warns above 1 x; both are refused. A small limit stands in for
    # the default 89 M pixels, so the test needs no huge file.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for name, size in (("error.png", (64, 48)), ("warning.png", (40, 40))):
        Image.fromarray(np.zeros(size[::-1], np.uint8), mode="L").save(tmp_path / name)
        with pytest.raises(FormatError, match=f"{name}: cannot read mask image: Image size .* exceeds limit"):
            read_mask_png(tmp_path / name)
        with pytest.raises(FormatError, match=f"{name}: cannot read frame image"):
            Video.open(tmp_path)
        (tmp_path / name).unlink()
